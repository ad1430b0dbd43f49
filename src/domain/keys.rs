//! Signing keys: generated with ring, sealed under the master key, published as a JWKS.
//!
//! jsonwebtoken signs and verifies through [`RING_PROVIDER`], a `CryptoProvider` over ring that
//! knows only the asymmetric algorithms Tessera issues (ES256, EdDSA): `none` and HMAC
//! algorithms can never verify, whatever a token's header says.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{self as rsig, KeyPair};
use serde::{Deserialize, Serialize};

use crate::domain::crypto::MasterKey;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::store::models::StoredKey;
use crate::store::{write_tx, AnyConnection};
use diesel::RunQueryDsl;

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

/// The ring-backed provider; install it once per process with [`install_crypto_provider`].
pub static RING_PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

/// Makes [`RING_PROVIDER`] jsonwebtoken's provider. Idempotent.
pub fn install_crypto_provider() {
    // Err means a provider is installed already: ours, by an earlier call.
    let _ = RING_PROVIDER.install_default();
}

fn bad_key() -> JwtError {
    ErrorKind::InvalidKeyFormat.into()
}

struct EcSigner(rsig::EcdsaKeyPair);
struct EdSigner(rsig::Ed25519KeyPair);
struct RingVerifier {
    alg: Algorithm,
    params: &'static dyn rsig::VerificationAlgorithm,
    public: Vec<u8>,
}

impl Signer<Vec<u8>> for EcSigner {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let sig = self
            .0
            .sign(&SystemRandom::new(), msg)
            .map_err(|_| signature::Error::new())?;
        Ok(sig.as_ref().to_vec())
    }
}
impl JwtSigner for EcSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}
impl Signer<Vec<u8>> for EdSigner {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(self.0.sign(msg).as_ref().to_vec())
    }
}
impl JwtSigner for EdSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}
impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        rsig::UnparsedPublicKey::new(self.params, &self.public)
            .verify(msg, sig)
            .map_err(|_| signature::Error::new())
    }
}
impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn new_signer(
    alg: &Algorithm,
    key: &EncodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    match (alg, key.family()) {
        (Algorithm::ES256, AlgorithmFamily::Ec) => {
            let pair = rsig::EcdsaKeyPair::from_pkcs8(
                &rsig::ECDSA_P256_SHA256_FIXED_SIGNING,
                key.as_bytes(),
                &SystemRandom::new(),
            )
            .map_err(|_| JwtError::from(ErrorKind::InvalidEcdsaKey))?;
            Ok(Box::new(EcSigner(pair)))
        }
        (Algorithm::EdDSA, AlgorithmFamily::Ed) => {
            let pair = rsig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(key.as_bytes())
                .map_err(|_| JwtError::from(ErrorKind::InvalidEddsaKey))?;
            Ok(Box::new(EdSigner(pair)))
        }
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

fn new_verifier(
    alg: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    let params: &'static dyn rsig::VerificationAlgorithm = match (alg, key.family()) {
        (Algorithm::ES256, AlgorithmFamily::Ec) => &rsig::ECDSA_P256_SHA256_FIXED,
        (Algorithm::EdDSA, AlgorithmFamily::Ed) => &rsig::ED25519,
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    let public = key.try_get_as_bytes().map_err(|_| bad_key())?.to_vec();
    Ok(Box::new(RingVerifier {
        alg: *alg,
        params,
        public,
    }))
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
    pub fn from_pkcs8(alg: KeyAlgorithm, pkcs8: &[u8]) -> anyhow::Result<Self> {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let (thumb_input, mut jwk, encoding, decoding) = match alg {
            KeyAlgorithm::ES256 => {
                let pair = rsig::EcdsaKeyPair::from_pkcs8(
                    &rsig::ECDSA_P256_SHA256_FIXED_SIGNING,
                    pkcs8,
                    &SystemRandom::new(),
                )
                .map_err(|_| anyhow::anyhow!("not a P-256 PKCS#8 key"))?;
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
                    .map_err(|_| anyhow::anyhow!("not an Ed25519 PKCS#8 key"))?;
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
    pub fn generate(alg: KeyAlgorithm) -> anyhow::Result<(Self, Vec<u8>)> {
        let rng = SystemRandom::new();
        let doc = match alg {
            KeyAlgorithm::ES256 => {
                rsig::EcdsaKeyPair::generate_pkcs8(&rsig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            }
            KeyAlgorithm::EdDSA => rsig::Ed25519KeyPair::generate_pkcs8(&rng),
        }
        .map_err(|_| anyhow::anyhow!("key generation failed"))?;
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
    now: i64,
    activates_at: i64,
) -> anyhow::Result<StoredKey> {
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

/// The state of every key in `keys` (newest first, as [`StoredKey::all`] returns them).
pub fn states(keys: &[StoredKey], now: i64, retention_ms: i64) -> Vec<KeyState> {
    let signer = keys
        .iter()
        .position(|k| k.retired_at.is_none() && k.activates_at <= now)
        .or_else(|| keys.iter().position(|k| k.retired_at.is_none()));
    keys.iter()
        .enumerate()
        .map(|(i, k)| match k.retired_at {
            Some(at) if at > now - retention_ms => KeyState::Retired,
            Some(_) => KeyState::Expired,
            None if Some(i) == signer => KeyState::Signing,
            None if k.activates_at > now => KeyState::Pending,
            None => KeyState::Verifying,
        })
        .collect()
}

/// Retires `kid`: servers stop signing with it at their next key reload, and it leaves the
/// JWKS once the tokens it signed have expired (`Settings::key_retention_ms`). Refused when no other key would be left, and, without `force`, when no other key is
/// active yet (the pending one would sign before relying parties know it).
pub fn retire(conn: &mut AnyConnection, kid: &str, force: bool, now: i64) -> anyhow::Result<()> {
    write_tx(conn, |c| -> anyhow::Result<()> {
        // Two retirements at once must not retire every key between them.
        if let AnyConnection::Postgresql(_) = c {
            diesel::sql_query("SELECT pg_advisory_xact_lock(7365726102)").execute(c)?;
        }
        let keys = StoredKey::all(c)?;
        let key = keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| anyhow::anyhow!("no signing key with kid {kid}"))?;
        if key.retired_at.is_some() {
            anyhow::bail!("key {kid} is already retired");
        }
        let others: Vec<&StoredKey> = keys
            .iter()
            .filter(|k| k.kid != kid && k.retired_at.is_none())
            .collect();
        if others.is_empty() {
            anyhow::bail!("key {kid} is the only signing key: run `key rotate` first");
        }
        if !force && !others.iter().any(|k| k.activates_at <= now) {
            anyhow::bail!(
                "the other keys are not active yet: retiring {kid} now would make a key sign before relying parties have fetched it; wait, or pass --force"
            );
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
        retention_ms: i64,
        now: i64,
    ) -> anyhow::Result<Self> {
        // Serialised, so that instances starting together on a fresh database create one key.
        write_tx(conn, |c| -> anyhow::Result<()> {
            if let AnyConnection::Postgresql(_) = c {
                diesel::sql_query("SELECT pg_advisory_xact_lock(7365726102)").execute(c)?;
            }
            if !StoredKey::published(c, now)?
                .iter()
                .any(|k| k.retired_at.is_none())
            {
                create(c, master, alg, now, now)?;
            }
            Ok(())
        })?;
        Self::load(conn, master, retention_ms, now)
    }

    /// Loads every key still published: unretired, or retired less than `retention_ms` ago.
    pub fn load(
        conn: &mut AnyConnection,
        master: &MasterKey,
        retention_ms: i64,
        now: i64,
    ) -> anyhow::Result<Self> {
        let stored = StoredKey::published(conn, now.saturating_sub(retention_ms))?;
        let mut keys = Vec::with_capacity(stored.len());
        for s in &stored {
            let alg = KeyAlgorithm::parse(&s.alg).ok_or_else(|| {
                anyhow::anyhow!("signing key {} has unknown algorithm {}", s.kid, s.alg)
            })?;
            let pkcs8 = master
                .open(s.kid.as_bytes(), &s.private_key)
                .map_err(|e| anyhow::anyhow!("signing key {}: {e}", s.kid))?;
            keys.push(SigningKey::from_pkcs8(alg, &pkcs8)?);
        }
        // Newest active key; failing that (every key pending), the newest unretired one.
        let usable = |s: &&StoredKey| s.retired_at.is_none();
        let signer = stored
            .iter()
            .position(|s| usable(&s) && s.activates_at <= now)
            .or_else(|| stored.iter().position(|s| usable(&s)))
            .ok_or_else(|| anyhow::anyhow!("no usable signing key in the database"))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::crypto::{sign, verify};

    fn unb64(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    /// RFC 8037 appendix A.1–A.4: Ed25519 is deterministic, so the signature must match exactly.
    #[test]
    fn eddsa_matches_rfc8037_test_vector() {
        install_crypto_provider();
        let seed = unb64("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
        let mut pkcs8 = hex("302e020100300506032b657004220420");
        pkcs8.extend_from_slice(&seed);
        let key = SigningKey::from_pkcs8(KeyAlgorithm::EdDSA, &pkcs8).unwrap();
        assert_eq!(key.jwk["x"], "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
        // A.3: the RFC 7638 thumbprint of this key.
        assert_eq!(key.kid, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        let input = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        let expected = "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
        assert_eq!(
            sign(input, &key.encoding, Algorithm::EdDSA).unwrap(),
            expected
        );
        assert!(verify(expected, input, &key.decoding, Algorithm::EdDSA).unwrap());
        assert!(!verify(expected, b"tampered", &key.decoding, Algorithm::EdDSA).unwrap());
    }

    /// RFC 7515 appendix A.3: ECDSA signatures are randomised, so verify the RFC's signature and
    /// a round trip of our own.
    #[test]
    fn es256_verifies_rfc7515_test_vector() {
        install_crypto_provider();
        let decoding = DecodingKey::from_ec_components(
            "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        )
        .unwrap();
        let input = b"eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        let sig = "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
        assert!(verify(sig, input, &decoding, Algorithm::ES256).unwrap());
        assert!(!verify(sig, b"tampered", &decoding, Algorithm::ES256).unwrap());

        let (key, _) = SigningKey::generate(KeyAlgorithm::ES256).unwrap();
        let ours = sign(b"message", &key.encoding, Algorithm::ES256).unwrap();
        assert!(verify(&ours, b"message", &key.decoding, Algorithm::ES256).unwrap());
    }

    #[test]
    fn hmac_and_mismatched_algorithms_never_verify() {
        install_crypto_provider();
        let (key, _) = SigningKey::generate(KeyAlgorithm::ES256).unwrap();
        let secret = DecodingKey::from_secret(b"public key bytes");
        assert!(verify("AAAA", b"m", &secret, Algorithm::HS256).is_err());
        assert!(verify("AAAA", b"m", &key.decoding, Algorithm::EdDSA).is_err());
        assert!(sign(b"m", &EncodingKey::from_secret(b"k"), Algorithm::HS256).is_err());
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
