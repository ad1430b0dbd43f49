//! Tessera: a small OAuth2 authorization server.
//!
//! Layers, each depending only on those below it:
//! - [`http`] (feature `server`): actix-web routes and the RFC 6749 error mapping;
//! - [`grant`]: the token endpoint's grants, independent of any web framework;
//! - [`domain`]: clients, users, token families and rotation, signing keys;
//! - [`store`]: diesel schema, connection pool and embedded migrations;
//! - [`settings`]: layered configuration.
//!
//! Error policy: `QueryResult` in model code, [`grant::OAuthError`] wherever a client sees the
//! error, `anyhow` only at the edges (start-up, the admin CLI).

pub mod domain;
pub mod grant;
pub mod settings;
pub mod store;

#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod startup;
#[cfg(feature = "server")]
pub mod telemetry;
