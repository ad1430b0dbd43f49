//! The refresh-token format. A refresh token is `tsr_` + family id + token id + HMAC(refresh
//! key, family id + token id). Only its SHA-256 is stored; the MAC lets the server recompute a
//! token from its ids (to answer an idempotent retry with the same successor) while a database
//! dump alone yields no usable token, and proves which family a token belongs to even after its
//! row has been pruned: a replay of a long-rotated token still revokes its family.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;

use crate::domain::crypto::{sha256_hex, MasterKey};
use crate::domain::secret::Secret;
use crate::store::models::RefreshToken;
use crate::store::AnyConnection;
use crate::value::{FamilyId, TokenId};

/// Prefix of every refresh token, so secret scanners can recognise leaked ones.
pub const PREFIX: &str = "tsr_";
const ID_LEN: usize = 22; // 16 bytes, base64url
const MAC_LEN: usize = 43; // 32-byte HMAC-SHA256, base64url

/// What a token made by this server says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub id: TokenId,
    pub family_id: FamilyId,
}

/// The plaintext token for token `id` of family `family_id`.
pub(crate) fn token_for(key: &hmac::Key, family_id: &FamilyId, id: &TokenId) -> Secret {
    let ids = format!("{family_id}{id}");
    let mac = hmac::sign(key, ids.as_bytes());
    Secret::new(format!(
        "{PREFIX}{ids}{}",
        URL_SAFE_NO_PAD.encode(mac.as_ref())
    ))
}

/// The ids inside a token, if the token is well-formed and was made by this server.
pub(crate) fn parse_token(key: &hmac::Key, token: &str) -> Option<Parsed> {
    let body = token.strip_prefix(PREFIX)?;
    if !body.is_ascii() || body.len() < MAC_LEN {
        return None;
    }
    let (ids, mac) = body.split_at(body.len() - MAC_LEN);
    if ids.len() != 2 * ID_LEN {
        return None;
    }
    let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
    hmac::verify(key, ids.as_bytes(), &mac).ok()?;
    let (family_id, id) = ids.split_at(ID_LEN);
    Some(Parsed {
        id: TokenId::from(id),
        family_id: FamilyId::from(family_id),
    })
}

impl Parsed {
    /// The stored token this parsed one stands for: the row of its id, if the row's hash is
    /// `hash` (the presented token's) and the row is in the family the token names.
    pub(crate) fn stored(
        &self,
        conn: &mut AnyConnection,
        hash: &str,
    ) -> diesel::QueryResult<Option<RefreshToken>> {
        Ok(RefreshToken::find(conn, &self.id)?
            .filter(|t| t.token_hash == hash && t.family_id == self.family_id))
    }
}

/// What a presented refresh token stands for.
#[derive(Debug)]
pub enum Presented {
    /// Its stored row.
    Stored(RefreshToken),
    /// Made by this server (the MAC says so), but its row is gone: a rotated token that
    /// retention pruned, since active tokens never are. It still names its family, which the
    /// refresh path revokes on a replay and `/revoke` revokes for its client.
    Pruned(Parsed),
    /// Not one of ours.
    Unknown,
}

/// Finds the token `presented` stands for: by the ids inside it (the MAC proves they are
/// ours), then checked against the stored hash.
pub fn resolve(
    conn: &mut AnyConnection,
    master: &MasterKey,
    presented: &str,
) -> diesel::QueryResult<Presented> {
    let Some(parsed) = parse_token(master.refresh_key(), presented) else {
        return Ok(Presented::Unknown);
    };
    Ok(match parsed.stored(conn, &hash_token(presented))? {
        Some(token) => Presented::Stored(token),
        None => Presented::Pruned(parsed),
    })
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
        let (family, id) = (FamilyId::new(random_id()), TokenId::new(random_id()));
        let token = token_for(a.refresh_key(), &family, &id);
        assert!(token.expose().starts_with("tsr_"));
        let parsed = parse_token(a.refresh_key(), token.expose()).unwrap();
        assert_eq!((parsed.id, parsed.family_id), (id.clone(), family.clone()));
        assert_eq!(parse_token(b.refresh_key(), token.expose()), None);
        // The MAC covers both ids: another family's id with this MAC is refused.
        let other = token.expose().replacen(family.as_str(), &random_id(), 1);
        assert_eq!(parse_token(a.refresh_key(), &other), None);
        let truncated = &token.expose()[..token.expose().len() - 1];
        assert_eq!(parse_token(a.refresh_key(), truncated), None);
        assert_eq!(parse_token(a.refresh_key(), "tsr_é"), None);
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn a_token_without_its_family_id_is_refused() {
        // `tsr_` + id + MAC(id): a format that never shipped.
        let key = MasterKey::from_bytes(&[1u8; 32]).unwrap();
        let id = random_id();
        let mac = hmac::sign(key.refresh_key(), id.as_bytes());
        let short = format!("{PREFIX}{id}{}", URL_SAFE_NO_PAD.encode(mac.as_ref()));
        assert_eq!(parse_token(key.refresh_key(), &short), None);
    }
}
