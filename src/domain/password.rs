//! Password hashing: Argon2id with PHC strings, at bounded concurrency.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::domain::crypto::ct_eq;

/// How passwords are hashed: Argon2id's costs, and how many hashes may run at once.
#[derive(Debug, Clone, Copy)]
pub struct HashPolicy {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Hashes computed at once (at least one).
    pub concurrency: usize,
    /// Longest wait for a hashing slot before a sign-in is answered [`Busy`].
    pub max_wait: Duration,
}

impl HashPolicy {
    fn params(&self) -> Result<Params, HashError> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| HashError::Parameters(e.to_string()))
    }

    /// Whether Argon2 accepts these costs.
    pub fn check(&self) -> Result<(), HashError> {
        self.params().map(|_| ())
    }
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("invalid Argon2 parameters: {0}")]
    Parameters(String),
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// Hashes and verifies passwords. Cloning shares the concurrency limit.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// Longest wait for a hashing slot before [`Busy`].
    max_wait: Duration,
    gate: Arc<Gate>,
    /// A hash of a random password, verified against when the user does not exist, so that an
    /// unknown username costs the same time as a wrong password.
    dummy: Arc<String>,
    /// Told how long each verification waited for a slot (metrics).
    on_wait: Option<WaitObserver>,
}

/// Receives the time a verification waited for a hashing slot.
pub type WaitObserver = Arc<dyn Fn(Duration) + Send + Sync>;

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    pub fn new(policy: &HashPolicy) -> Result<Self, HashError> {
        let mut hasher = Self {
            params: policy.params()?,
            max_wait: policy.max_wait,
            gate: Arc::new(Gate::new(policy.concurrency.max(1))),
            dummy: Arc::new(String::new()),
            on_wait: None,
        };
        let random = crate::domain::crypto::random_id();
        hasher.dummy = Arc::new(hasher.hash(&random)?);
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Calls `observe` with the time each verification waited for a hashing slot.
    pub fn observe_waits(&mut self, observe: WaitObserver) {
        self.on_wait = Some(observe);
    }

    /// Hashing slots taken now, and how many there are.
    pub fn slots(&self) -> (usize, usize) {
        let free = self
            .gate
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len();
        (self.gate.slots - free, self.gate.slots)
    }

    /// A PHC string for `password`. Blocks: call from a blocking thread.
    pub fn hash(&self, password: &str) -> Result<String, HashError> {
        let salt = SaltString::encode_b64(&crate::domain::crypto::random_bytes(16))
            .map_err(|e| HashError::Hashing(format!("salt: {e}")))?;
        let _permit = self.gate.acquire();
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| HashError::Hashing(e.to_string()))
    }

    /// Checks `password` against `phc`, or against a dummy hash when `phc` is `None`, so both
    /// cases take the same time. Blocks: call from a blocking thread. [`Busy`] when no hashing
    /// slot frees up within `passwords.max_wait`.
    pub fn verify(&self, password: &str, phc: Option<&str>) -> Result<bool, Busy> {
        let (target, real) = match phc {
            Some(p) => (p, true),
            None => (self.dummy.as_str(), false),
        };
        let Ok(parsed) = PasswordHash::new(target) else {
            return Ok(false);
        };
        let asked = Instant::now();
        let permit = self.gate.acquire_within(self.max_wait);
        if let Some(observe) = &self.on_wait {
            observe(asked.elapsed());
        }
        let mut permit = permit.ok_or(Busy)?;
        // With the hash's own parameters (they may predate a configuration change).
        let ok = verify_in(&parsed, password, &mut permit.blocks);
        Ok(ok && real)
    }
}

/// Every hashing slot stayed taken for `passwords.max_wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password hashing is at capacity")]
pub struct Busy;

/// A counting semaphore for blocking threads, whose permits each carry one Argon2 memory
/// buffer. Reusing the buffers keeps memory at one buffer per slot: allocating 19 MiB afresh
/// on whichever blocking thread runs a hash leaves the allocator holding a copy per thread.
struct Gate {
    slots: usize,
    free: Mutex<Vec<Vec<Block>>>,
    cv: Condvar,
}

struct Permit<'a> {
    gate: &'a Gate,
    blocks: Vec<Block>,
}

impl Gate {
    fn new(n: usize) -> Self {
        Self {
            slots: n,
            free: Mutex::new((0..n).map(|_| Vec::new()).collect()),
            cv: Condvar::new(),
        }
    }

    fn acquire_within(&self, max_wait: Duration) -> Option<Permit<'_>> {
        let deadline = Instant::now() + max_wait;
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(blocks) = free.pop() {
                return Some(Permit { gate: self, blocks });
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            free = self
                .cv
                .wait_timeout(free, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn acquire(&self) -> Permit<'_> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(blocks) = free.pop() {
                return Permit { gate: self, blocks };
            }
            free = self.cv.wait(free).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let blocks = std::mem::take(&mut self.blocks);
        let mut free = self.gate.free.lock().unwrap_or_else(|p| p.into_inner());
        free.push(blocks);
        self.gate.cv.notify_one();
    }
}

/// Verifies an Argon2id v1.3 PHC hash in `blocks` (grown as its parameters need).
fn verify_in(parsed: &PasswordHash<'_>, password: &str, blocks: &mut Vec<Block>) -> bool {
    if parsed.algorithm != argon2::ARGON2ID_IDENT || parsed.version != Some(0x13) {
        // Not a hash Tessera writes: let the library handle it.
        return Argon2::default()
            .verify_password(password.as_bytes(), parsed)
            .is_ok();
    }
    let (Ok(params), Some(expected), Some(salt)) =
        (Params::try_from(parsed), &parsed.hash, &parsed.salt)
    else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let needed = params.block_count();
    if blocks.len() < needed {
        blocks.resize(needed, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut blocks[..needed])
        .is_ok()
        && ct_eq(&out, expected.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> PasswordHasher {
        let s = HashPolicy {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
            concurrency: 1,
            max_wait: Duration::from_millis(50),
        };
        PasswordHasher::new(&s).unwrap()
    }

    #[test]
    fn hashes_are_argon2id_phc_and_verify() {
        let h = fast();
        let phc = h.hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{phc}");
        assert_eq!(h.verify("correct horse", Some(&phc)), Ok(true));
        assert_eq!(h.verify("wrong", Some(&phc)), Ok(false));
        assert_eq!(h.verify("correct horse", None), Ok(false));
    }

    #[test]
    fn hashes_made_with_other_parameters_still_verify() {
        let old = fast();
        let phc = old.hash("correct horse").unwrap();
        let policy = HashPolicy {
            memory_kib: 2048,
            iterations: 2,
            parallelism: 1,
            concurrency: 1,
            max_wait: Duration::from_millis(50),
        };
        let new = PasswordHasher::new(&policy).unwrap();
        assert_eq!(new.verify("correct horse", Some(&phc)), Ok(true));
        assert_eq!(new.verify("correct horsf", Some(&phc)), Ok(false));
        // A tampered hash output does not verify.
        let tampered = format!("{}A", &phc[..phc.len() - 1]);
        let tampered = if tampered == phc {
            format!("{}B", &phc[..phc.len() - 1])
        } else {
            tampered
        };
        assert_eq!(new.verify("correct horse", Some(&tampered)), Ok(false));
    }

    #[test]
    fn a_full_gate_answers_busy_after_max_wait() {
        let h = fast();
        let held = h.gate.acquire();
        let phc = h.dummy.as_str().to_owned();
        assert_eq!(h.verify("x", Some(&phc)), Err(Busy));
        // An unknown user goes through the same hashing slot: it costs a real verification.
        assert_eq!(h.verify("x", None), Err(Busy));
        drop(held);
        assert_eq!(h.verify("x", Some(&phc)), Ok(false));
    }
}
