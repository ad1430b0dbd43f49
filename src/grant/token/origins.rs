//! Which scripts on other origins may call `/token` and `/revoke` for a client, and read their
//! answers and those of `/userinfo` (CORS). The HTTP layer asks only when a browser named an
//! origin; the rules are [`client::check_origin`] and [`client::origin_registered`].

use crate::domain::client::{self, OriginCheck};
use crate::domain::origin::Origin;
use crate::grant::TokenEndpoint;
use crate::store::AnyConnection;
use crate::value::ClientId;

impl TokenEndpoint {
    /// The check for a request that names `named`, from a script on `origin`. A page served
    /// from the issuer's own origin is no other origin: it goes ahead, and needs no CORS to
    /// read the answer. A database failure refuses nothing and lets nobody read: the grant
    /// meets the same failure and answers 503.
    pub fn check_origin(&self, named: Option<&ClientId>, origin: &Origin) -> OriginCheck {
        if self.own_origin.as_ref() == Some(origin) {
            return OriginCheck::Allowed { readable: false };
        }
        self.ask(|c| client::check_origin(c, named, origin))
            .unwrap_or(OriginCheck::Allowed { readable: false })
    }

    /// Whether a successful answer for `client` may be read by a script on `origin`.
    pub fn origin_may_read(&self, client: &ClientId, origin: &Origin) -> bool {
        self.check_origin(Some(client), origin) == OriginCheck::Allowed { readable: true }
    }

    /// Whether some enabled client registered `origin`: who may read an error, or send the
    /// request a preflight asks about.
    pub fn origin_registered(&self, origin: &Origin) -> bool {
        self.ask(|c| client::origin_registered(c, origin))
            .unwrap_or(false)
    }

    fn ask<T>(&self, f: impl FnOnce(&mut AnyConnection) -> diesel::QueryResult<T>) -> Option<T> {
        let answer = self
            .core
            .conn()
            .map_err(|e| e.to_string())
            .and_then(|mut c| f(&mut c).map_err(|e| e.to_string()));
        answer
            .inspect_err(
                |e| tracing::warn!(error = %e, "could not read the clients' allowed origins"),
            )
            .ok()
    }
}
