//! The domain's policies, built from settings: the domain never reads [`Settings`].

use std::time::Duration;

use crate::domain::password::HashPolicy;
use crate::domain::{browser, family, retention, throttle};
use crate::settings::Settings;

impl Settings {
    /// Refresh-token lifetimes and the grace window.
    pub fn lifetimes(&self) -> family::Lifetimes {
        let t = &self.tokens;
        family::Lifetimes {
            idle: t.refresh_idle_ttl,
            absolute: t.refresh_absolute_ttl,
            reuse_grace: t.reuse_grace,
        }
    }

    pub fn throttle_policy(&self) -> throttle::Policy {
        let t = &self.throttle;
        throttle::Policy {
            per_user: i64::from(t.max_failures_per_user.max(1)),
            per_ip: i64::from(t.max_failures_per_ip.max(1)),
            window: t.window,
            ipv6_prefix: t.ipv6_prefix,
            max_wait: self.passwords.max_wait,
        }
    }

    pub fn retention_policy(&self) -> retention::Policy {
        retention::Policy {
            dead_families: self.retention.dead_families,
            // A grace retry needs the rotated token for `reuse_grace`; a minute at least, for
            // instances whose clocks disagree a little.
            rotated_tokens: self.tokens.reuse_grace.max(Duration::from_secs(60)),
            audit: self.retention.audit,
            session_idle: self.sessions.idle_ttl,
            session_absolute: self.sessions.absolute_ttl,
            throttle_window: self.throttle.window,
            batch: i64::from(self.retention.batch.max(1)),
        }
    }

    pub fn session_limits(&self) -> browser::SessionLimits {
        browser::SessionLimits {
            idle: self.sessions.idle_ttl,
            absolute: self.sessions.absolute_ttl,
        }
    }

    /// How passwords are hashed, with `concurrency` hashes at once (`None`: `passwords.
    /// max_concurrent_hashes`, or one per CPU core).
    pub fn hash_policy(&self, concurrency: Option<usize>) -> HashPolicy {
        let p = &self.passwords;
        HashPolicy {
            memory_kib: p.argon2_memory_kib,
            iterations: p.argon2_iterations,
            parallelism: p.argon2_parallelism,
            concurrency: concurrency.unwrap_or_else(|| self.hash_concurrency()),
            max_wait: p.max_wait,
        }
    }

    pub fn hash_concurrency(&self) -> usize {
        match self.passwords.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }
}
