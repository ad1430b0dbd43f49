//! Every cryptographic primitive Tessera uses, from ring.

use std::path::{Path, PathBuf};

use crate::value::UnixMs;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{aead, digest, hkdf, hmac};

/// `n` bytes from the system CSPRNG.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    // SystemRandom only fails if the OS has no entropy source at all; nothing safe can go on.
    SystemRandom::new()
        .fill(&mut buf)
        .expect("the system random number generator failed");
    buf
}

/// An identifier that says when it was made: 48 bits of Unix milliseconds, then 80 random
/// bits, base64url (22 characters, like [`random_id`]; never starting with `-` before the year
/// 10 000). Families and incidents have one, so that an administrator asking for one that
/// retention deleted is told so.
pub fn time_id(now: UnixMs) -> String {
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&now.millis().clamp(0, (1 << 48) - 1).to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&random_bytes(10));
    URL_SAFE_NO_PAD.encode(bytes)
}

/// When an id from [`time_id`] was made (for any other 22-character id, a meaningless time).
pub fn id_time(id: &str) -> Option<UnixMs> {
    let bytes = URL_SAFE_NO_PAD.decode(id).ok().filter(|b| b.len() == 16)?;
    let mut ms = [0u8; 8];
    ms[2..].copy_from_slice(&bytes[..6]);
    Some(UnixMs::from_millis(i64::from_be_bytes(ms)))
}

/// A random identifier: 128 bits, base64url, never starting with `-` (which a command line
/// would take for an option).
pub fn random_id() -> String {
    loop {
        let id = URL_SAFE_NO_PAD.encode(random_bytes(16));
        if !id.starts_with('-') {
            return id;
        }
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    let d = digest::digest(&digest::SHA256, data);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Equality whose time depends only on the lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why the master key could not be had, or could not open what was sealed under it.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("the master key must be at least 32 bytes")]
    TooShort,
    #[error("the master key is not valid base64")]
    NotBase64,
    #[error("key derivation failed")]
    Derivation,
    #[error("cannot decrypt: the master key does not match the one the data was sealed with")]
    Mismatch,
    #[error("cannot read master key file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create master key file {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Group or others may read it: whoever can has every refresh token.
    #[error("master key file {} is readable by other users (mode {mode:o}): run chmod 600 {}", path.display(), path.display())]
    Exposed { path: PathBuf, mode: u32 },
    #[error("master key file {}", path.display())]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<MasterKeyError>,
    },
}

/// The master secret, from which every server key is derived (HKDF-SHA256).
pub struct MasterKey {
    refresh: hmac::Key,
    sealing: aead::LessSafeKey,
    cookies: hmac::Key,
    dpop_nonces: hmac::Key,
    recovery_codes: hmac::Key,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl MasterKey {
    /// Derives the subkeys from ≥ 32 bytes of secret.
    pub fn from_bytes(secret: &[u8]) -> Result<Self, MasterKeyError> {
        if secret.len() < 32 {
            return Err(MasterKeyError::TooShort);
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"tessera master key v1").extract(secret);
        let derive = |info: &'static [u8]| -> Result<Vec<u8>, MasterKeyError> {
            let mut out = vec![0u8; 32];
            prk.expand(&[info], Len(32))
                .and_then(|okm| okm.fill(&mut out))
                .map_err(|_| MasterKeyError::Derivation)?;
            Ok(out)
        };
        let refresh = hmac::Key::new(hmac::HMAC_SHA256, &derive(b"refresh-token-mac")?);
        let sealing = aead::UnboundKey::new(&aead::AES_256_GCM, &derive(b"signing-key-sealing")?)
            .map_err(|_| MasterKeyError::Derivation)?;
        let cookies = hmac::Key::new(hmac::HMAC_SHA256, &derive(b"browser-cookies")?);
        let dpop_nonces = hmac::Key::new(hmac::HMAC_SHA256, &derive(b"dpop-nonces")?);
        let recovery_codes = hmac::Key::new(hmac::HMAC_SHA256, &derive(b"recovery-codes")?);
        Ok(Self {
            refresh,
            sealing: aead::LessSafeKey::new(sealing),
            cookies,
            dpop_nonces,
            recovery_codes,
        })
    }

    /// Parses base64 (standard or URL-safe) text.
    pub fn from_text(text: &str) -> Result<Self, MasterKeyError> {
        let text = text.trim();
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .or_else(|_| STANDARD.decode(text))
            .map_err(|_| MasterKeyError::NotBase64)?;
        Self::from_bytes(&bytes)
    }

    /// Reads the key file, creating it (mode 0600) with a fresh key when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, MasterKeyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private(path)?;
                Self::from_text(&text).map_err(|e| in_file(path, e))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let text = URL_SAFE_NO_PAD.encode(random_bytes(32));
                write_private(path, &text).map_err(|source| MasterKeyError::Create {
                    path: path.to_owned(),
                    source,
                })?;
                tracing::info!(path = %path.display(), "generated a new master key");
                Self::from_text(&text)
            }
            Err(source) => Err(MasterKeyError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Reads an existing key file; never creates one (for tools that must use the server's key).
    pub fn load_existing(path: &Path) -> Result<Self, MasterKeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| MasterKeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        check_private(path)?;
        Self::from_text(&text).map_err(|e| in_file(path, e))
    }

    /// Signs session and CSRF cookie values.
    pub fn cookie_key(&self) -> &hmac::Key {
        &self.cookies
    }

    pub fn refresh_key(&self) -> &hmac::Key {
        &self.refresh
    }

    /// Makes DPoP nonces (RFC 9449 §8): the same on every instance, with nothing stored.
    pub fn dpop_nonce_key(&self) -> &hmac::Key {
        &self.dpop_nonces
    }

    /// Keeps recovery codes as HMACs: a database dump alone cannot be searched for them.
    pub fn recovery_code_key(&self) -> &hmac::Key {
        &self.recovery_codes
    }

    /// Encrypts and authenticates `plaintext`; `context` binds it to its use (e.g. a key id).
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> String {
        let nonce_bytes = random_bytes(aead::NONCE_LEN);
        let mut nonce = [0u8; aead::NONCE_LEN];
        nonce.copy_from_slice(&nonce_bytes);
        let mut buf = plaintext.to_vec();
        // Sealing cannot fail for inputs under AES-GCM's 64 GiB limit.
        self.sealing
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(context),
                &mut buf,
            )
            .expect("AEAD sealing failed");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        URL_SAFE_NO_PAD.encode(out)
    }

    pub fn open(&self, context: &[u8], sealed: &str) -> Result<Vec<u8>, MasterKeyError> {
        let bad = || MasterKeyError::Mismatch;
        let raw = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| bad())?;
        if raw.len() < aead::NONCE_LEN {
            return Err(bad());
        }
        let (nonce, ciphertext) = raw.split_at(aead::NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad())?;
        let mut buf = ciphertext.to_vec();
        let plain = self
            .sealing
            .open_in_place(nonce, aead::Aad::from(context), &mut buf)
            .map_err(|_| bad())?;
        Ok(plain.to_vec())
    }
}

/// Refuses a key file that group or others may read (the rule `tessera-admin doctor`
/// reports against too).
pub fn check_private(path: &Path) -> Result<(), MasterKeyError> {
    let mode = file_mode(path).map_err(|source| MasterKeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    match mode {
        Some(mode) if mode & 0o077 != 0 => Err(MasterKeyError::Exposed {
            path: path.to_owned(),
            mode,
        }),
        _ => Ok(()),
    }
}

/// The file's permission bits; `None` where there are none to read (not unix).
#[cfg(unix)]
fn file_mode(path: &Path) -> std::io::Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt;
    Ok(Some(std::fs::metadata(path)?.permissions().mode() & 0o777))
}

#[cfg(not(unix))]
fn file_mode(path: &Path) -> std::io::Result<Option<u32>> {
    std::fs::metadata(path).map(|_| None)
}

fn in_file(path: &Path, e: MasterKeyError) -> MasterKeyError {
    MasterKeyError::InFile {
        path: path.to_owned(),
        source: Box::new(e),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Folders it creates are the owner's alone; an existing one is left as it is.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ids_carry_their_time_and_differ() {
        let now = UnixMs::from_millis(1_795_989_069_123);
        let (a, b) = (time_id(now), time_id(now));
        assert_ne!(a, b);
        assert_eq!(a.len(), 22);
        assert!(!a.starts_with('-'));
        assert_eq!(id_time(&a), Some(now));
        assert_eq!(id_time("not an id"), None);
    }

    #[test]
    fn sealed_data_opens_only_with_the_same_key_and_context() {
        let a = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let b = MasterKey::from_bytes(&[8u8; 32]).unwrap();
        let sealed = a.seal(b"kid-1", b"private key");
        assert_eq!(a.open(b"kid-1", &sealed).unwrap(), b"private key");
        assert!(a.open(b"kid-2", &sealed).is_err());
        assert!(b.open(b"kid-1", &sealed).is_err());
    }

    #[test]
    fn short_master_keys_are_refused() {
        assert!(MasterKey::from_bytes(&[1u8; 31]).is_err());
    }

    #[test]
    fn ct_eq_compares() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
