//! Row types: `NewX` to insert, `X` to read, queries as associated functions over a connection.

mod audit;
mod browser;
mod client;
mod dpop;
mod family;
mod incident;
mod key;
pub mod logout_notice;
mod refresh_token;
mod resource;
mod revoked;
mod second_factor;
mod standing;
mod throttle;
mod user;

pub use audit::AuditEvent;
pub use browser::{AuthorizationCode, Consent, Session};
pub use client::{ClientChanges, ClientRow, NewClient};
pub use dpop::SeenProof;
pub use family::{
    family_live, token_live, Ended, FamiliesOf, FamilyFilter, FamilyLive, NewFamily, TokenFamily,
    TokenLive,
};
pub use incident::{IncidentFilter, NewIncident, ReuseIncident};
pub use key::StoredKey;
pub use logout_notice::LogoutNotice;
pub use refresh_token::{NewRefreshToken, RefreshToken};
pub use resource::ResourceRow;
pub use revoked::RevokedAccessToken;
pub use second_factor::{PasskeyRow, RecoveryCode, UserTotp, WebauthnChallenge};
pub use standing::{Standing, TokenRefs};
pub use throttle::{LoginFailures, LoginPlace};
pub use user::{NewUser, ProfileChanges, User};
