//! Signing keys: generated with ring (RSA keys with the `rsa` crate, which ring cannot make),
//! sealed under the master key, published as a JWKS. jsonwebtoken signs and verifies them
//! through [`jwt_crypto`](crate::domain::jwt_crypto), on ring.
//!
//! Two roles: access tokens are signed by the newest active ES256 or EdDSA key; RS256 keys
//! sign only the ID tokens of clients that ask for RS256 (`client register --id-token-alg`),
//! which some OpenID Connect libraries and the certification plans require.

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

use crate::store::models::{ClientRow, StoredKey};
use crate::store::{write_tx, AnyConnection};
use crate::value::UnixMs;

/// Why a key could not be made, loaded or retired.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a P-256 PKCS#8 key")]
    NotP256,
    #[error("not an Ed25519 PKCS#8 key")]
    NotEd25519,
    #[error("not an RSA PKCS#8 key of 2048 to 4096 bits")]
    NotRsa,
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
    /// Only RS256 keys are made on demand.
    #[error("no {0} key is in force: `tessera-admin key rotate --algorithm {0}` makes one (it then signs access tokens too)")]
    NoKeyFor(&'static str),
    #[error(transparent)]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// The algorithms Tessera signs with: ES256 and EdDSA for everything, RS256 for the ID tokens
/// of clients that ask for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    ES256,
    EdDSA,
    RS256,
}

/// Bits of a generated RSA key.
const RSA_BITS: usize = 2048;

impl KeyAlgorithm {
    pub fn jwt(self) -> Algorithm {
        match self {
            KeyAlgorithm::ES256 => Algorithm::ES256,
            KeyAlgorithm::EdDSA => Algorithm::EdDSA,
            KeyAlgorithm::RS256 => Algorithm::RS256,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::ES256 => "ES256",
            KeyAlgorithm::EdDSA => "EdDSA",
            KeyAlgorithm::RS256 => "RS256",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ES256" => Some(KeyAlgorithm::ES256),
            "EdDSA" => Some(KeyAlgorithm::EdDSA),
            "RS256" => Some(KeyAlgorithm::RS256),
            _ => None,
        }
    }
    /// Whether keys of this algorithm sign access tokens (RS256 keys sign only ID tokens).
    pub fn signs_access_tokens(self) -> bool {
        self != KeyAlgorithm::RS256
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
            KeyAlgorithm::RS256 => {
                let pair = rsig::RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| KeyError::NotRsa)?;
                let public = rsig::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
                let (n, e) = (b64(&public.n), b64(&public.e));
                (
                    format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
                    serde_json::json!({"kty": "RSA", "n": n, "e": e}),
                    // The bytes are PKCS#8 whatever the name says: only our provider reads them.
                    EncodingKey::from_rsa_der(pkcs8),
                    DecodingKey::from_rsa_der(pair.public().as_ref()),
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
            KeyAlgorithm::RS256 => {
                let pkcs8 = generate_rsa()?;
                return Ok((Self::from_pkcs8(alg, &pkcs8)?, pkcs8));
            }
        }
        .map_err(|_| KeyError::Generation)?;
        let pkcs8 = doc.as_ref().to_vec();
        Ok((Self::from_pkcs8(alg, &pkcs8)?, pkcs8))
    }
}

/// A new RSA key as PKCS#8. Only generation uses the `rsa` crate: signing is ring's, so its
/// timing advisory on private-key operations (RUSTSEC-2023-0071) does not apply.
fn generate_rsa() -> Result<Vec<u8>, KeyError> {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS)
        .map_err(|_| KeyError::Generation)?;
    let der = key.to_pkcs8_der().map_err(|_| KeyError::Generation)?;
    Ok(der.as_bytes().to_vec())
}

/// RFC 7638 thumbprint, base64url SHA-256.
pub(crate) fn thumbprint(canonical: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Makes sure a key of `alg` is in force for a client registered to get its ID tokens signed
/// with `alg`: an RS256 key is made (signing at once) if there is none; an ES256 or EdDSA key is
/// not, since a new one would also take over signing access tokens ([`KeyError::NoKeyFor`]).
/// Returns the key created, if any.
pub fn ensure(
    conn: &mut AnyConnection,
    master: &MasterKey,
    alg: KeyAlgorithm,
    now: UnixMs,
) -> Result<Option<StoredKey>, KeyError> {
    write_tx(conn, |c| -> Result<Option<StoredKey>, KeyError> {
        StoredKey::lock_all(c)?;
        let in_force = StoredKey::all(c)?
            .iter()
            .any(|k| k.alg == alg.as_str() && k.retired_at.is_none());
        if in_force {
            return Ok(None);
        }
        if alg.signs_access_tokens() {
            return Err(KeyError::NoKeyFor(alg.as_str()));
        }
        create(c, master, alg, now, now).map(Some)
    })
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

/// Which of `keys` (newest first) signs among those `eligible`: the newest active one; failing
/// that (every key pending), the newest unretired one. The one rule for the server
/// ([`KeySet::load`]) and the CLI ([`states`]).
fn signer(keys: &[StoredKey], now: UnixMs, eligible: impl Fn(&StoredKey) -> bool) -> Option<usize> {
    keys.iter()
        .position(|k| eligible(k) && k.retired_at.is_none() && k.activates_at <= now)
        .or_else(|| {
            keys.iter()
                .position(|k| eligible(k) && k.retired_at.is_none())
        })
}

/// Whether a stored key may sign access tokens (its algorithm is known and not RS256).
fn signs_access_tokens(key: &StoredKey) -> bool {
    KeyAlgorithm::parse(&key.alg).is_some_and(KeyAlgorithm::signs_access_tokens)
}

/// The state of every key in `keys` (newest first, as [`StoredKey::all`] returns them): the
/// access-token signer and the RS256 signer are both `Signing`.
pub fn states(keys: &[StoredKey], now: UnixMs, retention: Duration) -> Vec<KeyState> {
    let signers = [
        signer(keys, now, signs_access_tokens),
        signer(keys, now, |k| k.alg == KeyAlgorithm::RS256.as_str()),
    ];
    keys.iter()
        .enumerate()
        .map(|(i, k)| match k.retired_at {
            Some(at) if at > now - retention => KeyState::Retired,
            Some(_) => KeyState::Expired,
            None if signers.contains(&Some(i)) => KeyState::Signing,
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
        // Keys of the same role: access-token keys, or RS256 keys.
        let role = signs_access_tokens(key);
        let others: Vec<&StoredKey> = keys
            .iter()
            .filter(|k| k.kid != kid && k.retired_at.is_none() && signs_access_tokens(k) == role)
            .collect();
        if others.is_empty() && (role || ClientRow::count_with_id_token_alg(c, &key.alg)? > 0) {
            return Err(KeyError::OnlySigningKey(kid.to_owned()));
        }
        if !others.is_empty() && !force && !others.iter().any(|k| k.activates_at <= now) {
            return Err(KeyError::OthersPending(kid.to_owned()));
        }
        StoredKey::retire(c, kid, now)?;
        Ok(())
    })
}

/// The keys in force: every published key verifies; the newest active ES256 or EdDSA key
/// signs access tokens, and the newest active key of each algorithm signs the ID tokens of
/// clients that ask for that algorithm.
#[derive(Debug)]
pub struct KeySet {
    keys: Vec<SigningKey>,
    signer: usize,
    by_algorithm: Vec<(KeyAlgorithm, usize)>,
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
                .any(|k| k.retired_at.is_none() && signs_access_tokens(k))
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
        let by_algorithm = [
            KeyAlgorithm::ES256,
            KeyAlgorithm::EdDSA,
            KeyAlgorithm::RS256,
        ]
        .into_iter()
        .filter_map(|alg| {
            let i = signer(&stored, now, |k: &StoredKey| k.alg == alg.as_str())?;
            Some((alg, i))
        })
        .collect();
        let signer = signer(&stored, now, signs_access_tokens).ok_or(KeyError::NoUsableKey)?;
        Ok(Self {
            keys,
            signer,
            by_algorithm,
        })
    }

    /// The key access tokens are signed with.
    pub fn signing(&self) -> &SigningKey {
        &self.keys[self.signer]
    }

    /// The key for tokens signed with `alg`: the access-token key if it has that algorithm,
    /// else the newest active key that has; `None` when no key of `alg` is in force.
    pub fn signing_with(&self, alg: KeyAlgorithm) -> Option<&SigningKey> {
        if self.signing().alg == alg {
            return Some(self.signing());
        }
        self.by_algorithm
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, i)| &self.keys[*i])
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
