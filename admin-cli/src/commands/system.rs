use clap::{CommandFactory, Subcommand};
use serde::Serialize;
use tessera::store;

use super::{Cli, Context};
use crate::output::emit;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the configuration; print the effective values, secrets redacted
    Check,
}

pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "tessera-admin", &mut script);
    crate::output::print(String::from_utf8_lossy(&script).trim_end())
}

pub fn migrate(ctx: &Context) -> anyhow::Result<()> {
    let db = &ctx.settings.database;
    let applied = store::migrate_url(db.url.expose(), db.pooler)?;
    #[derive(Serialize)]
    struct Migrated {
        applied: Vec<String>,
    }
    emit(
        ctx.output,
        &Migrated {
            applied: applied.clone(),
        },
        || {
            if applied.is_empty() {
                "the database is up to date".to_owned()
            } else {
                format!(
                    "applied {} migrations: {}",
                    applied.len(),
                    applied.join(", ")
                )
            }
        },
    )
}

pub fn config(ctx: &Context, cmd: ConfigCommand) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Check => {
            // Derived from `Settings` itself, so that no key can be left out: secrets print
            // as REDACTED, durations as they are written (`90d`).
            let effective = serde_json::to_value(&ctx.settings)?;
            emit(ctx.output, &effective, || {
                let mut out = String::from("configuration is valid\n");
                let serde_json::Value::Object(sections) = &effective else {
                    return out;
                };
                // As TOML would have it: top-level keys first; an unset one as a comment.
                let line = |k: &str, v: &serde_json::Value| match v {
                    serde_json::Value::Null => format!("# {k} is not set\n"),
                    v => format!("{k} = {v}\n"),
                };
                for (name, value) in sections.iter().filter(|(_, v)| !v.is_object()) {
                    out.push_str(&line(name, value));
                }
                for (name, value) in sections {
                    if let serde_json::Value::Object(keys) = value {
                        out.push_str(&format!("\n[{name}]\n"));
                        for (k, v) in keys {
                            out.push_str(&line(k, v));
                        }
                    }
                }
                out.trim_end().to_owned()
            })
        }
    }
}
