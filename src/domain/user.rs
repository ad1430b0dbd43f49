//! Users who sign in with a password.

use crate::domain::crypto::random_id;
use crate::domain::password::PasswordHasher;
use crate::domain::profile::ProfileChange;
use crate::domain::revocation::{self, Families, Revocation, PASSWORD_CHANGED, USER_DISABLED};
use crate::domain::Clock;
use crate::store::models::{LoginFailures, NewUser, Session, User};
use crate::store::AnyConnection;
use crate::value::UserId;

/// A username: 1 to 64 characters, no control characters or surrounding spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(text: &str) -> Result<Self, UserError> {
        let ok = !text.is_empty()
            && text.chars().count() <= 64
            && text.trim() == text
            && !text.chars().any(char::is_control);
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(UserError::Invalid(
                "a username is 1 to 64 characters, without control characters or surrounding spaces"
                    .into(),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{0}")]
    Invalid(String),
    #[error("user `{0}` already exists")]
    Exists(String),
    #[error("no user named {0}")]
    NotFound(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Hashing(#[from] crate::domain::password::HashError),
}

/// Passwords shorter than this are refused.
pub const MIN_PASSWORD_LEN: usize = 8;
const MAX_PASSWORD_LEN: usize = 1024;

/// Refuses a password too short or too long.
pub fn check_password(password: &str) -> Result<(), UserError> {
    if password.chars().count() < MIN_PASSWORD_LEN || password.len() > MAX_PASSWORD_LEN {
        return Err(UserError::Invalid(format!(
            "a password is {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"
        )));
    }
    Ok(())
}

/// The user named `username` (`User::find` takes an id).
pub fn by_name(conn: &mut AnyConnection, username: &str) -> Result<User, UserError> {
    User::find_by_username(conn, username)?.ok_or_else(|| UserError::NotFound(username.to_owned()))
}

/// Sets a new password and revokes the user's active families (whoever held them no longer
/// knows the password), recorded as done by `actor`. Returns how many were revoked. Blocks
/// (hashing).
pub fn set_password(
    conn: &mut AnyConnection,
    hasher: &PasswordHasher,
    username: &str,
    password: &str,
    actor: &str,
    clock: &Clock,
) -> Result<usize, UserError> {
    check_password(password)?;
    let user = by_name(conn, username)?;
    let hash = hasher.hash(password)?;
    crate::store::write_tx(conn, |c| -> Result<usize, UserError> {
        User::set_password_hash(c, &user.id, &hash)?;
        // Browsers signed in with the old password must sign in again.
        Session::delete_for_user(c, &user.id)?;
        let why = Revocation::new(PASSWORD_CHANGED, Some(actor));
        Ok(revocation::revoke_in(
            c,
            Families::OfUser(&user.id),
            &why,
            clock.now(),
        )?)
    })
}

/// Disables (revoking the user's active families) or enables a user. Returns the families revoked.
pub fn set_disabled(
    conn: &mut AnyConnection,
    username: &str,
    disabled: bool,
    actor: &str,
    clock: &Clock,
) -> Result<usize, UserError> {
    let user = by_name(conn, username)?;
    crate::store::write_tx(conn, |c| -> Result<usize, UserError> {
        let now = clock.now();
        if disabled {
            User::set_disabled_at(c, &user.id, Some(user.disabled_at.unwrap_or(now)))?;
            Session::delete_for_user(c, &user.id)?;
            let why = Revocation::new(USER_DISABLED, Some(actor));
            Ok(revocation::revoke_in(
                c,
                Families::OfUser(&user.id),
                &why,
                now,
            )?)
        } else {
            User::set_disabled_at(c, &user.id, None)?;
            Ok(0)
        }
    })
}

/// Clears the failed-sign-in counter of a username. Returns whether there was one.
pub fn unlock(conn: &mut AnyConnection, username: &str) -> Result<bool, UserError> {
    by_name(conn, username)?;
    Ok(LoginFailures::delete(conn, &crate::domain::throttle::user_key(username))? > 0)
}

/// Creates a user with an Argon2id password hash. Blocks (hashing): call off the executor.
pub fn create(
    conn: &mut AnyConnection,
    hasher: &PasswordHasher,
    username: &Username,
    password: &str,
    profile: &ProfileChange,
    clock: &Clock,
) -> Result<User, UserError> {
    check_password(password)?;
    let (name, email, email_verified) = profile.for_new_user()?;
    if User::find_by_username(conn, username.as_str())?.is_some() {
        return Err(UserError::Exists(username.as_str().to_owned()));
    }
    let hash = hasher.hash(password)?;
    let id = UserId::new(random_id());
    let inserted = NewUser {
        id: &id,
        username: username.as_str(),
        password_hash: &hash,
        created_at: clock.now(),
        name: name.as_deref(),
        email: email.as_deref(),
        email_verified,
    }
    .insert(conn);
    match inserted {
        Ok(_) => {}
        // Lost a race with another creation of the same name.
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => return Err(UserError::Exists(username.as_str().to_owned())),
        Err(e) => return Err(e.into()),
    }
    User::find(conn, &id)?.ok_or_else(|| diesel::result::Error::NotFound.into())
}
