//! Second factors: an authenticator app (TOTP, RFC 6238, through `totp-rs`: SHA-1, six digits,
//! 30-second steps, one step of drift either way, each step accepted once) and single-use
//! recovery codes. The app's secret is sealed under the master key; recovery codes are kept
//! as HMACs under a key derived from it. Neither is readable from the database alone.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use totp_rs::{Builder, Secret, Totp};

use crate::domain::crypto::{random_bytes, MasterKey};
use crate::domain::revocation;
use crate::store::models::{PasskeyRow, RecoveryCode, User, UserTotp};
use crate::store::{write_tx, AnyConnection};
use crate::value::{UnixMs, UserId};

/// Whether every user must sign in with a second factor (`signin.second_factor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecondFactorPolicy {
    /// Users may add one.
    Optional,
    /// A user without one sets one up right after the password, before any code is issued.
    Required,
}

/// How long an authenticator app's set-up waits for its first code. An unfinished set-up
/// older than this is neither shown nor confirmed: whoever began it (someone who knew only the
/// password, say) must not have their key become the user's second factor later.
pub const TOTP_SETUP_TTL: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// How many recovery codes a set has.
pub const RECOVERY_CODES: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum FactorError {
    #[error("an authenticator app is already set up; remove it first")]
    AlreadyEnrolled,
    #[error("no authenticator app is being set up")]
    NotEnrolling,
    #[error("the stored authenticator secret cannot be read with this master key")]
    Sealed,
    #[error("the authenticator secret is unusable: {0}")]
    Secret(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// What the user needs to set up their app: the `otpauth://` URI as a QR code (SVG), and
/// the secret as text for typing in.
#[derive(Clone)]
pub struct TotpEnrolment {
    pub secret: String,
    pub uri: String,
    pub qr_svg: String,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment([redacted])")
    }
}

/// The AEAD context that binds a sealed secret to its user.
fn context(user_id: &UserId) -> Vec<u8> {
    format!("totp-secret:{user_id}").into_bytes()
}

/// The app's view of `secret`: what the QR code names (`issuer`, the username) and checks.
fn totp(secret: Vec<u8>, issuer: &str, username: &str) -> Result<Totp, FactorError> {
    // otpauth:// labels cannot carry a colon.
    let account = username.replace(':', "_");
    Builder::new()
        .with_secret(Secret::from(secret))
        .with_issuer(Some(issuer.replace(':', "_")))
        .with_account_name(account)
        .build()
        .map_err(|e| FactorError::Secret(e.to_string()))
}

/// Starts setting up an authenticator app for `user`, replacing an unfinished set-up. It
/// counts only once a code from the app confirms it ([`confirm_totp`]).
pub fn begin_totp(
    conn: &mut AnyConnection,
    master: &MasterKey,
    user: &User,
    issuer: &str,
    now: UnixMs,
) -> Result<TotpEnrolment, FactorError> {
    if UserTotp::find(conn, &user.id)?.is_some_and(|t| t.confirmed_at.is_some()) {
        return Err(FactorError::AlreadyEnrolled);
    }
    let secret = random_bytes(20);
    let app = totp(secret.clone(), issuer, &user.username)?;
    let uri = app
        .to_url()
        .map_err(|e| FactorError::Secret(e.to_string()))?;
    UserTotp {
        user_id: user.id.clone(),
        secret_sealed: master.seal(&context(&user.id), &secret),
        created_at: now,
        confirmed_at: None,
        last_step: 0,
        last_used_at: None,
    }
    .replace(conn)?;
    enrolment(secret, uri)
}

/// The set-up page's contents for `secret`.
fn enrolment(secret: Vec<u8>, uri: String) -> Result<TotpEnrolment, FactorError> {
    let svg = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| FactorError::Secret(e.to_string()))?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    // Inline in a page: without the XML declaration.
    let qr_svg = match svg.find("<svg") {
        Some(start) => svg[start..].to_owned(),
        None => svg,
    };
    Ok(TotpEnrolment {
        secret: Secret::from(secret).to_base32(),
        uri,
        qr_svg,
    })
}

/// The set-up under way for `user`, if a code has not confirmed it yet: shown again.
pub fn pending_totp(
    conn: &mut AnyConnection,
    master: &MasterKey,
    user: &User,
    issuer: &str,
    now: UnixMs,
) -> Result<Option<TotpEnrolment>, FactorError> {
    let Some(row) = UserTotp::find(conn, &user.id)?
        .filter(|t| t.confirmed_at.is_none())
        .filter(|t| now.since(t.created_at) <= TOTP_SETUP_TTL)
    else {
        return Ok(None);
    };
    let secret = master
        .open(&context(&user.id), &row.secret_sealed)
        .map_err(|_| FactorError::Sealed)?;
    let uri = totp(secret.clone(), issuer, &user.username)?
        .to_url()
        .map_err(|e| FactorError::Secret(e.to_string()))?;
    enrolment(secret, uri).map(Some)
}

/// The time step `code` is valid for now, within one step of drift; `None` if none.
fn matching_step(
    master: &MasterKey,
    row: &UserTotp,
    code: &str,
    now: UnixMs,
) -> Result<Option<i64>, FactorError> {
    let secret = master
        .open(&context(&row.user_id), &row.secret_sealed)
        .map_err(|_| FactorError::Sealed)?;
    // The label does not take part in the codes.
    let app = totp(secret, "-", "-")?;
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return Ok(None);
    }
    let seconds = u64::try_from(now.millis() / 1000).unwrap_or_default();
    Ok(app
        .check(&code, seconds)
        .and_then(|step| i64::try_from(step).ok()))
}

/// Checks `code` against the user's app and accepts its time step once, on any instance.
/// `confirming`: the set-up's first code, which completes it; otherwise the app must be set
/// up already. Returns whether the code was accepted.
fn accept_code(
    conn: &mut AnyConnection,
    master: &MasterKey,
    user_id: &UserId,
    code: &str,
    confirming: bool,
    now: UnixMs,
) -> Result<bool, FactorError> {
    let Some(row) = UserTotp::find(conn, user_id)? else {
        return Err(FactorError::NotEnrolling);
    };
    if row.confirmed_at.is_some() == confirming {
        return Err(FactorError::NotEnrolling);
    }
    if confirming && now.since(row.created_at) > TOTP_SETUP_TTL {
        return Err(FactorError::NotEnrolling);
    }
    match matching_step(master, &row, code, now)? {
        // Refused when this step, or a later one, was accepted before: a code is used once.
        Some(step) => Ok(UserTotp::accept_step(conn, user_id, step, now)?),
        None => Ok(false),
    }
}

/// Completes the set-up with a first code from the app. Returns whether it was right.
pub fn confirm_totp(
    conn: &mut AnyConnection,
    master: &MasterKey,
    user_id: &UserId,
    code: &str,
    now: UnixMs,
) -> Result<bool, FactorError> {
    accept_code(conn, master, user_id, code, true, now)
}

/// A code from the user's app, as a second factor: accepted once.
pub fn check_totp(
    conn: &mut AnyConnection,
    master: &MasterKey,
    user_id: &UserId,
    code: &str,
    now: UnixMs,
) -> Result<bool, FactorError> {
    match accept_code(conn, master, user_id, code, false, now) {
        Err(FactorError::NotEnrolling) => Ok(false),
        other => other,
    }
}

/// Removes the user's authenticator app. Returns whether there was one.
pub fn remove_totp(conn: &mut AnyConnection, user_id: &UserId) -> diesel::QueryResult<bool> {
    UserTotp::delete(conn, user_id)
}

/// Crockford's base32: no i, l, o or u to misread.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A code as it is kept: its HMAC, over the code without spaces, dashes or case, read as
/// Crockford's base32 reads it (o is 0; i and l are 1).
fn recovery_hash(master: &MasterKey, code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            c => c,
        })
        .collect();
    let tag = ring::hmac::sign(master.recovery_code_key(), normal.as_bytes());
    URL_SAFE_NO_PAD.encode(tag.as_ref())
}

/// A new set of [`RECOVERY_CODES`] codes for the user, replacing the old set: shown once,
/// kept only as HMACs, in the caller's transaction. Each is 60 random bits, as
/// `xxxx-xxxx-xxxx` in Crockford's base32.
pub fn new_recovery_codes_in(
    conn: &mut AnyConnection,
    master: &MasterKey,
    user_id: &UserId,
    now: UnixMs,
) -> diesel::QueryResult<Vec<String>> {
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let chars: String = random_bytes(12)
                .iter()
                .map(|b| ALPHABET[usize::from(b & 31)] as char)
                .collect();
            format!("{}-{}-{}", &chars[..4], &chars[4..8], &chars[8..])
        })
        .collect();
    let rows: Vec<RecoveryCode> = codes
        .iter()
        .map(|code| RecoveryCode {
            user_id: user_id.clone(),
            code_hash: recovery_hash(master, code),
            created_at: now,
            used_at: None,
        })
        .collect();
    RecoveryCode::replace_all(conn, user_id, &rows)?;
    Ok(codes)
}

/// [`new_recovery_codes_in`] in a write transaction of its own.
pub fn new_recovery_codes(
    conn: &mut AnyConnection,
    master: &MasterKey,
    user_id: &UserId,
    now: UnixMs,
) -> diesel::QueryResult<Vec<String>> {
    write_tx(conn, |c| new_recovery_codes_in(c, master, user_id, now))
}

/// Uses one of the user's recovery codes: `true` once per code, on any instance.
pub fn spend_recovery_code(
    conn: &mut AnyConnection,
    master: &MasterKey,
    user_id: &UserId,
    code: &str,
    now: UnixMs,
) -> diesel::QueryResult<bool> {
    RecoveryCode::spend(conn, user_id, &recovery_hash(master, code), now)
}

/// The user's second factors, as the account page and the CLI show them (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Factors {
    /// The authenticator app: when it was set up and last used.
    pub totp: Option<(UnixMs, Option<UnixMs>)>,
    pub recovery_codes_left: i64,
    /// The passkeys, oldest first.
    pub passkeys: Vec<PasskeyInfo>,
}

/// A passkey as its user sees it: the name they gave it, when it was added and last used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyInfo {
    /// The credential id, base64url: names the passkey in forms.
    pub id: String,
    pub name: String,
    pub created_at: UnixMs,
    pub last_used_at: Option<UnixMs>,
}

impl Factors {
    /// Whether the user has a second factor to sign in with.
    pub fn any(&self) -> bool {
        self.second_step_due() || self.recovery_codes_left > 0
    }

    /// Whether a password is followed by a second step: an app or a passkey to ask for.
    pub fn second_step_due(&self) -> bool {
        self.totp.is_some() || !self.passkeys.is_empty()
    }
}

pub fn factors(conn: &mut AnyConnection, user_id: &UserId) -> diesel::QueryResult<Factors> {
    let totp =
        UserTotp::find(conn, user_id)?.and_then(|t| t.confirmed_at.map(|at| (at, t.last_used_at)));
    let passkeys = PasskeyRow::of_user(conn, user_id)?
        .into_iter()
        .map(|p| PasskeyInfo {
            id: p.credential_id,
            name: p.name,
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        })
        .collect();
    Ok(Factors {
        totp,
        recovery_codes_left: RecoveryCode::unused(conn, user_id)?,
        passkeys,
    })
}

/// The longest name a passkey may be given.
pub const PASSKEY_NAME_MAX: usize = 64;

/// A passkey's name as given, trimmed; `None` if empty or longer than [`PASSKEY_NAME_MAX`].
pub fn passkey_name(given: &str) -> Option<String> {
    let name = given.trim();
    let chars = name.chars().count();
    (chars > 0 && chars <= PASSKEY_NAME_MAX && !name.chars().any(char::is_control))
        .then(|| name.to_owned())
}

/// Removes one of the user's passkeys; `false` if they have none by that id.
pub fn remove_passkey(
    conn: &mut AnyConnection,
    user_id: &UserId,
    credential_id: &str,
) -> diesel::QueryResult<bool> {
    PasskeyRow::delete(conn, user_id, credential_id)
}

/// Which factors [`reset`] removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetWhat {
    pub totp: bool,
    pub recovery_codes: bool,
    pub passkeys: bool,
}

/// What [`reset`] removed and ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reset {
    pub totp_removed: bool,
    pub recovery_codes_removed: usize,
    pub passkeys_removed: usize,
    pub families_revoked: usize,
}

/// Removes the factors `what` names (the authenticator app, recovery codes, passkeys), and
/// ends every session and token family of theirs (whoever signed in with the factors may
/// still hold them), in one transaction, recorded as done by `actor`.
pub fn reset(
    conn: &mut AnyConnection,
    user_id: &UserId,
    what: ResetWhat,
    actor: &str,
    now: UnixMs,
) -> diesel::QueryResult<Reset> {
    write_tx(conn, |c| {
        let totp_removed = what.totp && UserTotp::delete(c, user_id)?;
        let passkeys_removed = if what.passkeys {
            PasskeyRow::delete_all(c, user_id)?
        } else {
            0
        };
        let recovery_codes_removed = if what.recovery_codes {
            let left = RecoveryCode::unused(c, user_id)?;
            RecoveryCode::replace_all(c, user_id, &[])?;
            usize::try_from(left).unwrap_or_default()
        } else {
            0
        };
        crate::store::models::Session::delete_for_user(c, user_id)?;
        let why = revocation::Revocation::new(revocation::SECOND_FACTOR_RESET, Some(actor));
        let families_revoked =
            revocation::revoke_in(c, revocation::Families::OfUser(user_id), &why, now)?;
        Ok(Reset {
            totp_removed,
            recovery_codes_removed,
            passkeys_removed,
            families_revoked,
        })
    })
}
