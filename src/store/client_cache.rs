//! Clients cached in memory on PostgreSQL, dropped the moment they change.
//!
//! A trigger announces every change to `clients` on the channel `tessera_clients`
//! (migration 000006), whoever makes it: the CLI, another instance, plain SQL. The cache
//! listens on a connection of its own, and drains what has arrived before every lookup, so a
//! change is seen by the first request after its commit has reached this server. While the
//! listening connection is down, the cache is bypassed and emptied: it never answers from
//! rows it could not have heard about. SQLite has no notifications, and its queries never
//! leave the process: there is no cache there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::Connection;

use crate::store::models::Client;
use crate::store::{AnyConnection, Backend};

const CHANNEL: &str = "tessera_clients";
/// How often the background thread drains notifications (lookups also drain them) and, while
/// disconnected, tries to listen again.
const POLL: Duration = Duration::from_millis(100);

/// A cache of client rows. Cheap to clone.
#[derive(Clone, Default)]
pub struct ClientCache {
    shared: Option<Arc<Shared>>,
}

struct Shared {
    /// The listening connection; `None` while down.
    listener: Mutex<Option<PgConnection>>,
    entries: RwLock<Entries>,
}

#[derive(Default)]
struct Entries {
    clients: HashMap<String, Client>,
    /// Bumped by every invalidation: a row read from the database before an invalidation is
    /// not cached after it.
    generation: u64,
}

impl ClientCache {
    /// A cache for `url`'s database; on PostgreSQL it starts listening in the background.
    pub fn start(backend: Backend, url: &str) -> ClientCache {
        if backend != Backend::Postgres {
            return ClientCache::default();
        }
        let shared = Arc::new(Shared {
            listener: Mutex::new(None),
            entries: RwLock::new(Entries::default()),
        });
        let weak = Arc::downgrade(&shared);
        let url = url.to_owned();
        let spawned = std::thread::Builder::new()
            .name("client-cache".into())
            .spawn(move || listen(&weak, &url));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the client cache; clients are read each time");
            return ClientCache::default();
        }
        ClientCache {
            shared: Some(shared),
        }
    }

    /// The client with this id, from the cache when it can be trusted.
    pub fn find(&self, conn: &mut AnyConnection, id: &str) -> diesel::QueryResult<Option<Client>> {
        let Some(shared) = &self.shared else {
            return Client::find(conn, id);
        };
        if !shared.drain() {
            return Client::find(conn, id);
        }
        let generation = {
            let entries = shared
                .entries
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(client) = entries.clients.get(id) {
                return Ok(Some(client.clone()));
            }
            entries.generation
        };
        let found = Client::find(conn, id)?;
        if let Some(client) = &found {
            // Whatever arrived while the row was read decides whether it may be kept.
            if shared.drain() {
                let mut entries = shared
                    .entries
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                if entries.generation == generation {
                    entries.clients.insert(id.to_owned(), client.clone());
                }
            }
        }
        Ok(found)
    }
}

impl Shared {
    /// Applies every notification that has arrived. Returns whether the cache is live (the
    /// listening connection is up); when it is not, the cache has been emptied.
    fn drain(&self) -> bool {
        let mut listener = self.listener.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(conn) = listener.as_mut() else {
            return false;
        };
        let mut changed = Vec::new();
        let mut failed = false;
        for notification in conn.notifications_iter() {
            match notification {
                Ok(n) => changed.push(n.payload),
                Err(e) => {
                    tracing::warn!(error = %e, "client cache lost its database connection; bypassed until it is back");
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            *listener = None;
            self.clear();
            return false;
        }
        if !changed.is_empty() {
            let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
            entries.generation += 1;
            if changed.iter().any(|id| id == "*") {
                entries.clients.clear();
            }
            for id in &changed {
                entries.clients.remove(id);
            }
        }
        true
    }

    fn clear(&self) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        entries.generation += 1;
        entries.clients.clear();
    }
}

/// The background thread: keeps a listening connection up and drains it, until the cache is
/// dropped.
fn listen(cache: &Weak<Shared>, url: &str) {
    let mut backoff = POLL;
    while let Some(shared) = cache.upgrade() {
        let up = shared
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        if up {
            shared.drain();
            backoff = POLL;
        } else {
            match PgConnection::establish(url)
                .map_err(|e| e.to_string())
                .and_then(|mut c| {
                    c.batch_execute(&format!("LISTEN {CHANNEL}"))
                        .map(|()| c)
                        .map_err(|e| e.to_string())
                }) {
                Ok(conn) => {
                    // Listening from now on; rows cached before might have missed a change.
                    *shared
                        .listener
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = Some(conn);
                    shared.clear();
                    backoff = POLL;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "client cache cannot listen yet");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        drop(shared);
        std::thread::sleep(backoff);
    }
}
