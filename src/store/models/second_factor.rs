use diesel::prelude::*;

use crate::store::schema::{passkeys, recovery_codes, user_totp, webauthn_challenges};
use crate::store::AnyConnection;
use crate::value::{UnixMs, UserId};

/// A user's authenticator app (TOTP).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = user_totp)]
pub struct UserTotp {
    pub user_id: UserId,
    /// The secret, sealed under the master key and bound to the user.
    pub secret_sealed: String,
    pub created_at: UnixMs,
    /// `None` until a code from the app confirmed the enrolment.
    pub confirmed_at: Option<UnixMs>,
    /// The last time step accepted: a code is accepted once.
    pub last_step: i64,
    pub last_used_at: Option<UnixMs>,
}

impl UserTotp {
    pub fn find(conn: &mut AnyConnection, user_id: &UserId) -> QueryResult<Option<UserTotp>> {
        user_totp::table
            .find(user_id)
            .select(UserTotp::as_select())
            .first(conn)
            .optional()
    }

    /// Starts (or starts again) an enrolment: replaces any row of the user.
    pub fn replace(&self, conn: &mut AnyConnection) -> QueryResult<()> {
        diesel::delete(user_totp::table.find(&self.user_id)).execute(conn)?;
        diesel::insert_into(user_totp::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    /// Accepts time step `step` if no later or equal one was accepted before (on any
    /// instance), confirming the enrolment if it was not. Returns whether it was accepted.
    pub fn accept_step(
        conn: &mut AnyConnection,
        user_id: &UserId,
        step: i64,
        now: UnixMs,
    ) -> QueryResult<bool> {
        let confirmed = diesel::dsl::sql::<diesel::sql_types::BigInt>("COALESCE(confirmed_at, ")
            .bind::<diesel::sql_types::BigInt, _>(now)
            .sql(")");
        diesel::update(
            user_totp::table
                .filter(user_totp::user_id.eq(user_id))
                .filter(user_totp::last_step.lt(step)),
        )
        .set((
            user_totp::last_step.eq(step),
            user_totp::last_used_at.eq(now),
            user_totp::confirmed_at.eq(confirmed.nullable()),
        ))
        .execute(conn)
        .map(|n| n == 1)
    }

    pub fn delete(conn: &mut AnyConnection, user_id: &UserId) -> QueryResult<bool> {
        diesel::delete(user_totp::table.find(user_id))
            .execute(conn)
            .map(|n| n == 1)
    }
}

/// A single-use recovery code, by its HMAC.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = recovery_codes)]
pub struct RecoveryCode {
    pub user_id: UserId,
    pub code_hash: String,
    pub created_at: UnixMs,
    pub used_at: Option<UnixMs>,
}

impl RecoveryCode {
    /// Replaces the user's codes with `codes`.
    pub fn replace_all(
        conn: &mut AnyConnection,
        user_id: &UserId,
        codes: &[RecoveryCode],
    ) -> QueryResult<()> {
        diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
            .execute(conn)?;
        for code in codes {
            diesel::insert_into(recovery_codes::table)
                .values(code)
                .execute(conn)?;
        }
        Ok(())
    }

    /// Uses the code if it is the user's and unused: exactly one use wins.
    pub fn spend(
        conn: &mut AnyConnection,
        user_id: &UserId,
        code_hash: &str,
        now: UnixMs,
    ) -> QueryResult<bool> {
        diesel::update(
            recovery_codes::table
                .filter(recovery_codes::user_id.eq(user_id))
                .filter(recovery_codes::code_hash.eq(code_hash))
                .filter(recovery_codes::used_at.is_null()),
        )
        .set(recovery_codes::used_at.eq(now))
        .execute(conn)
        .map(|n| n == 1)
    }

    /// How many of the user's codes are unused.
    pub fn unused(conn: &mut AnyConnection, user_id: &UserId) -> QueryResult<i64> {
        recovery_codes::table
            .filter(recovery_codes::user_id.eq(user_id))
            .filter(recovery_codes::used_at.is_null())
            .count()
            .get_result(conn)
    }
}

/// A passkey: a WebAuthn credential as webauthn-rs serialises it (public key, sign counter,
/// backup flags; nothing secret), under the name its user gave it.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = passkeys)]
pub struct PasskeyRow {
    /// The credential id, base64url.
    pub credential_id: String,
    pub user_id: UserId,
    pub name: String,
    pub credential: String,
    pub created_at: UnixMs,
    pub last_used_at: Option<UnixMs>,
}

impl PasskeyRow {
    /// Adds a passkey; `Ok(false)` if its credential id is registered already (to anyone).
    pub fn insert(&self, conn: &mut AnyConnection) -> QueryResult<bool> {
        use diesel::result::{DatabaseErrorKind, Error};
        match diesel::insert_into(passkeys::table)
            .values(self)
            .execute(conn)
        {
            Ok(_) => Ok(true),
            Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn find(conn: &mut AnyConnection, credential_id: &str) -> QueryResult<Option<PasskeyRow>> {
        passkeys::table
            .find(credential_id)
            .select(PasskeyRow::as_select())
            .first(conn)
            .optional()
    }

    /// The user's passkeys, oldest first.
    pub fn of_user(conn: &mut AnyConnection, user_id: &UserId) -> QueryResult<Vec<PasskeyRow>> {
        passkeys::table
            .filter(passkeys::user_id.eq(user_id))
            .order((passkeys::created_at.asc(), passkeys::credential_id.asc()))
            .select(PasskeyRow::as_select())
            .load(conn)
    }

    /// Stores the credential after a use (its new counter and backup state), if it still
    /// holds what it held when read (`before`): of two uses racing on one counter value,
    /// one stores.
    pub fn used(
        conn: &mut AnyConnection,
        credential_id: &str,
        before: &str,
        credential: &str,
        now: UnixMs,
    ) -> QueryResult<bool> {
        diesel::update(
            passkeys::table
                .filter(passkeys::credential_id.eq(credential_id))
                .filter(passkeys::credential.eq(before)),
        )
        .set((
            passkeys::credential.eq(credential),
            passkeys::last_used_at.eq(now),
        ))
        .execute(conn)
        .map(|n| n == 1)
    }

    /// Removes one of `user_id`'s passkeys; `false` if they have none by that id.
    pub fn delete(
        conn: &mut AnyConnection,
        user_id: &UserId,
        credential_id: &str,
    ) -> QueryResult<bool> {
        diesel::delete(
            passkeys::table
                .filter(passkeys::credential_id.eq(credential_id))
                .filter(passkeys::user_id.eq(user_id)),
        )
        .execute(conn)
        .map(|n| n == 1)
    }

    /// Removes all of `user_id`'s passkeys; how many there were.
    pub fn delete_all(conn: &mut AnyConnection, user_id: &UserId) -> QueryResult<usize> {
        diesel::delete(passkeys::table.filter(passkeys::user_id.eq(user_id))).execute(conn)
    }
}

/// A WebAuthn ceremony between its two requests.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webauthn_challenges)]
pub struct WebauthnChallenge {
    pub id: String,
    pub user_id: Option<UserId>,
    pub purpose: String,
    pub state: String,
    pub expires_at: UnixMs,
}

impl WebauthnChallenge {
    pub fn insert(&self, conn: &mut AnyConnection) -> QueryResult<()> {
        diesel::insert_into(webauthn_challenges::table)
            .values(self)
            .execute(conn)
            .map(|_| ())
    }

    /// Takes the ceremony `id` for `purpose`: deleted as it is read, so that it is answered
    /// once, on any instance. `None` if it is not there (answered, or never made) or expired.
    pub fn take(
        conn: &mut AnyConnection,
        id: &str,
        purpose: &str,
        now: UnixMs,
    ) -> QueryResult<Option<WebauthnChallenge>> {
        let Some(found) = webauthn_challenges::table
            .find(id)
            .filter(webauthn_challenges::purpose.eq(purpose))
            .select(WebauthnChallenge::as_select())
            .first(conn)
            .optional()?
        else {
            return Ok(None);
        };
        // Of two answers racing, the one whose delete removed the row has it.
        let deleted = diesel::delete(webauthn_challenges::table.find(id)).execute(conn)?;
        let taken = (deleted == 1).then_some(found);
        Ok(taken.filter(|c| c.expires_at > now))
    }
}
