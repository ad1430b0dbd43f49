//! Signing keys: generated with ring, sealed under the master key, published as a JWKS.
//! jsonwebtoken signs and verifies them through [`jwt_crypto`](crate::domain::jwt_crypto).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{self as rsig, KeyPair};
use serde::{Deserialize, Serialize};

use crate::domain::crypto::{MasterKey, MasterKeyError};
use crate::domain::Clock;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::store::models::StoredKey;
use crate::store::{write_tx, AnyConnection};
use crate::value::UnixMs;

/// Why a key could not be made, loaded or retired.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a P-256 PKCS#8 key")]
    NotP256,
    #[error("not an Ed25519 PKCS#8 key")]
    NotEd25519,
    #[error("key generation failed")]
    Generation,
    #[error("no signing key with kid {0}")]
    NotFound(String),
    #[error("key {0} is already retired")]
    AlreadyRetired(String),
    /// Retiring it would leave nothing to sign with.
    #[error("key {0} is the only signing key")]
    OnlySigningKey(String),
    /// Every other key is still pending: retiring this one would make a key sign before
    /// relying parties have fetched it.
    #[error("the other keys are not active yet: retiring {0} now would make a key sign before relying parties have fetched it")]
    OthersPending(String),
    #[error("signing key {kid} has unknown algorithm {alg}")]
    UnknownAlgorithm { kid: String, alg: String },
    #[error("signing key {kid}")]
    Sealed {
        kid: String,
        #[source]
        source: MasterKeyError,
    },
    #[error("no usable signing key in the database")]
    NoUsableKey,
    #[error(transparent)]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// The algorithms Tessera signs access tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    ES256,
    EdDSA,
}

impl KeyAlgorithm {
    pub fn jwt(self) -> Algorithm {
        match self {
            KeyAlgorithm::ES256 => Algorithm::ES256,
            KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::ES256 => "ES256",
            KeyAlgorithm::EdDSA => "EdDSA",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "ES256" => Some(KeyAlgorithm::ES256),
            "EdDSA" => Some(KeyAlgorithm::EdDSA),
            _ => None,
        }
    }
}

/// A usable key: private half for signing, public half for verifying and the JWKS.
pub struct SigningKey {
    pub kid: String,
    pub alg: KeyAlgorithm,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    pub jwk: serde_json::Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Builds the key from its PKCS#8 document.
    pub fn from_pkcs8(alg: KeyAlgorithm, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let (thumb_input, mut jwk, encoding, decoding) = match alg {
            KeyAlgorithm::ES256 => {
                let pair = rsig::EcdsaKeyPair::from_pkcs8(
                    &rsig::ECDSA_P256_SHA256_FIXED_SIGNING,
                    pkcs8,
                    &SystemRandom::new(),
                )
                .map_err(|_| KeyError::NotP256)?;
                let point = pair.public_key().as_ref();
                let (x, y) = (b64(&point[1..33]), b64(&point[33..65]));
                (
                    // RFC 7638: required members only, lexicographic order, no spaces.
                    format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#),
                    serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
                    EncodingKey::from_ec_der(pkcs8),
                    DecodingKey::from_ec_components(&x, &y)?,
                )
            }
            KeyAlgorithm::EdDSA => {
                let pair = rsig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
                    .map_err(|_| KeyError::NotEd25519)?;
                let x = b64(pair.public_key().as_ref());
                (
                    format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
                    serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
                    EncodingKey::from_ed_der(pkcs8),
                    DecodingKey::from_ed_components(&x)?,
                )
            }
        };
        let kid = thumbprint(&thumb_input);
        jwk["kid"] = kid.clone().into();
        jwk["alg"] = alg.as_str().into();
        jwk["use"] = "sig".into();
        Ok(Self {
            kid,
            alg,
            encoding,
            decoding,
            jwk,
        })
    }

    /// A new random key.
    pub fn generate(alg: KeyAlgorithm) -> Result<(Self, Vec<u8>), KeyError> {
        let rng = SystemRandom::new();
        let doc = match alg {
            KeyAlgorithm::ES256 => {
                rsig::EcdsaKeyPair::generate_pkcs8(&rsig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            }
            KeyAlgorithm::EdDSA => rsig::Ed25519KeyPair::generate_pkcs8(&rng),
        }
        .map_err(|_| KeyError::Generation)?;
        let pkcs8 = doc.as_ref().to_vec();
        Ok((Self::from_pkcs8(alg, &pkcs8)?, pkcs8))
    }
}

/// RFC 7638 thumbprint, base64url SHA-256.
fn thumbprint(canonical: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Generates a key with `alg`, seals it and stores it; it signs from `activates_at`.
pub fn create(
    conn: &mut AnyConnection,
    master: &MasterKey,
    alg: KeyAlgorithm,
    now: UnixMs,
    activates_at: UnixMs,
) -> Result<StoredKey, KeyError> {
    let (key, pkcs8) = SigningKey::generate(alg)?;
    let stored = StoredKey {
        kid: key.kid.clone(),
        alg: alg.as_str().to_owned(),
        private_key: master.seal(key.kid.as_bytes(), &pkcs8),
        public_jwk: key.jwk.to_string(),
        created_at: now,
        retired_at: None,
        activates_at,
    };
    stored.insert(conn)?;
    tracing::info!(kid = %key.kid, alg = alg.as_str(), "generated a signing key");
    Ok(stored)
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Published, not signing yet.
    Pending,
    /// The key new tokens are signed with.
    Signing,
    /// Published and accepted; a newer key signs.
    Verifying,
    /// Retired; still published until tokens it signed have expired.
    Retired,
    /// Retired and no longer published.
    Expired,
}

/// Which of `keys` (newest first) signs: the newest active one; failing that (every key
/// pending), the newest unretired one. The one rule for the server ([`KeySet::load`]) and the
/// CLI ([`states`]).
fn signer(keys: &[StoredKey], now: UnixMs) -> Option<usize> {
    keys.iter()
        .position(|k| k.retired_at.is_none() && k.activates_at <= now)
        .or_else(|| keys.iter().position(|k| k.retired_at.is_none()))
}

/// The state of every key in `keys` (newest first, as [`StoredKey::all`] returns them).
pub fn states(keys: &[StoredKey], now: UnixMs, retention: Duration) -> Vec<KeyState> {
    let signer = signer(keys, now);
    keys.iter()
        .enumerate()
        .map(|(i, k)| match k.retired_at {
            Some(at) if at > now - retention => KeyState::Retired,
            Some(_) => KeyState::Expired,
            None if Some(i) == signer => KeyState::Signing,
            None if k.activates_at > now => KeyState::Pending,
            None => KeyState::Verifying,
        })
        .collect()
}

/// Retires `kid`: servers stop signing with it at their next key reload, and it leaves the
/// JWKS once the tokens it signed have expired (the key retention the caller passes to
/// [`states`]). Refused when no other key would be left, and, without `force`, when no other
/// key is active yet (the pending one would sign before relying parties know it).
pub fn retire(
    conn: &mut AnyConnection,
    kid: &str,
    force: bool,
    now: UnixMs,
) -> Result<(), KeyError> {
    write_tx(conn, |c| -> Result<(), KeyError> {
        // Two retirements at once must not retire every key between them.
        StoredKey::lock_all(c)?;
        let keys = StoredKey::all(c)?;
        let key = keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| KeyError::NotFound(kid.to_owned()))?;
        if key.retired_at.is_some() {
            return Err(KeyError::AlreadyRetired(kid.to_owned()));
        }
        let others: Vec<&StoredKey> = keys
            .iter()
            .filter(|k| k.kid != kid && k.retired_at.is_none())
            .collect();
        if others.is_empty() {
            return Err(KeyError::OnlySigningKey(kid.to_owned()));
        }
        if !force && !others.iter().any(|k| k.activates_at <= now) {
            return Err(KeyError::OthersPending(kid.to_owned()));
        }
        StoredKey::retire(c, kid, now)?;
        Ok(())
    })
}

/// The keys in force: every published key verifies; the newest active one signs.
#[derive(Debug)]
pub struct KeySet {
    keys: Vec<SigningKey>,
    signer: usize,
}

impl KeySet {
    /// Loads the published keys, first creating one with `alg` when none is in force.
    pub fn load_or_create(
        conn: &mut AnyConnection,
        master: &MasterKey,
        alg: KeyAlgorithm,
        retention: Duration,
        clock: &Clock,
    ) -> Result<Self, KeyError> {
        // Serialised, so that instances starting together on a fresh database create one key.
        write_tx(conn, |c| -> Result<(), KeyError> {
            StoredKey::lock_all(c)?;
            // Read under the lock: an instance that waited for it sees the time it got it.
            let now = clock.now();
            if !StoredKey::published(c, now)?
                .iter()
                .any(|k| k.retired_at.is_none())
            {
                create(c, master, alg, now, now)?;
            }
            Ok(())
        })?;
        Self::load(conn, master, retention, clock.now())
    }

    /// Loads every key still published: unretired, or retired less than `retention` ago.
    pub fn load(
        conn: &mut AnyConnection,
        master: &MasterKey,
        retention: Duration,
        now: UnixMs,
    ) -> Result<Self, KeyError> {
        let stored = StoredKey::published(conn, now - retention)?;
        let mut keys = Vec::with_capacity(stored.len());
        for s in &stored {
            let alg = KeyAlgorithm::parse(&s.alg).ok_or_else(|| KeyError::UnknownAlgorithm {
                kid: s.kid.clone(),
                alg: s.alg.clone(),
            })?;
            let pkcs8 = master
                .open(s.kid.as_bytes(), &s.private_key)
                .map_err(|source| KeyError::Sealed {
                    kid: s.kid.clone(),
                    source,
                })?;
            keys.push(SigningKey::from_pkcs8(alg, &pkcs8)?);
        }
        let signer = signer(&stored, now).ok_or(KeyError::NoUsableKey)?;
        Ok(Self { keys, signer })
    }

    pub fn signing(&self) -> &SigningKey {
        &self.keys[self.signer]
    }

    pub fn find(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn algorithms(&self) -> Vec<&'static str> {
        let mut algs: Vec<_> = self.keys.iter().map(|k| k.alg.as_str()).collect();
        algs.sort_unstable();
        algs.dedup();
        algs
    }
}

/// The server's current [`KeySet`], replaced as keys are rotated and retired.
#[derive(Debug)]
pub struct KeyRing {
    current: RwLock<Arc<KeySet>>,
    last_reload: Mutex<Instant>,
}

impl KeyRing {
    pub fn new(keys: KeySet) -> Self {
        Self {
            current: RwLock::new(Arc::new(keys)),
            last_reload: Mutex::new(Instant::now()),
        }
    }

    pub fn get(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn replace(&self, keys: KeySet) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
        *self.last_reload.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// Whether a reload is allowed now: at most one per `min_interval`, so that tokens with
    /// made-up key ids cannot make every request reload keys.
    pub fn may_reload(&self, min_interval: Duration) -> bool {
        let mut last = self.last_reload.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() >= min_interval {
            *last = Instant::now();
            true
        } else {
            false
        }
    }
}
