//! Tessera: a small OAuth2 authorization server.
//!
//! Layers, each depending only on those below it:
//! - [`http`] (feature `server`): actix-web routes and the RFC 6749 error mapping;
//! - [`grant`] (feature `protocol`): the protocol, independent of any web framework: the
//!   token endpoint's grants, sign-in, the authorization request and the browser flow, bearer
//!   checks, revocation and introspection;
//! - [`domain`]: the rules: clients, users, token families and rotation, revocation, keys,
//!   passwords, throttling, audit, and the [`domain::Clock`] every rule reads "now" from;
//! - [`store`]: diesel schema, models and their queries (all the SQL), the connection pool and
//!   embedded migrations;
//! - [`settings`]: layered configuration;
//! - [`value`]: the ids and the one time type every layer above passes around;
//! - [`metrics`] (feature `protocol`): the Prometheus registry that `grant` and `http` record
//!   into.
//!
//! The admin CLI (`tessera-admin`) builds this library with neither feature, and so links no
//! actix-web, askama or oxide-auth.
//!
//! Error policy: `QueryResult` in model code, [`grant::OAuthError`] wherever a client sees the
//! error, `anyhow` only at the edges (start-up, the admin CLI).

pub mod domain;
#[cfg(feature = "protocol")]
pub mod grant;
#[cfg(feature = "protocol")]
pub mod metrics;
pub mod settings;
pub mod store;
pub mod value;

#[cfg(feature = "server")]
pub mod delivery;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod startup;
#[cfg(feature = "server")]
pub mod telemetry;
