//! DPoP proofs (RFC 9449): a JWT an app signs with a key that never leaves it, sent with each
//! token request and each call with a DPoP-bound access token. [`verify`] makes every check of
//! §4.3 that needs nothing but the request: the header (`typ`, an asymmetric `alg`, a public
//! `jwk`), the signature by that key, `htm`, `htu`, `iat`, `ath` and `nonce`. Whether a `jti`
//! was seen before is the caller's to look up, in storage shared by every instance.
//!
//! The signature is checked with ring, from the JWK's own members: a proof is verified against
//! the key it carries, so no key is looked up anywhere, and nothing but these four algorithms
//! (and never `none` or an HMAC) is accepted.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature as rsig;
use serde_json::{Map, Value};

use crate::domain::crypto::sha256_hex;
use crate::domain::keys::thumbprint;
use crate::store::models::SeenProof;
use crate::value::UnixMs;

/// The algorithms a proof may be signed with (`dpop_signing_alg_values_supported`).
pub const ALGORITHMS: &[&str] = &["ES256", "EdDSA", "RS256", "PS256"];

/// The longest proof read: an RSA-8192 key and its signature fit well within it.
const MAX_PROOF_BYTES: usize = 8 * 1024;
/// The longest `jti` kept for replay checks.
pub const MAX_JTI_CHARS: usize = 256;

/// What the request the proof came with was, and what the server asks of a proof.
#[derive(Clone, Copy)]
pub struct Expected<'a> {
    /// The request's method, e.g. `POST`.
    pub method: &'a str,
    /// The endpoint's URL as the issuer names it (never the request's `Host`): a proxy or a
    /// path prefix in front of the server does not change it.
    pub uri: &'a url::Url,
    pub now: UnixMs,
    /// How old a proof may be.
    pub max_age: Duration,
    /// How far ahead of the server's clock a client's may run.
    pub skew: Duration,
    /// The access token the proof must be bound to (`ath`), at a resource.
    pub access_token: Option<&'a str>,
    /// `Some`: a nonce is required, and this says whether one is current.
    pub nonce: Option<&'a dyn Fn(&str) -> bool>,
}

/// A proof that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 SHA-256 thumbprint of its key: what tokens are bound to (`cnf.jkt`).
    pub jkt: String,
    /// Its unique id, for the replay check.
    pub jti: String,
    pub iat: i64,
}

/// Why a proof was refused. Each is `invalid_dpop_proof`, except [`ProofError::UseNonce`]
/// (`use_dpop_nonce`, with a fresh nonce).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the DPoP proof is not a compact JWS with a JSON header and claims")]
    Malformed,
    #[error("the DPoP proof's typ must be dpop+jwt")]
    Type,
    #[error("the DPoP proof's alg must be one of ES256, EdDSA, RS256, PS256")]
    Algorithm,
    #[error("the DPoP proof's jwk {0}")]
    Key(&'static str),
    #[error("the DPoP proof's signature does not verify with its jwk")]
    Signature,
    #[error("the DPoP proof has no {0} claim")]
    Missing(&'static str),
    #[error("the DPoP proof's htm is not this request's method")]
    Method,
    #[error("the DPoP proof's htu is not this endpoint")]
    Uri,
    #[error("the DPoP proof's iat is too far in the past or the future")]
    IssuedAt,
    #[error("the DPoP proof's ath is not the hash of the access token")]
    AccessTokenHash,
    #[error("the DPoP proof was used before")]
    Replayed,
    #[error("the authorization server requires a current nonce in the DPoP proof")]
    UseNonce,
}

impl ProofError {
    /// The OAuth error code (RFC 9449 §4.3, §8).
    pub fn code(&self) -> &'static str {
        match self {
            ProofError::UseNonce => "use_dpop_nonce",
            _ => "invalid_dpop_proof",
        }
    }
}

fn part(text: &str) -> Result<Vec<u8>, ProofError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| ProofError::Malformed)
}

fn json_part(text: &str) -> Result<Map<String, Value>, ProofError> {
    match serde_json::from_slice(&part(text)?) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ProofError::Malformed),
    }
}

/// Checks the proof in a `DPoP` header against the request it came with.
pub fn verify(proof: &str, expected: &Expected<'_>) -> Result<Proof, ProofError> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(ProofError::Malformed);
    }
    let mut parts = proof.split('.');
    let (Some(head), Some(body), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ProofError::Malformed);
    };
    let header = json_part(head)?;
    let claims = json_part(body)?;
    let signature = part(sig)?;

    let typ = header.get("typ").and_then(Value::as_str);
    // Media types compare without regard to case (RFC 7515 §4.1.9).
    if !typ.is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")) {
        return Err(ProofError::Type);
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .filter(|a| ALGORITHMS.contains(a))
        .ok_or(ProofError::Algorithm)?;
    let jwk = match header.get("jwk") {
        Some(Value::Object(jwk)) => jwk,
        _ => return Err(ProofError::Key("is missing")),
    };
    let key = PublicKey::from_jwk(jwk, alg)?;
    let signed = &proof[..head.len() + 1 + body.len()];
    key.verify(alg, signed.as_bytes(), &signature)?;

    let text = |name: &'static str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .ok_or(ProofError::Missing(name))
    };
    let jti = text("jti")?;
    if jti.chars().count() > MAX_JTI_CHARS {
        return Err(ProofError::Malformed);
    }
    if text("htm")? != expected.method {
        return Err(ProofError::Method);
    }
    if !same_target(text("htu")?, expected.uri) {
        return Err(ProofError::Uri);
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or(ProofError::Missing("iat"))?;
    let now_s = expected.now.unix_seconds();
    let oldest = now_s - secs(expected.max_age) - secs(expected.skew);
    if iat < oldest || iat > now_s + secs(expected.skew) {
        return Err(ProofError::IssuedAt);
    }
    if let Some(token) = expected.access_token {
        let ath = text("ath")?;
        let hash = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        if ath != URL_SAFE_NO_PAD.encode(hash.as_ref()) {
            return Err(ProofError::AccessTokenHash);
        }
    }
    if let Some(current) = expected.nonce {
        let nonce = claims.get("nonce").and_then(Value::as_str);
        if !nonce.is_some_and(current) {
            return Err(ProofError::UseNonce);
        }
    }
    Ok(Proof {
        jkt: key.thumbprint,
        jti: jti.to_owned(),
        iat,
    })
}

impl Proof {
    /// The record that this proof was presented, kept for `window` ([`replay_window`]) from
    /// `now`; then retention deletes it.
    pub fn sighting(&self, window: Duration, now: UnixMs) -> SeenProof {
        SeenProof {
            id: sha256_hex(format!("{} {}", self.jkt, self.jti).as_bytes()),
            expires_at: now + window,
        }
    }
}

/// Server nonces (§8), made from the time and a key derived from the master key: every
/// instance makes and accepts the same ones, and nothing is stored. A nonce is good in the
/// period it was made and the next.
pub struct Nonces<'a> {
    pub key: &'a ring::hmac::Key,
    pub period: Duration,
}

impl Nonces<'_> {
    fn at(&self, index: i64) -> String {
        let tag = ring::hmac::sign(self.key, &index.to_be_bytes());
        URL_SAFE_NO_PAD.encode(&tag.as_ref()[..16])
    }

    fn index(&self, now: UnixMs) -> i64 {
        let period = i64::try_from(self.period.as_millis().max(1)).unwrap_or(i64::MAX);
        now.millis().div_euclid(period)
    }

    /// The nonce to hand out now.
    pub fn current(&self, now: UnixMs) -> String {
        self.at(self.index(now))
    }

    /// Whether `nonce` is this period's or the last one's.
    pub fn accepts(&self, nonce: &str, now: UnixMs) -> bool {
        let index = self.index(now);
        [index, index - 1]
            .into_iter()
            .any(|i| crate::domain::crypto::ct_eq(self.at(i).as_bytes(), nonce.as_bytes()))
    }
}

/// How long a `jti` must be remembered: the whole window in which a proof is accepted,
/// clock skew on both sides included.
pub fn replay_window(max_age: Duration, skew: Duration) -> Duration {
    max_age + skew * 2
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

/// `htu` names the endpoint when, without query and fragment, it is the same URI after
/// RFC 3986 normalisation (§6.2.2–6.2.3: case of scheme and host, default port, percent
/// encoding, dot segments), as the `url` crate parses.
fn same_target(htu: &str, endpoint: &url::Url) -> bool {
    let Ok(mut htu) = url::Url::parse(htu) else {
        return false;
    };
    htu.set_query(None);
    htu.set_fragment(None);
    let mut endpoint = endpoint.clone();
    endpoint.set_query(None);
    endpoint.set_fragment(None);
    htu == endpoint
}

/// A proof's public key, read from its JWK, and that key's thumbprint.
struct PublicKey {
    kind: KeyKind,
    thumbprint: String,
}

enum KeyKind {
    /// An uncompressed P-256 point.
    P256(Vec<u8>),
    Ed25519(Vec<u8>),
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

/// Members that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

impl PublicKey {
    fn from_jwk(jwk: &Map<String, Value>, alg: &str) -> Result<Self, ProofError> {
        if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
            return Err(ProofError::Key(
                "must be a public key, without private members",
            ));
        }
        // A member as base64url without padding, decoded, and spelled canonically: one key,
        // one thumbprint.
        let member = |name: &str| -> Result<(String, Vec<u8>), ProofError> {
            let text = jwk
                .get(name)
                .and_then(Value::as_str)
                .ok_or(ProofError::Key("lacks a member its key type needs"))?;
            let bytes = URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|_| ProofError::Key("has a member that is not base64url"))?;
            if URL_SAFE_NO_PAD.encode(&bytes) != text {
                return Err(ProofError::Key("has a member that is not base64url"));
            }
            Ok((text.to_owned(), bytes))
        };
        let kty = jwk.get("kty").and_then(Value::as_str);
        let crv = jwk.get("crv").and_then(Value::as_str);
        let mismatch = ProofError::Key("does not match the alg");
        match alg {
            "ES256" => {
                if kty != Some("EC") || crv != Some("P-256") {
                    return Err(mismatch);
                }
                let (x, xb) = member("x")?;
                let (y, yb) = member("y")?;
                if xb.len() != 32 || yb.len() != 32 {
                    return Err(ProofError::Key("is not a P-256 point"));
                }
                let mut point = vec![4u8];
                point.extend_from_slice(&xb);
                point.extend_from_slice(&yb);
                Ok(Self {
                    kind: KeyKind::P256(point),
                    thumbprint: thumbprint(&format!(
                        r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#
                    )),
                })
            }
            "EdDSA" => {
                if kty != Some("OKP") || crv != Some("Ed25519") {
                    return Err(mismatch);
                }
                let (x, xb) = member("x")?;
                if xb.len() != 32 {
                    return Err(ProofError::Key("is not an Ed25519 key"));
                }
                Ok(Self {
                    kind: KeyKind::Ed25519(xb),
                    thumbprint: thumbprint(&format!(
                        r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#
                    )),
                })
            }
            _ => {
                if kty != Some("RSA") {
                    return Err(mismatch);
                }
                let (n, nb) = member("n")?;
                let (e, eb) = member("e")?;
                Ok(Self {
                    kind: KeyKind::Rsa { n: nb, e: eb },
                    thumbprint: thumbprint(&format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#)),
                })
            }
        }
    }

    fn verify(&self, alg: &str, message: &[u8], signature: &[u8]) -> Result<(), ProofError> {
        let verified = match (&self.kind, alg) {
            (KeyKind::P256(point), "ES256") => {
                rsig::UnparsedPublicKey::new(&rsig::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
            }
            (KeyKind::Ed25519(x), "EdDSA") => {
                rsig::UnparsedPublicKey::new(&rsig::ED25519, x).verify(message, signature)
            }
            // ring takes RSA keys of 2048 to 8192 bits: a shorter one never verifies.
            (KeyKind::Rsa { n, e }, "RS256") => rsig::RsaPublicKeyComponents { n, e }.verify(
                &rsig::RSA_PKCS1_2048_8192_SHA256,
                message,
                signature,
            ),
            (KeyKind::Rsa { n, e }, "PS256") => rsig::RsaPublicKeyComponents { n, e }.verify(
                &rsig::RSA_PSS_2048_8192_SHA256,
                message,
                signature,
            ),
            _ => return Err(ProofError::Algorithm),
        };
        verified.map_err(|_| ProofError::Signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::KeyPair;
    use serde_json::json;

    const NOW_S: i64 = 1_800_000_000;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn endpoint() -> url::Url {
        url::Url::parse("https://auth.example.com/token").unwrap()
    }

    fn expected(uri: &url::Url) -> Expected<'_> {
        Expected {
            method: "POST",
            uri,
            now: UnixMs::from_millis(NOW_S * 1000),
            max_age: Duration::from_secs(60),
            skew: Duration::from_secs(5),
            access_token: None,
            nonce: None,
        }
    }

    /// An app's key: signs proofs with any header and claims.
    enum Signer {
        Ec(rsig::EcdsaKeyPair),
        Ed(rsig::Ed25519KeyPair),
    }

    impl Signer {
        fn ec() -> Self {
            let rng = SystemRandom::new();
            let alg = &rsig::ECDSA_P256_SHA256_FIXED_SIGNING;
            let doc = rsig::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
            Signer::Ec(rsig::EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).unwrap())
        }

        fn ed() -> Self {
            let doc = rsig::Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
            Signer::Ed(rsig::Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap())
        }

        fn jwk(&self) -> Value {
            match self {
                Signer::Ec(pair) => {
                    let point = pair.public_key().as_ref();
                    json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])})
                }
                Signer::Ed(pair) => {
                    json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())})
                }
            }
        }

        fn alg(&self) -> &'static str {
            match self {
                Signer::Ec(_) => "ES256",
                Signer::Ed(_) => "EdDSA",
            }
        }

        fn header(&self) -> Value {
            json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk()})
        }

        fn sign_raw(&self, header: &Value, claims: &Value) -> String {
            let input = format!(
                "{}.{}",
                b64(header.to_string().as_bytes()),
                b64(claims.to_string().as_bytes())
            );
            let sig = match self {
                Signer::Ec(pair) => pair
                    .sign(&SystemRandom::new(), input.as_bytes())
                    .unwrap()
                    .as_ref()
                    .to_vec(),
                Signer::Ed(pair) => pair.sign(input.as_bytes()).as_ref().to_vec(),
            };
            format!("{input}.{}", b64(&sig))
        }

        fn sign(&self, claims: &Value) -> String {
            self.sign_raw(&self.header(), claims)
        }
    }

    fn claims() -> Value {
        json!({"jti": "e1j3V_bKic8-LAEB", "htm": "POST", "htu": "https://auth.example.com/token", "iat": NOW_S})
    }

    fn with(mut v: Value, key: &str, value: Value) -> Value {
        v[key] = value;
        v
    }

    #[test]
    fn a_good_proof_passes_and_names_its_key() {
        let uri = endpoint();
        for signer in [Signer::ec(), Signer::ed()] {
            let proof = verify(&signer.sign(&claims()), &expected(&uri)).unwrap();
            assert_eq!(proof.jti, "e1j3V_bKic8-LAEB");
            // RFC 7638 over the required members, as `keys` computes a key's kid.
            let jwk = signer.jwk();
            let canonical = match signer {
                Signer::Ec(_) => format!(
                    r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                    jwk["x"].as_str().unwrap(),
                    jwk["y"].as_str().unwrap()
                ),
                Signer::Ed(_) => format!(
                    r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                    jwk["x"].as_str().unwrap()
                ),
            };
            assert_eq!(proof.jkt, thumbprint(&canonical));
        }
    }

    /// RFC 9449 §4.3 check 1–3: one JWT, typ, alg.
    #[test]
    fn the_header_is_checked() {
        let uri = endpoint();
        let signer = Signer::ec();
        let ex = expected(&uri);
        assert_eq!(verify("not a jwt", &ex), Err(ProofError::Malformed));
        assert_eq!(verify("a.b.c.d", &ex), Err(ProofError::Malformed));
        let good = signer.sign(&claims());
        assert_eq!(
            verify(&format!("{good}.extra"), &ex),
            Err(ProofError::Malformed)
        );
        let typ = with(signer.header(), "typ", json!("JWT"));
        assert_eq!(
            verify(&signer.sign_raw(&typ, &claims()), &ex),
            Err(ProofError::Type)
        );
        let no_typ = {
            let mut h = signer.header();
            h.as_object_mut().unwrap().remove("typ");
            h
        };
        assert_eq!(
            verify(&signer.sign_raw(&no_typ, &claims()), &ex),
            Err(ProofError::Type)
        );
        for alg in ["none", "HS256", "ES384", ""] {
            let h = with(signer.header(), "alg", json!(alg));
            assert_eq!(
                verify(&signer.sign_raw(&h, &claims()), &ex),
                Err(ProofError::Algorithm),
                "{alg}"
            );
        }
    }

    /// §4.3 check 5–6: a public key that matches the alg, and a signature by it.
    #[test]
    fn the_key_and_signature_are_checked() {
        let uri = endpoint();
        let ex = expected(&uri);
        let signer = Signer::ec();
        let private = with(
            signer.header(),
            "jwk",
            with(signer.jwk(), "d", json!("c2VjcmV0")),
        );
        assert_eq!(
            verify(&signer.sign_raw(&private, &claims()), &ex),
            Err(ProofError::Key(
                "must be a public key, without private members"
            ))
        );
        let missing = {
            let mut h = signer.header();
            h.as_object_mut().unwrap().remove("jwk");
            h
        };
        assert_eq!(
            verify(&signer.sign_raw(&missing, &claims()), &ex),
            Err(ProofError::Key("is missing"))
        );
        // The EdDSA key named as ES256, and the other way round.
        let mismatched = with(signer.header(), "alg", json!("EdDSA"));
        assert_eq!(
            verify(&signer.sign_raw(&mismatched, &claims()), &ex),
            Err(ProofError::Key("does not match the alg"))
        );
        // Signed by another key than the one it carries.
        let other = Signer::ec();
        let forged = other.sign_raw(&signer.header(), &claims());
        assert_eq!(verify(&forged, &ex), Err(ProofError::Signature));
        // A claim changed after signing.
        let good = signer.sign(&claims());
        let parts: Vec<&str> = good.split('.').collect();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            b64(with(claims(), "htm", json!("GET")).to_string().as_bytes()),
            parts[2]
        );
        assert_eq!(verify(&tampered, &ex), Err(ProofError::Signature));
        // A padded or non-canonical member.
        let padded = with(
            signer.header(),
            "jwk",
            with(signer.jwk(), "x", json!("AAAA=")),
        );
        assert_eq!(
            verify(&signer.sign_raw(&padded, &claims()), &ex),
            Err(ProofError::Key("has a member that is not base64url"))
        );
    }

    /// §4.3 check 4, 7–9: the claims; htu normalised, its query and fragment ignored.
    #[test]
    fn the_claims_are_checked() {
        let uri = endpoint();
        let ex = expected(&uri);
        let signer = Signer::ed();
        for name in ["jti", "htm", "htu", "iat"] {
            let mut c = claims();
            c.as_object_mut().unwrap().remove(name);
            assert_eq!(
                verify(&signer.sign(&c), &ex),
                Err(ProofError::Missing(name)),
                "{name}"
            );
        }
        let get = with(claims(), "htm", json!("GET"));
        assert_eq!(verify(&signer.sign(&get), &ex), Err(ProofError::Method));
        for htu in [
            "https://auth.example.com/revoke",
            "https://other.example.com/token",
            "http://auth.example.com/token",
            "https://auth.example.com:8443/token",
            "not a uri",
        ] {
            let c = with(claims(), "htu", json!(htu));
            assert_eq!(verify(&signer.sign(&c), &ex), Err(ProofError::Uri), "{htu}");
        }
        for htu in [
            "https://AUTH.example.com/token",
            "https://auth.example.com:443/token",
            "https://auth.example.com/./token",
            "https://auth.example.com/token?x=1",
            "https://auth.example.com/token#f",
        ] {
            let c = with(claims(), "htu", json!(htu));
            assert!(verify(&signer.sign(&c), &ex).is_ok(), "{htu}");
        }
        // iat: a minute old at most, five seconds ahead at most (with the skew both ways).
        for (iat, ok) in [
            (NOW_S - 65, true),
            (NOW_S - 66, false),
            (NOW_S + 5, true),
            (NOW_S + 6, false),
        ] {
            let c = with(claims(), "iat", json!(iat));
            let r = verify(&signer.sign(&c), &ex);
            assert_eq!(r.is_ok(), ok, "iat {iat}: {r:?}");
            if !ok {
                assert_eq!(r, Err(ProofError::IssuedAt));
            }
        }
        let long = with(claims(), "jti", json!("j".repeat(MAX_JTI_CHARS + 1)));
        assert_eq!(verify(&signer.sign(&long), &ex), Err(ProofError::Malformed));
    }

    /// §4.3 check 10–11 and §7: nonce when demanded, ath at a resource.
    #[test]
    fn nonce_and_access_token_hash_are_checked() {
        let uri = endpoint();
        let signer = Signer::ec();
        let current = |n: &str| n == "n-1";
        let ex = Expected {
            nonce: Some(&current),
            ..expected(&uri)
        };
        assert_eq!(
            verify(&signer.sign(&claims()), &ex),
            Err(ProofError::UseNonce)
        );
        let stale = with(claims(), "nonce", json!("n-0"));
        assert_eq!(verify(&signer.sign(&stale), &ex), Err(ProofError::UseNonce));
        assert_eq!(ProofError::UseNonce.code(), "use_dpop_nonce");
        let fresh = with(claims(), "nonce", json!("n-1"));
        assert!(verify(&signer.sign(&fresh), &ex).is_ok());

        let token = "an-access-token";
        let ex = Expected {
            access_token: Some(token),
            ..expected(&uri)
        };
        assert_eq!(
            verify(&signer.sign(&claims()), &ex),
            Err(ProofError::Missing("ath"))
        );
        let wrong = with(claims(), "ath", json!(b64(b"not the hash")));
        assert_eq!(
            verify(&signer.sign(&wrong), &ex),
            Err(ProofError::AccessTokenHash)
        );
        let hash = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let right = with(claims(), "ath", json!(b64(hash.as_ref())));
        assert!(verify(&signer.sign(&right), &ex).is_ok());
        assert_eq!(ProofError::AccessTokenHash.code(), "invalid_dpop_proof");
    }

    /// RS256 and PS256 with a 2048-bit key, as the server makes its own RSA keys.
    #[test]
    fn rsa_proofs_verify_with_either_padding() {
        use crate::domain::keys::{KeyAlgorithm, SigningKey};
        let (key, pkcs8) = SigningKey::generate(KeyAlgorithm::RS256).unwrap();
        let pair = rsig::RsaKeyPair::from_pkcs8(&pkcs8).unwrap();
        let jwk = json!({"kty": "RSA", "n": key.jwk["n"], "e": key.jwk["e"]});
        let uri = endpoint();
        for (alg, padding) in [
            ("RS256", &rsig::RSA_PKCS1_SHA256 as &dyn rsig::RsaEncoding),
            ("PS256", &rsig::RSA_PSS_SHA256),
        ] {
            let header = json!({"typ": "dpop+jwt", "alg": alg, "jwk": jwk});
            let input = format!(
                "{}.{}",
                b64(header.to_string().as_bytes()),
                b64(claims().to_string().as_bytes())
            );
            let mut sig = vec![0u8; pair.public().modulus_len()];
            pair.sign(padding, &SystemRandom::new(), input.as_bytes(), &mut sig)
                .unwrap();
            let proof = verify(&format!("{input}.{}", b64(&sig)), &expected(&uri)).unwrap();
            assert_eq!(
                proof.jkt, key.kid,
                "the thumbprint is the key's RFC 7638 kid"
            );
            // The other padding's signature does not verify.
            let other = if alg == "RS256" { "PS256" } else { "RS256" };
            let swapped = json!({"typ": "dpop+jwt", "alg": other, "jwk": jwk});
            let input2 = format!(
                "{}.{}",
                b64(swapped.to_string().as_bytes()),
                b64(claims().to_string().as_bytes())
            );
            let mut sig2 = vec![0u8; pair.public().modulus_len()];
            pair.sign(padding, &SystemRandom::new(), input2.as_bytes(), &mut sig2)
                .unwrap();
            assert_eq!(
                verify(&format!("{input2}.{}", b64(&sig2)), &expected(&uri)),
                Err(ProofError::Signature)
            );
        }
    }

    #[test]
    fn nonces_last_two_periods_and_depend_on_the_key() {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"k1");
        let other = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"k2");
        let nonces = Nonces {
            key: &key,
            period: Duration::from_secs(60),
        };
        let at = |s: i64| UnixMs::from_millis(s * 1000);
        let n = nonces.current(at(1_000_020));
        assert!(nonces.accepts(&n, at(1_000_020)));
        assert!(nonces.accepts(&n, at(1_000_079)), "the next period");
        assert!(!nonces.accepts(&n, at(1_000_140)), "two periods on");
        assert!(!nonces.accepts("guess", at(1_000_020)));
        let theirs = Nonces {
            key: &other,
            period: Duration::from_secs(60),
        };
        assert_ne!(theirs.current(at(1_000_020)), n);
    }

    #[test]
    fn the_replay_window_covers_the_skew_on_both_sides() {
        assert_eq!(
            replay_window(Duration::from_secs(60), Duration::from_secs(5)),
            Duration::from_secs(70)
        );
    }
}
