//! Builds the server from settings: tests start it on port 0 and read [`Application::port`].

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
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
    /// Set when a signal asks the server to stop (see [`Application::run_until_stopped`]).
    draining: Arc<AtomicBool>,
    /// `server.drain`.
    drain: Duration,
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
        let draining = Arc::new(AtomicBool::new(false));
        let state = web::Data::new(AppState {
            services,
            secure_cookies: settings.secure_cookies(),
            proxies: crate::http::client_ip::Proxies {
                trusted: settings.server.trusted_proxies.clone(),
                header: settings.server.forwarded_header,
            },
            draining: draining.clone(),
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
            draining,
            drain: settings.server.drain,
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

    /// Serves until SIGTERM or SIGINT. Then `/readyz` answers 503 for `server.drain` while
    /// requests are still served (a second signal cuts that short); then the server stops
    /// accepting, lets accepted requests finish (`server.shutdown_timeout`, which bounds it:
    /// actix-server finishes a graceful stop before it takes another command), and returns. The
    /// database connections close as the service is dropped.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        actix_web::rt::spawn(stop_on_signal(
            self.server.handle(),
            self.draining.clone(),
            self.drain,
        ));
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

/// Waits for SIGTERM or SIGINT, drains (see [`Application::run_until_stopped`]), and stops
/// `server` gracefully.
async fn stop_on_signal(server: ServerHandle, draining: Arc<AtomicBool>, drain: Duration) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for SIGTERM and SIGINT; stop the server with SIGKILL");
        return;
    };
    let signalled = async {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    signalled.await;
    draining.store(true, Ordering::Relaxed);
    if !drain.is_zero() {
        tracing::info!(
            ?drain,
            "stopping: /readyz answers 503 while requests are still served"
        );
        tokio::select! {
            _ = tokio::time::sleep(drain) => {}
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    tracing::info!("stopping: no new connections; finishing the requests accepted");
    server.stop(true).await;
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
    // Once stopped (see `stop_on_signal`): accepted requests finish within the timeout.
    .shutdown_timeout(settings.server.shutdown_timeout.as_secs().max(1))
    .disable_signals()
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
