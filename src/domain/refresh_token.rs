//! The refresh-token format. A refresh token is `tsr_` + id + HMAC(refresh key, id). Only its
//! SHA-256 is stored; the MAC lets the server recompute a token from its id (to answer an
//! idempotent retry with the same successor) while a database dump alone yields no usable
//! token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;

use crate::domain::crypto::{sha256_hex, MasterKey};
use crate::domain::secret::Secret;
use crate::store::models::RefreshToken;
use crate::store::AnyConnection;

/// Prefix of every refresh token, so secret scanners can recognise leaked ones.
pub const PREFIX: &str = "tsr_";
const ID_LEN: usize = 22; // 16 random bytes, base64url
const MAC_LEN: usize = 43; // 32-byte HMAC-SHA256, base64url

/// The plaintext token for `id`.
pub(crate) fn token_for(key: &hmac::Key, id: &str) -> Secret {
    let mac = hmac::sign(key, id.as_bytes());
    Secret::new(format!(
        "{PREFIX}{id}{}",
        URL_SAFE_NO_PAD.encode(mac.as_ref())
    ))
}

/// The id inside a token, if the token is well-formed and was made by this server.
pub(crate) fn parse_token(key: &hmac::Key, token: &str) -> Option<String> {
    let body = token.strip_prefix(PREFIX)?;
    if body.len() != ID_LEN + MAC_LEN || !body.is_ascii() {
        return None;
    }
    let (id, mac) = body.split_at(ID_LEN);
    let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
    hmac::verify(key, id.as_bytes(), &mac).ok()?;
    Some(id.to_owned())
}

/// The stored token `presented` stands for, if it is one of ours: found by the id inside it
/// (the MAC proves the id is ours), then checked against the stored hash.
pub fn find_presented(
    conn: &mut AnyConnection,
    master: &MasterKey,
    presented: &str,
) -> diesel::QueryResult<Option<RefreshToken>> {
    let Some(id) = parse_token(master.refresh_key(), presented) else {
        return Ok(None);
    };
    let hash = hash_token(presented);
    Ok(RefreshToken::find(conn, &id)?.filter(|t| t.token_hash == hash))
}

pub fn hash_token(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::crypto::random_id;

    #[test]
    fn tokens_carry_prefix_and_verify_only_with_their_key() {
        let a = MasterKey::from_bytes(&[1u8; 32]).unwrap();
        let b = MasterKey::from_bytes(&[2u8; 32]).unwrap();
        let id = random_id();
        let token = token_for(a.refresh_key(), &id);
        assert!(token.expose().starts_with("tsr_"));
        assert_eq!(parse_token(a.refresh_key(), token.expose()), Some(id));
        assert_eq!(parse_token(b.refresh_key(), token.expose()), None);
        let truncated = &token.expose()[..token.expose().len() - 1];
        assert_eq!(parse_token(a.refresh_key(), truncated), None);
        assert_eq!(parse_token(a.refresh_key(), "tsr_é"), None);
        assert!(!format!("{token:?}").contains(token.expose()));
    }
}
