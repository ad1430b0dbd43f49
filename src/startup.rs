//! Builds the server from settings: tests start it on port 0 and read [`Application::port`].

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{middleware, web, App, HttpServer};
use anyhow::Context;

use crate::domain::Clock;
use crate::grant::{Operations, Services};
use crate::http::{self, AppState};
use crate::settings::Settings;

pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics` on `server.metrics_listen`, when set.
    metrics: Option<(u16, Server)>,
}

impl Application {
    /// Connects, migrates, loads or creates the signing key, and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Clock::system()).await
    }

    /// [`Application::build`] with the clock the server reads "now" from: tests pass an
    /// adjustable one and move it instead of sleeping.
    pub async fn build_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let services = {
            let settings = settings.clone();
            tokio::task::spawn_blocking(move || Services::open(&settings, clock))
                .await
                .context("start-up was interrupted")??
        };
        start_periodic_tasks(&services.operations, &settings);
        tokio::spawn(crate::delivery::run(services.backchannel.clone()));
        let state = web::Data::new(AppState {
            services,
            secure_cookies: settings.secure_cookies(),
            proxies: crate::http::client_ip::Proxies {
                trusted: settings.server.trusted_proxies.clone(),
                header: settings.server.forwarded_header,
            },
        });
        let (port, server) = api_server(&settings, state.clone())?;
        let metrics = match settings.server.metrics_listen.trim() {
            "" => None,
            address => Some(metrics_server(address, state)?),
        };
        Ok(Self {
            port,
            server,
            metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Handles that stop the servers (the API's, and the metrics' if any): tests stop theirs
    /// when done, so that no server outlives its test.
    pub fn handles(&self) -> Vec<actix_web::dev::ServerHandle> {
        let mut handles = vec![self.server.handle()];
        handles.extend(self.metrics.as_ref().map(|(_, m)| m.handle()));
        handles
    }

    /// The port `/metrics` is served on, if it is.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// Serves until SIGTERM or SIGINT, then stops accepting, lets accepted requests finish
    /// (`server.shutdown_timeout`), and returns; the database connections close as the
    /// service is dropped.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Some((_, metrics)) = self.metrics else {
            return self.server.await;
        };
        let handle = metrics.handle();
        let api = async {
            let served = self.server.await;
            handle.stop(true).await;
            served
        };
        let (served, _) = tokio::join!(api, metrics);
        served
    }
}

/// Key reloads (keys rotated or retired by the CLI or another instance) and pruning (what
/// retention no longer keeps, see `domain::retention`; an interval of 0 leaves it to
/// `tessera-admin prune`), each on its own interval.
fn start_periodic_tasks(operations: &Operations, settings: &Settings) {
    tokio::spawn(every(
        operations.clone(),
        settings.keys.reload_interval,
        true,
        |s| match s.reload_keys() {
            Ok(()) => {}
            Err(e) => tracing::warn!(error = %e, "reloading signing keys failed"),
        },
    ));
    if !settings.retention.interval.is_zero() {
        tokio::spawn(every(
            operations.clone(),
            settings.retention.interval,
            false,
            |s| match s.prune() {
                Ok(report) if report.total() > 0 => {
                    tracing::info!(rows = report.total(), tables = ?report.tables, "pruned");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pruning failed; trying again later"),
            },
        ));
    }
}

/// The API on `server.listen`: its port and the server.
fn api_server(settings: &Settings, state: web::Data<AppState>) -> anyhow::Result<(u16, Server)> {
    let listener = TcpListener::bind(settings.server.listen)
        .with_context(|| format!("cannot listen on {}", settings.server.listen))?;
    let port = listener.local_addr()?.port();
    let max_body = settings.server.max_body_bytes;
    let server = HttpServer::new(move || {
        App::new()
            .wrap(middleware::from_fn(http::limit_headers))
            .wrap(middleware::from_fn(http::metrics::record))
            .wrap(middleware::from_fn(http::request_id::request_id))
            // Outermost, so that it sees the response's request id. The path only: a query
            // string could carry something secret.
            .wrap(
                middleware::Logger::new(
                    "%a \"%{method}xi %U\" %s %b %Dms request_id=%{x-request-id}o",
                )
                .custom_request_replace("method", |req| req.method().to_string()),
            )
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .configure(http::configure)
    })
    // SIGTERM / SIGINT: stop accepting, let accepted requests finish within the timeout.
    .shutdown_timeout(settings.server.shutdown_timeout.as_secs().max(1))
    .listen(listener)?
    .run();
    Ok((port, server))
}

/// `/metrics` alone on `address` (`server.metrics_listen`), apart from the API.
fn metrics_server(address: &str, state: web::Data<AppState>) -> anyhow::Result<(u16, Server)> {
    let listener = TcpListener::bind(address)
        .with_context(|| format!("cannot listen on {address} (server.metrics_listen)"))?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .service(web::resource("/metrics").route(web::get().to(http::metrics::metrics)))
    })
    .workers(1)
    // Stopped with the API server, not by the signals themselves.
    .disable_signals()
    .listen(listener)?
    .run();
    Ok((port, server))
}

/// Runs `task` on the blocking pool every `every` (at least 100 ms apart; `skip_first`: not at
/// start), one run at a time. Runs until the runtime that started the server ends.
async fn every(
    service: Operations,
    every: std::time::Duration,
    skip_first: bool,
    task: fn(&Operations),
) {
    let mut ticks = tokio::time::interval(every.max(std::time::Duration::from_millis(100)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if skip_first {
        ticks.tick().await;
    }
    loop {
        ticks.tick().await;
        let s = service.clone();
        if tokio::task::spawn_blocking(move || task(&s)).await.is_err() {
            return;
        }
    }
}
