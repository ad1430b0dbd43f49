//! Client authentication at the token endpoint (RFC 6749 §2.3).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::domain::client::{self, Client};
use crate::grant::{OAuthError, Params};
use crate::store::AnyConnection;
use crate::value::ClientId;

/// Credentials as presented, before looking the client up.
#[derive(PartialEq, Eq)]
pub struct Credentials {
    pub client_id: ClientId,
    pub secret: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

fn bad_basic() -> OAuthError {
    OAuthError::InvalidClient("malformed Basic credentials".into())
}

/// Parses `Basic base64(urlencode(id):urlencode(secret))`; both halves are form-urldecoded
/// (RFC 6749 §2.3.1). Returns `None` for other schemes.
pub fn parse_basic(header: &str) -> Result<Option<(String, String)>, OAuthError> {
    let mut parts = header.trim().splitn(2, ' ');
    let scheme = parts.next().unwrap_or_default();
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let encoded = parts.next().unwrap_or_default().trim();
    let raw = STANDARD.decode(encoded).map_err(|_| bad_basic())?;
    let text = String::from_utf8(raw).map_err(|_| bad_basic())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad_basic)?;
    // application/x-www-form-urlencoded: `+` is a space, then percent-decoding (§2.3.1).
    let decode = |s: &str| -> Result<String, OAuthError> {
        let spaced = s.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| bad_basic())
    };
    let (id, secret) = (decode(id)?, decode(secret)?);
    if id.is_empty() {
        return Err(bad_basic());
    }
    Ok(Some((id, secret)))
}

/// Extracts the credentials from the header and the body. Using Basic and `client_secret` in
/// the body at once is refused, as is a body `client_id` that contradicts the header.
pub fn credentials(
    authorization: Option<&str>,
    params: &Params,
) -> Result<Credentials, OAuthError> {
    let basic = match authorization {
        Some(h) => parse_basic(h)?,
        None => None,
    };
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    match (basic, body_secret) {
        (Some(_), Some(_)) => Err(OAuthError::InvalidRequest(
            "the client authenticated with more than one method".into(),
        )),
        (Some((id, secret)), None) => {
            if body_id.is_some_and(|b| b != id) {
                return Err(OAuthError::InvalidRequest(
                    "client_id does not match the Authorization header".into(),
                ));
            }
            Ok(Credentials {
                client_id: ClientId::new(id),
                secret: Some(secret),
            })
        }
        (None, secret) => match body_id {
            Some(id) => Ok(Credentials {
                client_id: ClientId::from(id),
                secret: secret.map(str::to_owned),
            }),
            None => Err(OAuthError::InvalidClient(
                "client authentication is required".into(),
            )),
        },
    }
}

pub(crate) use crate::domain::client::plausible;

/// What every failed client authentication says, whatever the reason.
pub(crate) const FAILED: &str = "client authentication failed";

/// Looks the client up and checks its credentials. Every failure reads the same, so the
/// answer does not reveal which client ids exist.
pub fn authenticate(conn: &mut AnyConnection, creds: &Credentials) -> Result<Client, OAuthError> {
    let failed = || OAuthError::InvalidClient(FAILED.into());
    if !plausible(creds.client_id.as_str()) {
        return Err(failed());
    }
    let client = client::get(conn, &creds.client_id)?.ok_or_else(failed)?;
    if client.disabled_at.is_some() {
        return Err(failed());
    }
    let ok = match (&creds.secret, client.is_public()) {
        (None, true) => true,
        (Some(secret), false) => client.secret_matches(secret),
        _ => false,
    };
    if ok {
        Ok(client)
    } else {
        Err(failed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    #[test]
    fn basic_values_are_form_urldecoded() {
        let (id, secret) = parse_basic(&basic("my%20app", "a%2Bb+c%3A"))
            .unwrap()
            .unwrap();
        assert_eq!(id, "my app");
        assert_eq!(secret, "a+b c:");
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        assert_eq!(
            parse_basic("Basic !!!").unwrap_err().code(),
            "invalid_client"
        );
        assert_eq!(
            parse_basic(&format!("Basic {}", STANDARD.encode("nocolon")))
                .unwrap_err()
                .code(),
            "invalid_client"
        );
        assert_eq!(parse_basic("Bearer abc").unwrap(), None);
    }

    #[test]
    fn two_methods_are_refused() {
        let mut params = Params::default();
        params.insert("client_secret", "s");
        let err = credentials(Some(&basic("a", "b")), &params).unwrap_err();
        assert_eq!(err.code(), "invalid_request");
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let c = Credentials {
            client_id: "a".into(),
            secret: Some("hunter2hunter2".into()),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
