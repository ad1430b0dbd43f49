use serde::Serialize;
use tessera::domain::retention;

use super::Context;
use crate::output::{emit, Format, Table};

/// One line per table on stderr: a spinner, the rows removed so far, the batches and the rate.
#[derive(Default)]
struct Bars {
    current: Option<(&'static str, indicatif::ProgressBar)>,
}

impl Bars {
    fn show(&mut self, p: retention::Progress) {
        if self.current.as_ref().is_none_or(|(t, _)| *t != p.table) {
            self.finish();
            let bar = indicatif::ProgressBar::new_spinner().with_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {prefix:<22} {pos:>10} rows removed, {msg} [{elapsed}, {per_sec}]",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.set_prefix(p.table);
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            self.current = Some((p.table, bar));
        }
        if let Some((_, bar)) = &self.current {
            bar.set_position(u64::try_from(p.removed).unwrap_or(0));
            bar.set_message(format!("{} batches", p.batches));
        }
    }

    fn finish(&mut self) {
        if let Some((_, bar)) = self.current.take() {
            bar.finish();
        }
    }
}

#[derive(Serialize)]
struct PruneView {
    dry_run: bool,
    /// Rows removed (or that would be), per table.
    tables: serde_json::Map<String, serde_json::Value>,
    total: i64,
    /// Another instance was pruning; run again later.
    interrupted: bool,
}

/// `prune [--dry-run]`: what the server prunes every `retention.interval`, now. On a terminal,
/// stderr shows how far each table is (a million dead families take minutes); piped, or with
/// `-o json`, nothing but the result is printed.
pub fn run(ctx: &mut Context, dry_run: bool) -> anyhow::Result<()> {
    let policy = ctx.settings.retention_policy();
    let now = ctx.clock.now();
    let shown = !dry_run
        && ctx.output == Format::Text
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut bars = shown.then(Bars::default);
    let report = retention::prune_showing(ctx.conn()?, &policy, now, dry_run, &mut |p| {
        if let Some(bars) = bars.as_mut() {
            bars.show(p);
        }
    });
    if let Some(bars) = bars.as_mut() {
        bars.finish();
    }
    let report = report?;
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
