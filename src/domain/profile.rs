//! What a user shows apps about themselves: the OpenID Connect standard claims Tessera keeps (a
//! full name, an email address and whether it was verified), and which of them each scope
//! releases (OIDC Core §5.4): `profile` the names and `updated_at`, `email` the address.

use serde_json::{json, Map, Value};

use crate::domain::scope::Scope;
use crate::domain::user::{by_name, UserError};
use crate::domain::Clock;
use crate::store::models::{ProfileChanges, User};
use crate::store::AnyConnection;

/// Longest name and address kept (RFC 5321 §4.5.3.1.3 bounds a path at 256 octets).
const MAX_NAME_LEN: usize = 200;
const MAX_EMAIL_LEN: usize = 254;

/// A field's change: `None` leaves it, `Some(None)` removes it.
type Change = Option<Option<String>>;

/// A change to a user's profile; `None` leaves a field as it is, and `Some("")` removes a name
/// or an address. A new address is unverified unless `email_verified` says otherwise.
#[derive(Debug, Default, Clone)]
pub struct ProfileChange {
    pub name: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
}

impl ProfileChange {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.email.is_none() && self.email_verified.is_none()
    }

    /// The name and address as stored (`Some(None)`: removed), each checked.
    fn checked(&self) -> Result<(Change, Change), UserError> {
        let name = self.name.as_deref().map(check_name).transpose()?;
        let email = self.email.as_deref().map(check_email).transpose()?;
        Ok((name, email))
    }

    /// The values a new user starts with: name, address, and whether it is verified.
    pub fn for_new_user(&self) -> Result<(Option<String>, Option<String>, bool), UserError> {
        let (name, email) = self.checked()?;
        let email = email.flatten();
        let verified = email.is_some() && self.email_verified.unwrap_or(false);
        Ok((name.flatten(), email, verified))
    }
}

fn check_name(text: &str) -> Result<Option<String>, UserError> {
    let text = text.trim();
    if text.chars().count() > MAX_NAME_LEN || text.chars().any(char::is_control) {
        return Err(UserError::Invalid(format!(
            "a name is at most {MAX_NAME_LEN} characters, without control characters"
        )));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// An address as RFC 5322 writes the common case: one `@`, something on both sides, no spaces.
/// Deliverability is not checked here; `email_verified` says whether anyone did.
fn check_email(text: &str) -> Result<Option<String>, UserError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let well_formed = text.len() <= MAX_EMAIL_LEN
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        && text.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if !well_formed {
        return Err(UserError::Invalid(format!(
            "`{}` is not an email address",
            text.chars().take(64).collect::<String>()
        )));
    }
    Ok(Some(text.to_owned()))
}

/// Changes the profile of the user named `username`; returns the user as changed.
pub fn update(
    conn: &mut AnyConnection,
    username: &str,
    change: &ProfileChange,
    clock: &Clock,
) -> Result<User, UserError> {
    if change.is_empty() {
        return Err(UserError::Invalid(
            "nothing to change: give --name, --email or --email-verified".into(),
        ));
    }
    let (name, email) = change.checked()?;
    let user = by_name(conn, username)?;
    let new_address = email
        .as_ref()
        .is_some_and(|e| e.as_deref() != user.email.as_deref());
    let has_address = match &email {
        Some(e) => e.is_some(),
        None => user.email.is_some(),
    };
    // A new address is not known to be anyone's until someone says it was verified.
    let email_verified = match change.email_verified {
        Some(v) => Some(v && has_address),
        None if new_address => Some(false),
        None => None,
    };
    ProfileChanges {
        name,
        email,
        email_verified,
        updated_at: Some(clock.now()),
    }
    .apply(conn, &user.id)?;
    by_name(conn, username)
}

/// The claims `scope` releases about `user`, beside `sub`: `profile` gives
/// `preferred_username`, `name` (when set) and `updated_at`; `email` gives `email` and
/// `email_verified` (when an address is set). `preferred_username` is given with any scope,
/// as it always was.
pub fn claims(user: &User, scope: &Scope) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user.id));
    claims.insert("preferred_username".into(), json!(user.username));
    if scope.contains("profile") {
        if let Some(name) = &user.name {
            claims.insert("name".into(), json!(name));
        }
        let updated = user.updated_at.unwrap_or(user.created_at);
        claims.insert("updated_at".into(), json!(updated.unix_seconds()));
    }
    if let (true, Some(email)) = (scope.contains("email"), &user.email) {
        claims.insert("email".into(), json!(email));
        claims.insert("email_verified".into(), json!(user.email_verified));
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses_are_checked_and_empty_removes() {
        assert_eq!(
            check_name("  Alice Liddell ").unwrap().as_deref(),
            Some("Alice Liddell")
        );
        assert_eq!(check_name("").unwrap(), None);
        assert!(check_name("a\u{7}").is_err());
        assert!(check_name(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
        assert_eq!(
            check_email("alice@example.com").unwrap().as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(check_email(" ").unwrap(), None);
        for bad in [
            "alice",
            "@example.com",
            "alice@",
            "alice@localhost",
            "a b@example.com",
            "a@b@example.com",
            "alice@example.",
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }
}
