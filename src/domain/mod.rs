//! The rules: no HTTP and no SQL here, so the admin CLI applies exactly the server's rules.
//! Each rule has one home: rotation and liveness in [`family`], revoking (with its audit
//! event) in [`revocation`], the throttle in [`throttle`]. Functions that need "now" take the
//! [`Clock`] (or the time read from it); settings build each module's own config values
//! ([`password::HashPolicy`], [`throttle::Policy`], ...), and errors are typed.

pub mod access_token;
pub mod account;
pub mod audit;
pub mod authcode;
pub mod backchannel;
pub mod browser;
pub mod client;
pub mod clock;
pub mod crypto;
pub mod dpop;
pub mod family;
pub mod grant_type;
pub mod id_token;
pub mod jwt_crypto;
pub mod keys;
pub mod origin;
pub mod password;
pub mod profile;
pub mod refresh_token;
pub mod request;
pub mod resource;
pub mod retention;
pub mod revocation;
pub mod scope;
pub mod second_factor;
pub mod secret;
pub mod throttle;
pub mod user;

pub use clock::{Clock, ClockHand};
