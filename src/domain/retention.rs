//! Retention: what the database keeps, and for how long. Pruning deletes, in small batches, the
//! rows that can no longer matter: families revoked or past their absolute lifetime for
//! `retention.dead_families` (with their refresh tokens and the used codes that started them), audit events and reuse incidents older
//! than `retention.audit`, rotated refresh tokens once the grace window is over (a replay of one
//! still revokes its family: the token names it), and at once the expired codes, sessions,
//! throttle windows and revoked access-token ids. One instance prunes at a time.

use std::time::Duration;

use crate::store::prune::{self, Cutoffs, Prunable};
use crate::store::{write_tx, AnyConnection};
use crate::value::UnixMs;

/// How long rows are kept, from `[retention]` and the lifetimes they depend on.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub dead_families: Duration,
    /// How long a rotated token is kept: a grace retry (`tokens.reuse_grace`) needs it.
    pub rotated_tokens: Duration,
    pub audit: Duration,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    pub throttle_window: Duration,
    /// Rows deleted per transaction: short ones, so nothing waits on pruning for long.
    pub batch: i64,
}

impl Policy {
    fn cutoffs(&self, now: UnixMs) -> Cutoffs {
        Cutoffs {
            now,
            dead_families: now - self.dead_families,
            rotated_tokens: now - self.rotated_tokens,
            audit: now - self.audit,
            session_idle: now - self.session_idle,
            session_absolute: now - self.session_absolute,
            throttle_window: now - self.throttle_window,
        }
    }
}

/// Whether a family or incident id that is not stored may be one retention deleted: made by
/// [`crate::domain::crypto::time_id`] more than `kept` (the retention window for that kind)
/// before `now`. A mistyped id almost never decodes to such a time.
pub fn may_have_been_pruned(id: &str, kept: Duration, now: UnixMs) -> bool {
    const YEAR_2020: UnixMs = UnixMs::from_millis(1_577_836_800_000);
    crate::domain::crypto::id_time(id).is_some_and(|t| t >= YEAR_2020 && t < now - kept)
}

/// Rows removed (or, for a dry run, that would be), per table.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// `(table, rows)`, in the order they are pruned; refresh tokens go with their families.
    pub tables: Vec<(&'static str, i64)>,
    /// Another instance was pruning: this pass stopped early.
    pub interrupted: bool,
}

impl Report {
    pub fn total(&self) -> i64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }

    fn add(&mut self, table: &'static str, n: i64) {
        match self.tables.iter_mut().find(|(t, _)| *t == table) {
            Some((_, total)) => *total += n,
            None => self.tables.push((table, n)),
        }
    }
}

/// Prunes everything `policy` no longer keeps, as of `now`; with `dry_run`, only counts it.
pub fn prune(
    conn: &mut AnyConnection,
    policy: &Policy,
    now: UnixMs,
    dry_run: bool,
) -> diesel::QueryResult<Report> {
    prune_showing(conn, policy, now, dry_run, &mut |_| {})
}

/// How far a pruning pass is: called as each table starts (`removed` 0) and after each batch.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub table: &'static str,
    /// Rows removed from `table` so far in this pass.
    pub removed: i64,
    /// Batches done in `table`.
    pub batches: u64,
}

/// [`prune`], telling `progress` how far it is (`tessera-admin prune` on a terminal).
pub fn prune_showing(
    conn: &mut AnyConnection,
    policy: &Policy,
    now: UnixMs,
    dry_run: bool,
    progress: &mut dyn FnMut(Progress),
) -> diesel::QueryResult<Report> {
    let cut = policy.cutoffs(now);
    if dry_run {
        return count_prunable(conn, &cut);
    }
    let mut report = Report::default();
    for table in Prunable::ALL {
        if !prune_table(conn, policy, &cut, table, &mut report, progress)? {
            report.interrupted = true;
            break;
        }
    }
    Ok(report)
}

/// What a pass would delete, counted as it would delete it: a dead family's tokens with the
/// family, not again among the rotated ones.
fn count_prunable(conn: &mut AnyConnection, cut: &Cutoffs) -> diesel::QueryResult<Report> {
    let mut report = Report::default();
    let families = prune::prunable_families(conn, cut)?;
    for table in Prunable::ALL {
        let n = match table {
            Prunable::TokenFamilies => families.len() as i64,
            Prunable::RotatedTokens => {
                report.add("refresh_tokens", prune::tokens_of(conn, &families, None)?);
                table.count(conn, cut)?
                    - prune::tokens_of(conn, &families, Some(cut.rotated_tokens))?
            }
            _ => table.count(conn, cut)?,
        };
        report.add(table.table(), n);
    }
    Ok(report)
}

/// Prunes one table batch by batch into `report`; `false` when another instance was pruning.
fn prune_table(
    conn: &mut AnyConnection,
    policy: &Policy,
    cut: &Cutoffs,
    table: Prunable,
    report: &mut Report,
    progress: &mut dyn FnMut(Progress),
) -> diesel::QueryResult<bool> {
    report.add(table.table(), 0);
    if table == Prunable::TokenFamilies {
        report.add("refresh_tokens", 0);
    }
    let (mut removed, mut batches) = (0, 0);
    progress(Progress {
        table: table.table(),
        removed,
        batches,
    });
    loop {
        let started = std::time::Instant::now();
        let Some(batch) = write_tx(conn, |c| prune_batch(c, policy, cut, table))? else {
            return Ok(false);
        };
        report.add(table.table(), batch.deleted as i64);
        if table == Prunable::TokenFamilies {
            report.add("refresh_tokens", batch.tokens);
        }
        removed += batch.deleted as i64;
        batches += 1;
        progress(Progress {
            table: table.table(),
            removed,
            batches,
        });
        if (batch.picked as i64) < policy.batch {
            return Ok(true);
        }
        // Three times as long between batches: pruning takes at most a quarter of one
        // connection's time, and of the disk's WAL bandwidth, which rotations' commits share.
        std::thread::sleep((started.elapsed() * 3).min(std::time::Duration::from_secs(1)));
    }
}

/// One batch's rows: picked, deleted, and (for families) the refresh tokens that went with them.
struct Batch {
    picked: usize,
    deleted: usize,
    tokens: i64,
}

/// Deletes one batch of `table` in the caller's transaction; `None` when another instance
/// holds the pruning lock.
fn prune_batch(
    c: &mut AnyConnection,
    policy: &Policy,
    cut: &Cutoffs,
    table: Prunable,
) -> diesel::QueryResult<Option<Batch>> {
    if !prune::try_lock(c)? {
        return Ok(None);
    }
    let ids = table.next_batch(c, cut, policy.batch)?;
    let tokens = match table {
        Prunable::TokenFamilies if !ids.is_empty() => prune::tokens_of(c, &ids, None)?,
        _ => 0,
    };
    let deleted = table.delete(c, cut, &ids)?;
    Ok(Some(Batch {
        picked: ids.len(),
        deleted,
        tokens,
    }))
}
