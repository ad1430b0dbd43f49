//! The API test suite: one binary, the real server on a random port, a fresh database per test.
//! Every scenario runs on SQLite and, when TESSERA_TEST_POSTGRES_URL is set, on PostgreSQL.
#![allow(clippy::unwrap_used)]

mod helpers;

mod account;
mod audit;
mod browser;
mod browser_apps;
mod cli;
mod client_library;
mod concurrency;
mod config;
mod crash;
mod db_faults;
mod differential;
mod dpop;
mod errors;
mod failover;
mod flood;
mod hostile;
mod keys;
mod metrics;
mod oidc;
mod openapi;
mod operations;
mod passkeys;
mod profile;
mod proxy;
mod real_browser;
mod resources;
mod retention;
mod revocation;
mod rotation;
mod second_factor;
mod security;
mod story;
mod throttle;
