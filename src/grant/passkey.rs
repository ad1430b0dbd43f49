//! Passkeys (WebAuthn Level 3) through webauthn-rs: registration of a discoverable credential,
//! a sign-in with the passkey alone (no username typed), and the passkey as the second step
//! after a password. User verification is required each time.
//!
//! Each ceremony takes two requests: its state waits in `webauthn_challenges` between them and
//! is deleted by the answer, so that a challenge is answered once, on any instance, and not
//! after [`CEREMONY_TTL`]. The relying party id is the issuer's host and the only origin
//! accepted is the issuer's. webauthn-rs refuses an assertion whose sign counter did not grow
//! past the stored one (a cloned authenticator); the stored counter and backup flags follow
//! each use.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn,
    WebauthnBuilder,
};

use crate::domain::crypto::random_bytes;
use crate::domain::second_factor::{passkey_name, PasskeyInfo};
use crate::store::models::{PasskeyRow, User, WebauthnChallenge};
use crate::store::AnyConnection;
use crate::value::{UnixMs, UserId};

/// How long a ceremony may wait for its answer.
pub const CEREMONY_TTL: Duration = Duration::from_secs(5 * 60);

/// What a ceremony is for; stored with its state, and checked when it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Adding a passkey on the account page.
    Register,
    /// Signing in with a passkey alone.
    SignIn,
    /// The second step after a password.
    SecondStep,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Register => "register",
            Purpose::SignIn => "sign-in",
            Purpose::SecondStep => "second-step",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// No such ceremony: answered already, expired, for another purpose or another user.
    #[error("this passkey request has expired; try again")]
    Expired,
    /// The browser's answer does not verify (wrong origin, signature, counter, flags...).
    #[error("the passkey was not accepted: {0}")]
    Refused(String),
    /// A credential no user has here (removed, or from another site).
    #[error("this passkey is not registered here")]
    Unknown,
    #[error("this passkey is registered already")]
    AlreadyRegistered,
    #[error("give the passkey a name of 1 to 64 characters")]
    BadName,
    #[error("the relying party is misconfigured: {0}")]
    Setup(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// A ceremony begun: its id (sent back with the answer) and the options for
/// `navigator.credentials.create()` or `.get()`, as JSON with binary fields in base64url.
#[derive(Debug, Clone)]
pub struct Begun {
    pub ceremony: String,
    pub options: serde_json::Value,
}

/// The WebAuthn relying party: this server, as the issuer names it.
pub struct RelyingParty {
    webauthn: Webauthn,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RelyingParty")
    }
}

impl RelyingParty {
    /// The relying party of `issuer`: its host is the RP id, its origin the only one accepted.
    pub fn new(issuer: &str) -> Result<RelyingParty, PasskeyError> {
        let url = Url::parse(issuer).map_err(|e| PasskeyError::Setup(e.to_string()))?;
        let host = url
            .host_str()
            .ok_or_else(|| PasskeyError::Setup("the issuer has no host".into()))?
            .to_owned();
        let origin = Url::parse(&url.origin().ascii_serialization())
            .map_err(|e| PasskeyError::Setup(e.to_string()))?;
        let webauthn = WebauthnBuilder::new(&host, &origin)
            .and_then(|b| b.rp_name(&host).timeout(CEREMONY_TTL).build())
            .map_err(|e| PasskeyError::Setup(e.to_string()))?;
        Ok(RelyingParty { webauthn })
    }

    /// Begins adding a passkey for `user`: a discoverable credential (so that it can sign in
    /// without a username), with user verification, not one the user has already.
    pub fn begin_registration(
        &self,
        conn: &mut AnyConnection,
        user: &User,
        now: UnixMs,
    ) -> Result<Begun, PasskeyError> {
        let existing = PasskeyRow::of_user(conn, &user.id)?
            .iter()
            .filter_map(|p| stored(&p.credential).ok())
            .map(|p| p.cred_id().clone())
            .collect::<Vec<_>>();
        let display = user.name.as_deref().unwrap_or(&user.username);
        let (ccr, state) = self
            .webauthn
            .start_passkey_registration(
                user_handle(&user.id),
                &user.username,
                display,
                Some(existing),
            )
            .map_err(refused)?;
        let mut options = serde_json::to_value(&ccr).map_err(json_error)?;
        // webauthn-rs leaves resident keys to the authenticator; a passkey that signs in
        // without a username must be discoverable, so it is asked for.
        if let Some(selection) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(serde_json::Value::as_object_mut)
        {
            selection.insert("residentKey".into(), "required".into());
            selection.insert("requireResidentKey".into(), true.into());
        }
        let ceremony = save(conn, Some(&user.id), Purpose::Register, &state, now)?;
        Ok(Begun { ceremony, options })
    }

    /// Finishes adding a passkey for `user_id` under `name`, from the browser's answer
    /// (`credential`, the JSON of a `PublicKeyCredential` from `create()`).
    pub fn finish_registration(
        &self,
        conn: &mut AnyConnection,
        user_id: &UserId,
        ceremony: &str,
        credential: &str,
        name: &str,
        now: UnixMs,
    ) -> Result<PasskeyInfo, PasskeyError> {
        let name = passkey_name(name).ok_or(PasskeyError::BadName)?;
        let state: PasskeyRegistration = take(conn, ceremony, Purpose::Register, user_id, now)?;
        let answer: RegisterPublicKeyCredential = parse(credential)?;
        let passkey = self
            .webauthn
            .finish_passkey_registration(&answer, &state)
            .map_err(refused)?;
        let row = PasskeyRow {
            credential_id: URL_SAFE_NO_PAD.encode(passkey.cred_id().as_slice()),
            user_id: user_id.clone(),
            name,
            credential: serde_json::to_string(&passkey).map_err(json_error)?,
            created_at: now,
            last_used_at: None,
        };
        if !row.insert(conn)? {
            return Err(PasskeyError::AlreadyRegistered);
        }
        Ok(PasskeyInfo {
            id: row.credential_id,
            name: row.name,
            created_at: now,
            last_used_at: None,
        })
    }

    /// Begins a sign-in with a passkey alone: any discoverable credential of this site.
    pub fn begin_sign_in(
        &self,
        conn: &mut AnyConnection,
        now: UnixMs,
    ) -> Result<Begun, PasskeyError> {
        let (rcr, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(refused)?;
        let mut options = serde_json::to_value(&rcr).map_err(json_error)?;
        // webauthn-rs asks for conditional mediation (autofill); the page's button asks
        // with the browser's own dialog instead.
        if let Some(o) = options.as_object_mut() {
            o.remove("mediation");
        }
        let ceremony = save(conn, None, Purpose::SignIn, &state, now)?;
        Ok(Begun { ceremony, options })
    }

    /// Finishes a sign-in with a passkey alone: the user whose passkey answered.
    pub fn finish_sign_in(
        &self,
        conn: &mut AnyConnection,
        ceremony: &str,
        credential: &str,
        now: UnixMs,
    ) -> Result<UserId, PasskeyError> {
        let state: DiscoverableAuthentication = take_any(conn, ceremony, Purpose::SignIn, now)?;
        let answer: PublicKeyCredential = parse(credential)?;
        let (handle, cred_id) = self
            .webauthn
            .identify_discoverable_authentication(&answer)
            .map_err(refused)?;
        let row = PasskeyRow::find(conn, &URL_SAFE_NO_PAD.encode(cred_id))?
            .ok_or(PasskeyError::Unknown)?;
        if handle != user_handle(&row.user_id) {
            return Err(PasskeyError::Refused(
                "the passkey names another user".into(),
            ));
        }
        let passkey = stored(&row.credential)?;
        let result = self
            .webauthn
            .finish_discoverable_authentication(&answer, state, &[DiscoverableKey::from(&passkey)])
            .map_err(refused)?;
        used(conn, &row, passkey, &result, now)?;
        Ok(row.user_id)
    }

    /// Begins the second step for `user`, with any of their passkeys; `None` if they have none.
    pub fn begin_second_step(
        &self,
        conn: &mut AnyConnection,
        user_id: &UserId,
        now: UnixMs,
    ) -> Result<Option<Begun>, PasskeyError> {
        let passkeys = PasskeyRow::of_user(conn, user_id)?
            .iter()
            .filter_map(|p| stored(&p.credential).ok())
            .collect::<Vec<_>>();
        if passkeys.is_empty() {
            return Ok(None);
        }
        let (rcr, state) = self
            .webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(refused)?;
        let options = serde_json::to_value(&rcr).map_err(json_error)?;
        let ceremony = save(conn, Some(user_id), Purpose::SecondStep, &state, now)?;
        Ok(Some(Begun { ceremony, options }))
    }

    /// Finishes the second step of `user_id`'s sign-in with one of their passkeys.
    pub fn finish_second_step(
        &self,
        conn: &mut AnyConnection,
        user_id: &UserId,
        ceremony: &str,
        credential: &str,
        now: UnixMs,
    ) -> Result<(), PasskeyError> {
        let state: PasskeyAuthentication = take(conn, ceremony, Purpose::SecondStep, user_id, now)?;
        let answer: PublicKeyCredential = parse(credential)?;
        let id = URL_SAFE_NO_PAD.encode(answer.get_credential_id());
        let row = PasskeyRow::find(conn, &id)?
            .filter(|r| r.user_id == *user_id)
            .ok_or(PasskeyError::Unknown)?;
        let passkey = stored(&row.credential)?;
        let result = self
            .webauthn
            .finish_passkey_authentication(&answer, &state)
            .map_err(refused)?;
        used(conn, &row, passkey, &result, now)
    }
}

/// The WebAuthn user handle of a user: 16 bytes derived from their id, so that the id itself
/// (and nothing personal) is what authenticators keep, and a discoverable sign-in can be
/// matched to the credential's owner.
pub fn user_handle(user_id: &UserId) -> Uuid {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("tessera-webauthn-user:{user_id}").as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    Uuid::from_bytes(bytes)
}

/// Records a use: the new counter and backup state, if no other use stored first (two
/// answers with one counter value: the second is refused as a clone would be).
fn used(
    conn: &mut AnyConnection,
    row: &PasskeyRow,
    mut passkey: Passkey,
    result: &webauthn_rs::prelude::AuthenticationResult,
    now: UnixMs,
) -> Result<(), PasskeyError> {
    // webauthn-rs compared the counter with the copy of the credential the ceremony began
    // with; the row may have moved on since (a use elsewhere in the meantime). An authenticator
    // that counts must count past what is stored now.
    let stored_counter = serde_json::from_str::<serde_json::Value>(&row.credential)
        .map_err(json_error)?
        .pointer("/cred/counter")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_default();
    let counter = u64::from(result.counter());
    if counter > 0 && counter <= stored_counter {
        return Err(PasskeyError::Refused(
            "the sign counter did not grow: a copy of the passkey may be in use".into(),
        ));
    }
    passkey.update_credential(result);
    let after = serde_json::to_string(&passkey).map_err(json_error)?;
    if PasskeyRow::used(conn, &row.credential_id, &row.credential, &after, now)? {
        Ok(())
    } else {
        Err(PasskeyError::Refused(
            "the passkey was used at the same moment elsewhere".into(),
        ))
    }
}

fn save<T: serde::Serialize>(
    conn: &mut AnyConnection,
    user_id: Option<&UserId>,
    purpose: Purpose,
    state: &T,
    now: UnixMs,
) -> Result<String, PasskeyError> {
    let id = URL_SAFE_NO_PAD.encode(random_bytes(24));
    WebauthnChallenge {
        id: id.clone(),
        user_id: user_id.cloned(),
        purpose: purpose.as_str().to_owned(),
        state: serde_json::to_string(state).map_err(json_error)?,
        expires_at: now + CEREMONY_TTL,
    }
    .insert(conn)?;
    Ok(id)
}

/// Takes `user_id`'s ceremony `id` for `purpose`.
fn take<T: serde::de::DeserializeOwned>(
    conn: &mut AnyConnection,
    id: &str,
    purpose: Purpose,
    user_id: &UserId,
    now: UnixMs,
) -> Result<T, PasskeyError> {
    let found = WebauthnChallenge::take(conn, id, purpose.as_str(), now)?
        .filter(|c| c.user_id.as_ref() == Some(user_id))
        .ok_or(PasskeyError::Expired)?;
    serde_json::from_str(&found.state).map_err(json_error)
}

/// Takes the ceremony `id` for `purpose`, whoever it is for.
fn take_any<T: serde::de::DeserializeOwned>(
    conn: &mut AnyConnection,
    id: &str,
    purpose: Purpose,
    now: UnixMs,
) -> Result<T, PasskeyError> {
    let found =
        WebauthnChallenge::take(conn, id, purpose.as_str(), now)?.ok_or(PasskeyError::Expired)?;
    serde_json::from_str(&found.state).map_err(json_error)
}

fn stored(credential: &str) -> Result<Passkey, PasskeyError> {
    serde_json::from_str(credential).map_err(json_error)
}

fn parse<T: serde::de::DeserializeOwned>(credential: &str) -> Result<T, PasskeyError> {
    serde_json::from_str(credential)
        .map_err(|e| PasskeyError::Refused(format!("the browser's answer is not readable: {e}")))
}

fn refused(e: webauthn_rs::prelude::WebauthnError) -> PasskeyError {
    PasskeyError::Refused(e.to_string())
}

fn json_error(e: serde_json::Error) -> PasskeyError {
    PasskeyError::Setup(format!("a stored passkey or ceremony is unreadable: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_stable_per_user() {
        let a = UserId::new("a");
        assert_eq!(user_handle(&a), user_handle(&a));
        assert_ne!(user_handle(&a), user_handle(&UserId::new("b")));
    }

    #[test]
    fn the_relying_party_is_the_issuers_host() {
        assert!(RelyingParty::new("https://id.example.com").is_ok());
        assert!(RelyingParty::new("http://localhost:8080").is_ok());
        assert!(RelyingParty::new("not a url").is_err());
    }
}
