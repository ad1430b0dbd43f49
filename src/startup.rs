//! Builds the server from settings: tests start it on port 0 and read [`Application::port`].

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{middleware, web, App, HttpServer};
use anyhow::Context;

use crate::domain::crypto::MasterKey;
use crate::domain::keys::{install_crypto_provider, KeySet};
use crate::domain::password::PasswordHasher;
use crate::grant::TokenService;
use crate::http::{self, AppState};
use crate::settings::Settings;
use crate::store;

pub struct Application {
    port: u16,
    server: Server,
}

/// Loads the master key: `master_key` if set, else the key file (created when missing).
pub fn load_master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    match &settings.master_key {
        Some(secret) => MasterKey::from_text(secret.expose()).context("master_key"),
        None => MasterKey::load_or_create(&settings.master_key_file),
    }
}

impl Application {
    /// Connects, migrates, loads or creates the signing key, and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        install_crypto_provider();
        let settings = Arc::new(settings);
        let prepared = {
            let settings = settings.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<TokenService> {
                let master = Arc::new(load_master_key(&settings)?);
                let db = &settings.database;
                let (pool, _) = store::connect(db.url.expose(), db.pool_size, db.connect_timeout)?;
                let keys = {
                    let mut conn = pool.get().context("database unreachable")?;
                    KeySet::load_or_create(&mut conn, &master, settings.keys.algorithm)?
                };
                let hasher = PasswordHasher::new(&settings.passwords, settings.hash_concurrency())?;
                Ok(TokenService::new(
                    &settings,
                    pool,
                    master,
                    Arc::new(keys),
                    hasher,
                ))
            })
            .await
            .context("start-up was interrupted")??
        };
        let listener = TcpListener::bind(settings.server.listen)
            .with_context(|| format!("cannot listen on {}", settings.server.listen))?;
        let port = listener.local_addr()?.port();
        let state = web::Data::new(AppState { service: prepared });
        let max_body = settings.server.max_body_bytes;
        let server = HttpServer::new(move || {
            App::new()
                // The path only: a query string could carry something secret.
                .wrap(
                    middleware::Logger::new("%a \"%{method}xi %U\" %s %b %Dms")
                        .custom_request_replace("method", |req| req.method().to_string()),
                )
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(max_body))
                .configure(http::configure)
        })
        .listen(listener)?
        .run();
        Ok(Self { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
