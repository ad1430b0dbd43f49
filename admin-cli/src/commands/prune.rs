use serde::Serialize;
use tessera::domain::retention;

use super::Context;
use crate::output::{emit, Table};

#[derive(Serialize)]
struct PruneView {
    dry_run: bool,
    /// Rows removed (or that would be), per table.
    tables: serde_json::Map<String, serde_json::Value>,
    total: i64,
    /// Another instance was pruning; run again later.
    interrupted: bool,
}

/// `prune [--dry-run]`: what the server prunes every `retention.interval`, now.
pub fn run(ctx: &mut Context, dry_run: bool) -> anyhow::Result<()> {
    let policy = ctx.settings.retention_policy();
    let now = ctx.clock.now_ms();
    let report = retention::prune(ctx.conn()?, &policy, now, dry_run)?;
    let view = PruneView {
        dry_run,
        tables: report
            .tables
            .iter()
            .map(|(t, n)| ((*t).to_owned(), (*n).into()))
            .collect(),
        total: report.total(),
        interrupted: report.interrupted,
    };
    emit(ctx.output, &view, || {
        let mut t = Table::new(&["TABLE", if dry_run { "WOULD REMOVE" } else { "REMOVED" }]);
        for (table, n) in &report.tables {
            t.row(vec![(*table).to_owned(), n.to_string()]);
        }
        let mut text = t.render();
        if report.interrupted {
            text.push_str("\nanother instance is pruning; stopped early");
        }
        text
    })
}
