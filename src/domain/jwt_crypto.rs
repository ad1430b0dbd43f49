//! The `CryptoProvider` jsonwebtoken signs and verifies through: ring, and only the
//! asymmetric algorithms Tessera issues (ES256, EdDSA, RS256), so `none` and HMAC algorithms
//! can never verify, whatever a token's header says. Checked against the RFC 8037 and RFC 7515
//! test vectors below.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature as rsig;

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
struct RsaSigner(rsig::RsaKeyPair);
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
impl Signer<Vec<u8>> for RsaSigner {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let mut sig = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(&rsig::RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut sig)
            .map_err(|_| signature::Error::new())?;
        Ok(sig)
    }
}
impl JwtSigner for RsaSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
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
        // The key's bytes are PKCS#8 (see `SigningKey::from_pkcs8`).
        (Algorithm::RS256, AlgorithmFamily::Rsa) => {
            let pair = rsig::RsaKeyPair::from_pkcs8(key.as_bytes())
                .map_err(|_| JwtError::from(ErrorKind::InvalidRsaKey("not PKCS#8".into())))?;
            Ok(Box::new(RsaSigner(pair)))
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
        (Algorithm::RS256, AlgorithmFamily::Rsa) => &rsig::RSA_PKCS1_2048_8192_SHA256,
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    let public = key.try_get_as_bytes().map_err(|_| bad_key())?.to_vec();
    Ok(Box::new(RingVerifier {
        alg: *alg,
        params,
        public,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::keys::{KeyAlgorithm, SigningKey};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
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

    /// RS256 (RFC 7518 §3.3): a key we generate signs and verifies; relying parties verify
    /// through the JWKS (tests/api/oidc).
    #[test]
    fn rs256_round_trips_through_the_published_key() {
        install_crypto_provider();
        let (key, _) = SigningKey::generate(KeyAlgorithm::RS256).unwrap();
        assert_eq!(key.jwk["kty"], "RSA");
        assert_eq!(key.jwk["e"], "AQAB");
        let sig = sign(b"message", &key.encoding, Algorithm::RS256).unwrap();
        assert_eq!(unb64(&sig).len(), 256, "2048-bit signatures");
        assert!(verify(&sig, b"message", &key.decoding, Algorithm::RS256).unwrap());
        assert!(!verify(&sig, b"tampered", &key.decoding, Algorithm::RS256).unwrap());
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
