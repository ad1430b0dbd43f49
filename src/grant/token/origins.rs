//! Which web origins may read the answers of `/token`, `/revoke` and `/userinfo` (CORS). The
//! HTTP layer asks only when a browser named an origin; the rule is
//! [`client::origin_may_read`].

use crate::domain::client;
use crate::domain::origin::Origin;
use crate::grant::TokenEndpoint;
use crate::value::ClientId;

impl TokenEndpoint {
    /// Whether a script on `origin` may read the answer to a request for `client` (`None`:
    /// the request named no client). A database failure answers no: the browser then shows
    /// the app a network error, which it retries like any other.
    pub fn origin_may_read(&self, client: Option<&ClientId>, origin: &Origin) -> bool {
        self.ask(|c| client::origin_may_read(c, client, origin))
    }

    /// Whether some enabled client registered `origin` (a preflight names no client).
    pub fn origin_registered(&self, origin: &Origin) -> bool {
        self.ask(|c| client::origin_registered(c, origin))
    }

    fn ask(
        &self,
        f: impl FnOnce(&mut crate::store::AnyConnection) -> diesel::QueryResult<bool>,
    ) -> bool {
        let answer = self
            .core
            .conn()
            .map_err(|e| e.to_string())
            .and_then(|mut c| f(&mut c).map_err(|e| e.to_string()));
        answer.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read the clients' allowed origins");
            false
        })
    }
}
