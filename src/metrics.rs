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

use crate::domain::password::PasswordHasher;
use crate::store::Pool;

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
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("tessera".into()), None)?;
        let r = &registry;
        let seconds =
            |name: &str, help: &str| HistogramOpts::new(name, help).buckets(BUCKETS.to_vec());
        let http_requests = add(
            r,
            IntCounterVec::new(
                Opts::new(
                    "http_requests_total",
                    "HTTP requests answered, by route, method and status.",
                ),
                &["route", "method", "status"],
            )?,
        )?;
        let http_duration = add(
            r,
            HistogramVec::new(
                seconds(
                    "http_request_duration_seconds",
                    "Time to answer HTTP requests, by route and method.",
                ),
                &["route", "method"],
            )?,
        )?;
        let tokens_issued = add(
            r,
            IntCounterVec::new(
                Opts::new(
                    "tokens_issued_total",
                    "Access tokens issued at the token endpoint, by grant type.",
                ),
                &["grant_type"],
            )?,
        )?;
        let refreshes = add(
            r,
            IntCounterVec::new(
                Opts::new(
                    "refreshes_total",
                    "Refresh-token grants, by outcome: rotated, grace_retry, reuse_detected, expired, revoked, refused, error.",
                ),
                &["outcome"],
            )?,
        )?;
        let reuse_incidents = add(
            r,
            IntCounter::new(
                "reuse_incidents_total",
                "Rotated refresh tokens presented again: each revoked its family and recorded an incident.",
            )?,
        )?;
        let throttled = add(
            r,
            IntCounterVec::new(
                Opts::new(
                    "sign_in_throttled_total",
                    "Sign-in attempts held back by throttling: delayed (waited, then went on) or refused.",
                ),
                &["outcome"],
            )?,
        )?;
        let hash_wait = add(
            r,
            Histogram::with_opts(seconds(
                "password_hash_wait_seconds",
                "Time password verifications waited for a hashing slot.",
            ))?,
        )?;
        let hash_in_use = add(
            r,
            IntGauge::new(
                "password_hash_slots_in_use",
                "Password-hashing slots taken.",
            )?,
        )?;
        let hash_slots = add(
            r,
            IntGauge::new("password_hash_slots", "Password-hashing slots in all.")?,
        )?;
        let pool_connections = add(
            r,
            IntGaugeVec::new(
                Opts::new(
                    "db_pool_connections",
                    "Database connections in the pool, by state: in_use or idle.",
                ),
                &["state"],
            )?,
        )?;
        let pool_wait = add(
            r,
            Histogram::with_opts(seconds(
                "db_pool_wait_seconds",
                "Time requests waited to check a database connection out of the pool.",
            ))?,
        )?;
        let build = add(
            r,
            IntGaugeVec::new(
                Opts::new("build_info", "The running version; always 1."),
                &["version"],
            )?,
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        Ok(Self(Arc::new(Inner {
            registry,
            http_requests,
            http_duration,
            tokens_issued,
            refreshes,
            reuse_incidents,
            throttled,
            hash_wait,
            hash_in_use,
            hash_slots,
            pool_connections,
            pool_wait,
        })))
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

    pub fn token_issued(&self, grant_type: &str) {
        self.0.tokens_issued.with_label_values(&[grant_type]).inc();
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

    pub fn pool_wait(&self, took: Duration) {
        self.0.pool_wait.observe(took.as_secs_f64());
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
