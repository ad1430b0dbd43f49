//! The token endpoint and what answers for the tokens it issued: every grant ([`grants`]),
//! revocation and introspection ([`introspection`]), bearer checks and `/userinfo`
//! ([`bearer`]), and the token response ([`response`]).

pub mod bearer;
mod dpop;
pub mod grants;
pub mod introspection;
mod origins;
pub mod response;

use std::time::Duration;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::domain::family::Lifetimes;
use crate::domain::origin::Origin;
use crate::domain::second_factor::SecondFactorPolicy;
use crate::grant::{Core, SignIn};
use crate::settings::Settings;
use crate::store::models::ClientRow;
use crate::value::{ClientId, UnixMs};

/// `POST /token`, `/revoke`, `/introspect`, `/userinfo`. Cheap to clone.
#[derive(Clone)]
pub struct TokenEndpoint {
    core: Core,
    /// The password grant's sign-in.
    passwords: SignIn,
    /// Whole seconds, one at least: JWT times are in seconds.
    access_ttl: Duration,
    life: Lifetimes,
    /// Clients whose use was recorded, and when (see `note_client_use`).
    clients_used: Arc<Mutex<HashMap<ClientId, UnixMs>>>,
    /// The issuer's web origin: its own pages are not another origin.
    own_origin: Option<Origin>,
    dpop: dpop::DpopRules,
    /// `signin.second_factor`: when required, the password grant is refused.
    second_factor: SecondFactorPolicy,
}

impl TokenEndpoint {
    pub(crate) fn new(settings: &Settings, core: Core, passwords: SignIn) -> Self {
        Self {
            core,
            passwords,
            access_ttl: Duration::from_secs(settings.tokens.access_ttl.as_secs().max(1)),
            life: settings.lifetimes(),
            clients_used: Arc::default(),
            own_origin: Origin::of(&settings.server.issuer),
            dpop: dpop::DpopRules::from_settings(settings),
            second_factor: settings.signin.second_factor,
        }
    }

    /// Records that `client_id` got a token (`clients.last_used_at`, for `tessera-admin
    /// doctor`): in the database at most once a day per client and instance, so that the hot
    /// paths only look in a map.
    fn note_client_use(&self, client_id: &ClientId) {
        let now = self.core.clock.now();
        {
            let mut noted = self.clients_used.lock().unwrap_or_else(|p| p.into_inner());
            if noted
                .get(client_id)
                .is_some_and(|at| now.since(*at) < ClientRow::USE_NOTED_EVERY)
            {
                return;
            }
            noted.insert(client_id.clone(), now);
        }
        let noted = self
            .core
            .conn()
            .map_err(|e| e.to_string())
            .and_then(|mut c| {
                ClientRow::note_use(&mut c, client_id, now).map_err(|e| e.to_string())
            });
        if let Err(e) = noted {
            tracing::warn!(error = %e, "could not record the client's use");
        }
    }
}
