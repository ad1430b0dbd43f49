//! The identity logic: no HTTP here, so the admin CLI applies exactly the server's rules.

pub mod access_token;
pub mod audit;
pub mod authcode;
pub mod browser;
pub mod client;
pub mod clock;
pub mod crypto;
pub mod family;
pub mod jwt_crypto;
pub mod keys;
pub mod password;
pub mod refresh_token;
pub mod revocation;
pub mod scope;
pub mod secret;
pub mod throttle;
pub mod user;

pub use clock::{ms, Clock, ClockHand};
