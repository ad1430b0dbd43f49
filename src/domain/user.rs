//! Users who sign in with a password.

use crate::domain::crypto::random_id;
use crate::domain::now_ms;
use crate::domain::password::PasswordHasher;
use crate::store::models::{NewUser, User};
use crate::store::AnyConnection;

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
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Passwords shorter than this are refused.
pub const MIN_PASSWORD_LEN: usize = 8;
const MAX_PASSWORD_LEN: usize = 1024;

/// Creates a user with an Argon2id password hash. Blocks (hashing): call off the executor.
pub fn create(
    conn: &mut AnyConnection,
    hasher: &PasswordHasher,
    username: &Username,
    password: &str,
) -> Result<User, UserError> {
    if password.chars().count() < MIN_PASSWORD_LEN || password.len() > MAX_PASSWORD_LEN {
        return Err(UserError::Invalid(format!(
            "a password is {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"
        )));
    }
    if User::find_by_username(conn, username.as_str())?.is_some() {
        return Err(UserError::Exists(username.as_str().to_owned()));
    }
    let hash = hasher.hash(password)?;
    let id = random_id();
    let inserted = NewUser {
        id: &id,
        username: username.as_str(),
        password_hash: &hash,
        created_at: now_ms(),
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
