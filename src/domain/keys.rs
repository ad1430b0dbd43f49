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
use crate::domain::now_ms;
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

/// The keys in force: the newest signs, all are published and accepted.
#[derive(Debug)]
pub struct KeySet {
    keys: Vec<SigningKey>,
}

impl KeySet {
    /// Loads the unretired keys, creating one with `alg` when there is none.
    pub fn load_or_create(
        conn: &mut AnyConnection,
        master: &MasterKey,
        alg: KeyAlgorithm,
    ) -> anyhow::Result<Self> {
        // Serialised, so that instances starting together on a fresh database create one key.
        write_tx(conn, |c| -> anyhow::Result<()> {
            if let AnyConnection::Postgresql(_) = c {
                diesel::sql_query("SELECT pg_advisory_xact_lock(7365726102)").execute(c)?;
            }
            if StoredKey::active(c)?.is_empty() {
                let (key, pkcs8) = SigningKey::generate(alg)?;
                StoredKey {
                    kid: key.kid.clone(),
                    alg: alg.as_str().to_owned(),
                    private_key: master.seal(key.kid.as_bytes(), &pkcs8),
                    public_jwk: key.jwk.to_string(),
                    created_at: now_ms(),
                    retired_at: None,
                }
                .insert(c)?;
                tracing::info!(kid = %key.kid, alg = alg.as_str(), "generated a signing key");
            }
            Ok(())
        })?;
        Self::load(conn, master)
    }

    pub fn load(conn: &mut AnyConnection, master: &MasterKey) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        // Newest first: the newest key signs.
        for stored in StoredKey::active(conn)? {
            let alg = KeyAlgorithm::parse(&stored.alg).ok_or_else(|| {
                anyhow::anyhow!(
                    "signing key {} has unknown algorithm {}",
                    stored.kid,
                    stored.alg
                )
            })?;
            let pkcs8 = master
                .open(stored.kid.as_bytes(), &stored.private_key)
                .map_err(|e| anyhow::anyhow!("signing key {}: {e}", stored.kid))?;
            keys.push(SigningKey::from_pkcs8(alg, &pkcs8)?);
        }
        if keys.is_empty() {
            anyhow::bail!("no signing key in the database");
        }
        Ok(Self { keys })
    }

    pub fn signing(&self) -> &SigningKey {
        &self.keys[0]
    }

    pub fn find(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// The JWKS document (RFC 7517 §5).
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
    }

    pub fn algorithms(&self) -> Vec<&'static str> {
        let mut algs: Vec<_> = self.keys.iter().map(|k| k.alg.as_str()).collect();
        algs.sort_unstable();
        algs.dedup();
        algs
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
