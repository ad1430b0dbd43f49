//! Text or JSON output. With `--output json`, stdout carries the JSON document and nothing else.

pub mod lineage;

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, UNIX_EPOCH};
use tessera::value::UnixMs;

use clap::ValueEnum;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Prints `value` as JSON, or `text` for people.
pub fn emit<T: Serialize>(
    format: Format,
    value: &T,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    let out = match format {
        Format::Json => serde_json::to_string_pretty(value)?,
        Format::Text => text(),
    };
    print(&out)
}

/// Writes `text` and a newline to stdout. A closed pipe (`… | head`) ends the program quietly.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => Ok(other?),
    }
}

/// Latest time humantime can print (9999-12-31T23:59:59Z).
const MAX_MS: u64 = 253_402_300_799_000;

/// Unix milliseconds as RFC 3339 UTC, to the second.
pub fn rfc3339(at: UnixMs) -> String {
    let ms = u64::try_from(at.millis()).unwrap_or(0).min(MAX_MS);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

pub fn rfc3339_opt(at: Option<UnixMs>) -> String {
    at.map_or_else(|| "-".to_owned(), rfc3339)
}

/// The first characters of an id, for tables.
pub fn short(id: impl AsRef<str>) -> String {
    id.as_ref().chars().take(8).collect()
}

/// The terminal's width when stdout is one (or `$COLUMNS`); `None` for pipes and files.
fn terminal_width() -> Option<usize> {
    if let Some((terminal_size::Width(w), _)) = terminal_size::terminal_size() {
        return Some(usize::from(w));
    }
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok())
}

/// An aligned table; the last column is cut to fit the terminal.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        self.render_width(terminal_width())
    }

    pub fn render_width(&self, width: Option<usize>) -> String {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(n) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let fixed: usize = widths[..n - 1].iter().map(|w| w + 2).sum();
        let last = match width {
            Some(w) if w > fixed + 8 => widths[n - 1].min(w - fixed),
            Some(_) => widths[n - 1].min(8),
            None => widths[n - 1],
        };
        let line = |cells: Vec<&str>| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i + 1 == n {
                    out.push_str(&cut(cell, last));
                } else {
                    out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
                }
            }
            out.trim_end().to_owned()
        };
        let mut lines = vec![line(self.headers.clone())];
        for row in &self.rows {
            lines.push(line(row.iter().map(String::as_str).collect()));
        }
        lines.join("\n")
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// Asks before a destructive change. `--yes` skips the question; without a terminal to ask on,
/// the change is refused.
pub fn confirm(yes: bool, question: &str) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("refusing to {question} without confirmation: pass --yes");
    }
    eprint!("{} [y/N] ", capitalise(question));
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        anyhow::bail!("cancelled")
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_in_rfc3339_and_never_panic() {
        assert_eq!(rfc3339(UnixMs::from_millis(0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UnixMs::from_millis(1_795_700_458_000)),
            "2026-11-26T13:40:58Z"
        );
        assert_eq!(
            rfc3339(UnixMs::from_millis(i64::MAX)),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(rfc3339(UnixMs::from_millis(-5)), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn tables_align_and_cut_the_last_column() {
        let mut t = Table::new(&["ID", "NAME"]);
        t.row(vec!["a".into(), "a long name indeed".into()]);
        t.row(vec!["bbbb".into(), "x".into()]);
        assert_eq!(
            t.render_width(None),
            "ID    NAME\na     a long name indeed\nbbbb  x"
        );
        assert_eq!(
            t.render_width(Some(16)),
            "ID    NAME\na     a long na…\nbbbb  x"
        );
    }
}
