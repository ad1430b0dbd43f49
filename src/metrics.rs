//! Prometheus metrics, served at `/metrics` on `server.metrics_listen`. Each server has its own
//! registry (no process-wide state), so that servers in one process count apart.
//!
//! Counters and histograms are recorded where things happen; the gauges of the connection
//! pool and of the password-hashing slots are read when scraped.

use std::sync::Arc;
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::domain::grant_type::GrantType;
use crate::domain::password::PasswordHasher;
use crate::store::{ConnectionEvent, ConnectionObserver, Pool};

/// Latency buckets for requests and waits, in seconds: 0.5 ms to 10 s.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How a refresh ended, as `tessera_refreshes_total{outcome}` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// A new refresh token was issued.
    Rotated,
    /// A retry within the grace window got the successor already issued.
    GraceRetry,
    /// A rotated token came back: the family was revoked.
    ReuseDetected,
    Expired,
    Revoked,
    /// Unknown or forged token, another client's, a disabled user, a scope beyond the grant.
    Refused,
    /// The database failed or was unavailable.
    Error,
}

impl RefreshOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rotated => "rotated",
            Self::GraceRetry => "grace_retry",
            Self::ReuseDetected => "reuse_detected",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::Refused => "refused",
            Self::Error => "error",
        }
    }
}

/// The server's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    tokens_issued: IntCounterVec,
    refreshes: IntCounterVec,
    reuse_incidents: IntCounter,
    throttled: IntCounterVec,
    hash_wait: Histogram,
    hash_in_use: IntGauge,
    hash_slots: IntGauge,
    pool_connections: IntGaugeVec,
    pool_wait: Histogram,
    connections_lost: IntCounter,
    server_changes: IntCounter,
    backchannel: IntCounterVec,
    backchannel_pending: IntGauge,
    backchannel_delay: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// A metric: its name (after the `tessera_` prefix), its help text and its labels.
struct Spec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
}

/// Every metric the server exports, in one table; [`Metrics::new`] registers each.
const HTTP_REQUESTS: Spec = Spec {
    name: "http_requests_total",
    help: "HTTP requests answered, by route, method and status.",
    labels: &["route", "method", "status"],
};
const HTTP_DURATION: Spec = Spec {
    name: "http_request_duration_seconds",
    help: "Time to answer HTTP requests, by route and method.",
    labels: &["route", "method"],
};
const TOKENS_ISSUED: Spec = Spec {
    name: "tokens_issued_total",
    help: "Access tokens issued at the token endpoint, by grant type.",
    labels: &["grant_type"],
};
const REFRESHES: Spec = Spec {
    name: "refreshes_total",
    help: "Refresh-token grants, by outcome: rotated, grace_retry, reuse_detected, expired, revoked, refused, error.",
    labels: &["outcome"],
};
const REUSE_INCIDENTS: Spec = Spec {
    name: "reuse_incidents_total",
    help:
        "Rotated refresh tokens presented again: each revoked its family and recorded an incident.",
    labels: &[],
};
const THROTTLED: Spec = Spec {
    name: "sign_in_throttled_total",
    help: "Sign-in attempts held back by throttling: delayed (waited, then went on) or refused.",
    labels: &["outcome"],
};
const HASH_WAIT: Spec = Spec {
    name: "password_hash_wait_seconds",
    help: "Time password verifications waited for a hashing slot.",
    labels: &[],
};
const HASH_IN_USE: Spec = Spec {
    name: "password_hash_slots_in_use",
    help: "Password-hashing slots taken.",
    labels: &[],
};
const HASH_SLOTS: Spec = Spec {
    name: "password_hash_slots",
    help: "Password-hashing slots in all.",
    labels: &[],
};
const POOL_CONNECTIONS: Spec = Spec {
    name: "db_pool_connections",
    help: "Database connections in the pool, by state: in_use or idle.",
    labels: &["state"],
};
const POOL_WAIT: Spec = Spec {
    name: "db_pool_wait_seconds",
    help: "Time requests waited to check a database connection out of the pool.",
    labels: &[],
};
const CONNECTIONS_LOST: Spec = Spec {
    name: "db_connections_lost_total",
    help: "Database connections found dead at checkout or broken after use, and replaced.",
    labels: &[],
};
const SERVER_CHANGES: Spec = Spec {
    name: "db_server_changes_total",
    help: "New database connections that reached another server than the one before them: failovers, as this instance saw them.",
    labels: &[],
};
const BACKCHANNEL: Spec = Spec {
    name: "backchannel_logouts_total",
    help: "Back-channel logout attempts, by outcome: delivered, retried (to be sent again), failed (given up).",
    labels: &["outcome"],
};
const BACKCHANNEL_PENDING: Spec = Spec {
    name: "backchannel_logouts_pending",
    help: "Back-channel logouts still to deliver, as this instance last counted them.",
    labels: &[],
};
const BACKCHANNEL_DELAY: Spec = Spec {
    name: "backchannel_logout_delay_seconds",
    help: "Time from the end of a sign-in to the delivery of its back-channel logout.",
    labels: &[],
};

/// Buckets for the back-channel delay, in seconds: a poll interval to an hour of retries.
const DELAY_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

const BUILD_INFO: Spec = Spec {
    name: "build_info",
    help: "The running version; always 1.",
    labels: &["version"],
};

impl Spec {
    fn opts(&self) -> Opts {
        Opts::new(self.name, self.help)
    }

    /// Histograms of seconds share [`BUCKETS`].
    fn seconds(&self) -> HistogramOpts {
        HistogramOpts::new(self.name, self.help).buckets(BUCKETS.to_vec())
    }
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("tessera".into()), None)?;
        let r = &registry;
        let counters = |s: &Spec| add(r, IntCounterVec::new(s.opts(), s.labels)?);
        let gauges = |s: &Spec| add(r, IntGaugeVec::new(s.opts(), s.labels)?);
        let histogram = |s: &Spec| add(r, Histogram::with_opts(s.seconds())?);
        let gauge = |s: &Spec| add(r, IntGauge::with_opts(s.opts())?);
        gauges(&BUILD_INFO)?
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let inner = Inner {
            http_requests: counters(&HTTP_REQUESTS)?,
            http_duration: add(
                r,
                HistogramVec::new(HTTP_DURATION.seconds(), HTTP_DURATION.labels)?,
            )?,
            tokens_issued: counters(&TOKENS_ISSUED)?,
            refreshes: counters(&REFRESHES)?,
            reuse_incidents: add(r, IntCounter::with_opts(REUSE_INCIDENTS.opts())?)?,
            throttled: counters(&THROTTLED)?,
            hash_wait: histogram(&HASH_WAIT)?,
            hash_in_use: gauge(&HASH_IN_USE)?,
            hash_slots: gauge(&HASH_SLOTS)?,
            pool_connections: gauges(&POOL_CONNECTIONS)?,
            pool_wait: histogram(&POOL_WAIT)?,
            connections_lost: add(r, IntCounter::with_opts(CONNECTIONS_LOST.opts())?)?,
            server_changes: add(r, IntCounter::with_opts(SERVER_CHANGES.opts())?)?,
            backchannel: counters(&BACKCHANNEL)?,
            backchannel_pending: gauge(&BACKCHANNEL_PENDING)?,
            backchannel_delay: add(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(BACKCHANNEL_DELAY.name, BACKCHANNEL_DELAY.help)
                        .buckets(DELAY_BUCKETS.to_vec()),
                )?,
            )?,
            // A handle on the same registry (it is shared inside).
            registry: registry.clone(),
        };
        Ok(Self(Arc::new(inner)))
    }

    /// One HTTP request answered. `route`: the matched pattern, never the raw path, so that
    /// the label's values stay few.
    /// `status`: the code's digits (the server sends only a few distinct ones).
    pub fn http_request(&self, route: &str, method: &str, status: &str, took: Duration) {
        let m = &self.0;
        m.http_requests
            .with_label_values(&[route, method, status])
            .inc();
        m.http_duration
            .with_label_values(&[route, method])
            .observe(took.as_secs_f64());
    }

    pub fn token_issued(&self, grant: GrantType) {
        self.0
            .tokens_issued
            .with_label_values(&[grant.as_str()])
            .inc();
    }

    pub fn refresh(&self, outcome: RefreshOutcome) {
        self.0
            .refreshes
            .with_label_values(&[outcome.as_str()])
            .inc();
        if outcome == RefreshOutcome::ReuseDetected {
            self.0.reuse_incidents.inc();
        }
    }

    /// A sign-in attempt throttling held back: `refused`, or `delayed` then let through.
    pub fn throttled(&self, refused: bool) {
        let outcome = if refused { "refused" } else { "delayed" };
        self.0.throttled.with_label_values(&[outcome]).inc();
    }

    /// A back-channel logout attempt: `delivered` (after `delay` from the end it tells),
    /// `retried` or `failed`.
    pub fn backchannel(&self, outcome: &str, delay: Option<Duration>) {
        self.0.backchannel.with_label_values(&[outcome]).inc();
        if let Some(d) = delay {
            self.0.backchannel_delay.observe(d.as_secs_f64());
        }
    }

    pub fn backchannel_pending(&self, pending: i64) {
        self.0.backchannel_pending.set(pending);
    }

    pub fn pool_wait(&self, took: Duration) {
        self.0.pool_wait.observe(took.as_secs_f64());
    }

    /// Counts what the connection pool reports: connections lost, and new ones that reached
    /// another server.
    pub fn connection_observer(&self) -> ConnectionObserver {
        let lost = self.0.connections_lost.clone();
        let changes = self.0.server_changes.clone();
        Arc::new(move |event| match event {
            ConnectionEvent::Lost => lost.inc(),
            ConnectionEvent::ServerChanged { .. } => changes.inc(),
        })
    }

    /// Makes `hasher` report its waits for a slot here.
    pub fn watch_hasher(&self, hasher: &mut PasswordHasher) {
        let wait = self.0.hash_wait.clone();
        hasher.observe_waits(Arc::new(move |took| wait.observe(took.as_secs_f64())));
    }

    /// The text exposition format, with the pool's and the hasher's gauges as they are now.
    pub fn render(&self, pool: &Pool, hasher: &PasswordHasher) -> String {
        let m = &self.0;
        let state = pool.state();
        let idle = i64::from(state.idle_connections);
        m.pool_connections
            .with_label_values(&["in_use"])
            .set(i64::from(state.connections) - idle);
        m.pool_connections.with_label_values(&["idle"]).set(idle);
        let (in_use, slots) = hasher.slots();
        m.hash_in_use.set(in_use as i64);
        m.hash_slots.set(slots as i64);
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&m.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Registers `metric` in `registry` and hands it back to be recorded into.
fn add<M>(registry: &Registry, metric: M) -> Result<M, prometheus::Error>
where
    M: prometheus::core::Collector + Clone + 'static,
{
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}
