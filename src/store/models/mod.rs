//! Row types: `NewX` to insert, `X` to read, queries as associated functions over a connection.

mod audit;
mod browser;
mod client;
mod family;
mod key;
mod revoked;
mod standing;
mod throttle;
mod user;

pub use audit::AuditEvent;
pub use browser::{AuthorizationCode, Consent, Session};
pub use client::{Client, ClientChanges, NewClient};
pub use family::{
    FamilyFilter, IncidentFilter, NewFamily, NewIncident, NewRefreshToken, RefreshToken,
    ReuseIncident, TokenFamily,
};
pub use key::StoredKey;
pub use revoked::RevokedAccessToken;
pub use standing::{Standing, TokenRefs};
pub use throttle::LoginFailures;
pub use user::{NewUser, User};
