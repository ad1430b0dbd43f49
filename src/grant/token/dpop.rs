//! DPoP at the token endpoint (RFC 9449 §5): the request's proof, checked against this
//! endpoint as the issuer names it, each proof accepted once on any instance.

use std::time::Duration;

use super::bearer::{BearerError, Scheme};
use super::TokenEndpoint;
use crate::domain::access_token::Confirmation;
use crate::domain::dpop::{self, Expected, ProofError};
use crate::grant::OAuthError;
use crate::settings::Settings;
use crate::store::models::SeenProof;
use crate::store::AnyConnection;

/// How proofs are checked.
#[derive(Debug, Clone)]
pub(crate) struct DpopRules {
    /// The token endpoint as the issuer names it: `htu` is compared with this, never with the
    /// request's `Host`, so a proxy or a path prefix in front of the server changes nothing.
    token_uri: url::Url,
    /// `/userinfo` as the issuer names it.
    userinfo_uri: url::Url,
    max_age: Duration,
    skew: Duration,
    /// Proofs must carry a current server nonce (§8).
    nonce: bool,
}

impl DpopRules {
    pub(crate) fn from_settings(settings: &Settings) -> Self {
        let endpoint = |name: &str| {
            let mut uri = settings.server.issuer.clone();
            let path = format!("{}/{name}", uri.path().trim_end_matches('/'));
            uri.set_path(&path);
            uri
        };
        Self {
            token_uri: endpoint("token"),
            userinfo_uri: endpoint("userinfo"),
            max_age: settings.tokens.dpop_max_age,
            skew: settings.tokens.dpop_clock_skew,
            nonce: settings.tokens.dpop_nonce,
        }
    }
}

impl TokenEndpoint {
    fn nonces(&self) -> dpop::Nonces<'_> {
        dpop::Nonces {
            key: self.core.master.dpop_nonce_key(),
            period: self.dpop.max_age,
        }
    }

    /// The nonce to send in `DPoP-Nonce` now, when proofs must carry one.
    pub fn dpop_nonce(&self) -> Option<String> {
        self.dpop
            .nonce
            .then(|| self.nonces().current(self.core.clock.now()))
    }

    /// RFC 9449 §7: a DPoP-bound token only with `Authorization: DPoP` and a proof from its key
    /// for this request, bound to the token (`ath`); a bearer token only as a bearer token.
    pub(super) fn check_binding(
        &self,
        token: &str,
        cnf: Option<&Confirmation>,
        scheme: Scheme<'_>,
    ) -> Result<(), BearerError> {
        let (cnf, proof, method) = match (cnf, scheme) {
            (None, Scheme::Bearer) => return Ok(()),
            (Some(_), Scheme::Bearer) => {
                return Err(BearerError::InvalidToken(
                    "a DPoP-bound access token presented as a bearer token".into(),
                ))
            }
            (None, Scheme::Dpop { .. }) => {
                return Err(BearerError::InvalidToken(
                    "a bearer access token presented with the DPoP scheme".into(),
                ))
            }
            (Some(cnf), Scheme::Dpop { proof, method }) => (cnf, proof, method),
        };
        let proof = proof.ok_or_else(|| {
            BearerError::InvalidDpopProof("a DPoP-bound access token needs a DPoP proof".into())
        })?;
        let mut conn = self.core.conn()?;
        let checks = Checks {
            method,
            uri: &self.dpop.userinfo_uri,
            access_token: Some(token),
            key: Some(&cnf.jkt),
        };
        let accepted = self
            .check(proof, &checks)
            .map_err(Refusal::Proof)
            .and_then(|proof| self.spend_proof(&mut conn, &proof));
        match accepted {
            Ok(()) => Ok(()),
            Err(Refusal::Proof(e @ ProofError::UseNonce)) => {
                Err(BearerError::UseDpopNonce(e.to_string()))
            }
            Err(Refusal::Proof(e)) => Err(BearerError::InvalidDpopProof(e.to_string())),
            Err(Refusal::Database(e)) => Err(BearerError::Unavailable(e.into())),
        }
    }

    /// The request's DPoP proof once it passed every check of §4.3 but the replay check, and
    /// the record that will make it be accepted once; `None` without a proof. The record is
    /// written with the rotation on the hot path, else by [`TokenEndpoint::spend_proof`].
    pub(super) fn token_proof(
        &self,
        proof: Option<&str>,
    ) -> Result<Option<CheckedProof>, OAuthError> {
        let Some(proof) = proof else {
            return Ok(None);
        };
        let checks = Checks {
            method: "POST",
            uri: &self.dpop.token_uri,
            access_token: None,
            key: None,
        };
        Ok(Some(self.check(proof, &checks)?))
    }

    /// Records a checked proof as presented: refused if it was before, on any instance.
    pub(super) fn spend_proof(
        &self,
        conn: &mut AnyConnection,
        proof: &CheckedProof,
    ) -> Result<(), Refusal> {
        if !proof.seen.first_use(conn).map_err(Refusal::Database)? {
            tracing::info!(jkt = %proof.jkt, "DPoP proof replayed");
            return Err(ProofError::Replayed.into());
        }
        Ok(())
    }

    /// Checks `proof` (§4.3) against the request; returns it with the record that makes it
    /// accepted once on any instance.
    fn check(&self, proof: &str, checks: &Checks<'_>) -> Result<CheckedProof, ProofError> {
        let rules = &self.dpop;
        let now = self.core.clock.now();
        let nonces = self.nonces();
        let current = |n: &str| nonces.accepts(n, now);
        let expected = Expected {
            method: checks.method,
            uri: checks.uri,
            now,
            max_age: rules.max_age,
            skew: rules.skew,
            access_token: checks.access_token,
            nonce: rules.nonce.then_some(&current as &dyn Fn(&str) -> bool),
        };
        let proof = dpop::verify(proof, &expected).inspect_err(|e| {
            tracing::info!(reason = %e, "DPoP proof refused");
        })?;
        if checks.key.is_some_and(|bound| bound != proof.jkt) {
            tracing::info!(jkt = %proof.jkt, "DPoP proof from another key than the token's");
            return Err(ProofError::Key(
                "is not the key the access token is bound to",
            ));
        }
        let seen = proof.sighting(dpop::replay_window(rules.max_age, rules.skew), now);
        Ok(CheckedProof {
            jkt: proof.jkt,
            seen,
        })
    }
}

/// A proof that passed every check but the replay check, and its replay record.
pub(super) struct CheckedProof {
    /// The thumbprint of its key.
    pub jkt: String,
    pub seen: SeenProof,
}

/// What a proof must match besides §4.3's own rules.
struct Checks<'a> {
    method: &'a str,
    uri: &'a url::Url,
    /// At a resource: the access token the proof must be bound to (`ath`).
    access_token: Option<&'a str>,
    /// The key the access token is bound to.
    key: Option<&'a str>,
}

/// Why a proof was not accepted.
pub(super) enum Refusal {
    Proof(ProofError),
    Database(diesel::result::Error),
}

impl From<ProofError> for Refusal {
    fn from(e: ProofError) -> Self {
        Refusal::Proof(e)
    }
}

impl From<Refusal> for OAuthError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Proof(e) => e.into(),
            Refusal::Database(e) => e.into(),
        }
    }
}
