//! The pages users see, behind `/authorize`, `/login`, `/consent` and `/logout`: the
//! authorization request ([`authorize`]), then sessions, remembered consent, CSRF tokens and
//! the authorization code at the end ([`flow`]).

pub mod account;
pub mod authorize;
mod flow;
pub mod logout;
mod passkeys;
pub use crate::domain::second_factor::SecondFactorPolicy;
pub use flow::{LoginStep, SecondMethods, SECOND_STEP_TTL};
pub use passkeys::{Asked, OptionsError};

use std::sync::Arc;
use std::time::Duration;

use crate::domain::browser::SessionLimits;
use crate::grant::passkey::RelyingParty;
use crate::grant::{Core, SignIn};
use crate::settings::Settings;

/// The browser flow. Cheap to clone.
#[derive(Clone)]
pub struct BrowserFlow {
    core: Core,
    /// The login page's sign-in.
    passwords: SignIn,
    sessions: SessionLimits,
    code_ttl: Duration,
    /// `signin.second_factor`.
    second_factor: SecondFactorPolicy,
    /// The WebAuthn relying party; `None` if the issuer cannot be one (no host).
    passkeys: Option<Arc<RelyingParty>>,
}

impl BrowserFlow {
    pub(crate) fn new(settings: &Settings, core: Core, passwords: SignIn) -> Self {
        Self {
            core,
            passwords,
            sessions: settings.session_limits(),
            code_ttl: settings.tokens.code_ttl,
            second_factor: settings.signin.second_factor,
            passkeys: match RelyingParty::new(settings.server.issuer.as_str()) {
                Ok(rp) => Some(Arc::new(rp)),
                Err(e) => {
                    tracing::warn!(error = %e, "passkeys are off: the issuer cannot be a WebAuthn relying party");
                    None
                }
            },
        }
    }
}
