//! The pages users see, behind `/authorize`, `/login`, `/consent` and `/logout`: the
//! authorization request ([`authorize`]), then sessions, remembered consent, CSRF tokens and
//! the authorization code at the end ([`flow`]).

pub mod account;
pub mod authorize;
mod flow;
pub use crate::domain::second_factor::SecondFactorPolicy;
pub use flow::{LoginStep, SECOND_STEP_TTL};
pub mod logout;

use std::time::Duration;

use crate::domain::browser::SessionLimits;
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
}

impl BrowserFlow {
    pub(crate) fn new(settings: &Settings, core: Core, passwords: SignIn) -> Self {
        Self {
            core,
            passwords,
            sessions: settings.session_limits(),
            code_ttl: settings.tokens.code_ttl,
            second_factor: settings.signin.second_factor,
        }
    }
}
