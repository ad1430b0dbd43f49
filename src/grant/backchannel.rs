//! Back-channel logout delivery, the blocking half: claiming due notices with their signed
//! logout tokens, and recording what each attempt got. The server's worker (`crate::delivery`)
//! does the posting; the rules are in [`crate::domain::backchannel`].

use std::collections::HashMap;
use std::time::Duration;

use crate::domain::backchannel::{self, Attempt, Outcome, RetryPolicy};
use crate::domain::client;
use crate::domain::secret::Secret;
use crate::grant::Core;
use crate::settings::Settings;
use crate::store::models::LogoutNotice;
use crate::store::write_tx;

/// Notices claimed per poll (and posted at once).
const BATCH: i64 = 64;

/// Families past their absolute lifetime noticed per poll.
const EXPIRED_BATCH: i64 = 100;

/// One logout token to post.
pub struct Delivery {
    pub notice: LogoutNotice,
    /// The client's back-channel logout URI.
    pub uri: String,
    pub logout_token: Secret,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("notice", &self.notice.id)
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

/// Back-channel logout delivery. Cheap to clone; its methods block.
#[derive(Clone)]
pub struct Backchannel {
    core: Core,
    policy: RetryPolicy,
    /// How long an attempt may take.
    pub timeout: Duration,
    pub poll_interval: Duration,
}

impl Backchannel {
    pub(crate) fn new(settings: &Settings, core: Core) -> Self {
        let b = &settings.backchannel;
        Self {
            core,
            policy: RetryPolicy {
                retry_for: b.retry_for,
                first_backoff: Duration::from_secs(1),
                max_backoff: Duration::from_secs(300),
            },
            timeout: b.timeout,
            poll_interval: b.poll_interval,
        }
    }

    /// How many notices one [`Backchannel::claim`] takes at most.
    pub fn batch(&self) -> usize {
        BATCH as usize
    }

    /// Notices families that reached their absolute lifetime, then claims the notices due now
    /// for this instance (for twice the timeout and a margin) and signs their logout tokens.
    pub fn claim(&self) -> anyhow::Result<Vec<Delivery>> {
        let conn = &mut *self.core.conn()?;
        let now = self.core.clock.now();
        backchannel::notice_expired(conn, now, EXPIRED_BATCH)?;
        let pending = LogoutNotice::pending_count(conn)?;
        self.core.metrics.backchannel_pending(pending);
        if pending == 0 {
            return Ok(Vec::new());
        }
        let lease = now + self.timeout * 2 + Duration::from_secs(5);
        let notices = write_tx(conn, |c| LogoutNotice::claim_due(c, now, lease, BATCH))?;
        let keys = self.core.keys.get();
        // Each client read once, however many of its notices are due.
        let mut clients = HashMap::new();
        let mut deliveries = Vec::with_capacity(notices.len());
        for notice in notices {
            if !clients.contains_key(&notice.client_id) {
                let client = client::get(conn, &notice.client_id)?;
                clients.insert(notice.client_id.clone(), client);
            }
            let found = clients.get(&notice.client_id).and_then(Option::as_ref);
            let uri = found.and_then(|c| c.openid.backchannel_logout_uri.as_ref());
            let key = match found.and_then(|c| c.openid.id_token_alg) {
                Some(alg) => keys.signing_with(alg),
                None => Some(keys.signing()),
            };
            let (Some(uri), Some(key)) = (uri, key) else {
                let why = "the client no longer takes back-channel logout, or has no signing key";
                backchannel::record(
                    conn,
                    &notice,
                    &Attempt::Refused(why.into()),
                    &self.policy,
                    now,
                )?;
                self.core.metrics.backchannel("failed", None);
                continue;
            };
            let token = backchannel::logout_token(key, &self.core.issuer, &notice, now)?;
            deliveries.push(Delivery {
                uri: uri.to_string(),
                logout_token: Secret::new(token),
                notice,
            });
        }
        Ok(deliveries)
    }

    /// Records what the attempt at `delivery` got.
    pub fn record(&self, delivery: &Delivery, attempt: &Attempt) -> anyhow::Result<Outcome> {
        let conn = &mut *self.core.conn()?;
        let now = self.core.clock.now();
        let outcome = backchannel::record(conn, &delivery.notice, attempt, &self.policy, now)?;
        let notice = &delivery.notice;
        match (outcome, attempt) {
            (Outcome::Delivered, _) => {
                let delay = now.since(notice.created_at);
                self.core.metrics.backchannel("delivered", Some(delay));
                tracing::info!(client_id = %notice.client_id, notice = %notice.id, reason = %notice.reason, delay_ms = delay.as_millis() as u64, "back-channel logout delivered");
            }
            (Outcome::Retried, Attempt::Failed(why))
            | (Outcome::Retried, Attempt::Refused(why)) => {
                self.core.metrics.backchannel("retried", None);
                tracing::warn!(client_id = %notice.client_id, notice = %notice.id, attempt = notice.attempts, error = %why, "back-channel logout failed; will retry");
            }
            (_, Attempt::Failed(why)) | (_, Attempt::Refused(why)) => {
                self.core.metrics.backchannel("failed", None);
                tracing::error!(client_id = %notice.client_id, notice = %notice.id, attempts = notice.attempts, error = %why, "back-channel logout given up");
            }
            _ => {}
        }
        Ok(outcome)
    }
}
