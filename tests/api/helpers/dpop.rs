//! An app's DPoP key (RFC 9449), as a client library holds one: it signs proofs for requests.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self as rsig, KeyPair};
use serde_json::{json, Value};

pub struct DpopKey {
    pair: rsig::EcdsaKeyPair,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl DpopKey {
    /// A new P-256 key (ES256).
    pub fn new() -> Self {
        let rng = SystemRandom::new();
        let alg = &rsig::ECDSA_P256_SHA256_FIXED_SIGNING;
        let doc = rsig::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        Self {
            pair: rsig::EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).unwrap(),
        }
    }

    pub fn jwk(&self) -> Value {
        let point = self.pair.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])})
    }

    /// The RFC 7638 thumbprint: what `cnf.jkt` names.
    pub fn thumbprint(&self) -> String {
        let jwk = self.jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        );
        b64(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
    }

    /// Signs `claims` under `header` as they are.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }

    pub fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk()})
    }

    /// The claims of a fresh proof for `method` `url` at `iat` (seconds).
    pub fn claims(method: &str, url: &str, iat: i64) -> Value {
        json!({"jti": uuid::Uuid::new_v4().to_string(), "htm": method, "htu": url, "iat": iat})
    }

    /// A fresh proof for a resource request with `access_token` (`ath`, RFC 9449 §7).
    pub fn proof_for(&self, method: &str, url: &str, iat: i64, access_token: &str) -> String {
        let mut claims = Self::claims(method, url, iat);
        claims["ath"] = ath(access_token).into();
        self.sign(&self.header(), &claims)
    }

    /// A fresh proof for `method` `url` at `iat`.
    pub fn proof(&self, method: &str, url: &str, iat: i64) -> String {
        self.sign(&self.header(), &Self::claims(method, url, iat))
    }
}

/// `ath`: the base64url SHA-256 of an access token.
pub fn ath(access_token: &str) -> String {
    b64(ring::digest::digest(&ring::digest::SHA256, access_token.as_bytes()).as_ref())
}
