//! DPoP at the token endpoint (RFC 9449 §5): the request's proof, checked against this
//! endpoint as the issuer names it, each proof accepted once on any instance.

use std::time::Duration;

use super::TokenEndpoint;
use crate::domain::dpop::{self, Expected, ProofError};
use crate::grant::OAuthError;
use crate::settings::Settings;
use crate::store::AnyConnection;

/// How proofs are checked.
#[derive(Debug, Clone)]
pub(crate) struct DpopRules {
    /// The token endpoint as the issuer names it: `htu` is compared with this, never with the
    /// request's `Host`, so a proxy or a path prefix in front of the server changes nothing.
    token_uri: url::Url,
    max_age: Duration,
    skew: Duration,
}

impl DpopRules {
    pub(crate) fn from_settings(settings: &Settings) -> Self {
        let mut token_uri = settings.server.issuer.clone();
        let path = format!("{}/token", token_uri.path().trim_end_matches('/'));
        token_uri.set_path(&path);
        Self {
            token_uri,
            max_age: settings.tokens.dpop_max_age,
            skew: settings.tokens.dpop_clock_skew,
        }
    }
}

impl TokenEndpoint {
    /// The thumbprint of the key of the request's DPoP proof, once the proof passed every
    /// check and was never seen before; `None` without a proof.
    pub(super) fn token_proof(
        &self,
        conn: &mut AnyConnection,
        proof: Option<&str>,
    ) -> Result<Option<String>, OAuthError> {
        let Some(proof) = proof else {
            return Ok(None);
        };
        let rules = &self.dpop;
        let now = self.core.clock.now();
        let expected = Expected {
            method: "POST",
            uri: &rules.token_uri,
            now,
            max_age: rules.max_age,
            skew: rules.skew,
            access_token: None,
            nonce: None,
        };
        let proof = dpop::verify(proof, &expected).inspect_err(|e| {
            tracing::info!(reason = %e, "DPoP proof refused");
        })?;
        let window = dpop::replay_window(rules.max_age, rules.skew);
        if !dpop::first_use(conn, &proof, window, now)? {
            tracing::info!(jkt = %proof.jkt, "DPoP proof replayed");
            return Err(ProofError::Replayed.into());
        }
        Ok(Some(proof.jkt))
    }
}
