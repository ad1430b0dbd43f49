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
    let applied = store::migrate_url(ctx.settings.database.url.expose())?;
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

/// A database URL with its password (in the user part or the query) replaced.
fn redact_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return url.to_owned();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("REDACTED"));
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let secret = matches!(k.as_ref(), "password" | "pass" | "sslpassword");
                (
                    k.into_owned(),
                    if secret {
                        "REDACTED".to_owned()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

pub fn config(ctx: &Context, cmd: ConfigCommand) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Check => {
            let s = &ctx.settings;
            let human = |d: std::time::Duration| humantime::format_duration(d).to_string();
            let effective = serde_json::json!({
                "server": {
                    "listen": s.server.listen.to_string(),
                    "issuer": s.issuer(),
                    "max_body_bytes": s.server.max_body_bytes,
                    "trusted_proxies": s.server.trusted_proxies,
                    "shutdown_timeout": human(s.server.shutdown_timeout),
                    "metrics_listen": s.server.metrics_listen,
                },
                "database": {
                    "url": redact_url(s.database.url.expose()),
                    "pool_size": s.database.pool_size,
                    "connect_timeout": human(s.database.connect_timeout),
                },
                "tokens": {
                    "access_ttl": human(s.tokens.access_ttl),
                    "refresh_idle_ttl": human(s.tokens.refresh_idle_ttl),
                    "refresh_absolute_ttl": human(s.tokens.refresh_absolute_ttl),
                    "reuse_grace": human(s.tokens.reuse_grace),
                    "audience": s.audience(),
                },
                "keys": {
                    "algorithm": s.keys.algorithm.as_str(),
                    "activation_delay": human(s.keys.activation_delay),
                    "reload_interval": human(s.keys.reload_interval),
                    "max_age": human(s.keys.max_age),
                },
                "passwords": {
                    "argon2_memory_kib": s.passwords.argon2_memory_kib,
                    "argon2_iterations": s.passwords.argon2_iterations,
                    "argon2_parallelism": s.passwords.argon2_parallelism,
                    "max_concurrent_hashes": s.hash_concurrency(),
                },
                "throttle": {
                    "max_failures_per_user": s.throttle.max_failures_per_user,
                    "max_failures_per_ip": s.throttle.max_failures_per_ip,
                    "window": human(s.throttle.window),
                },
                "retention": {
                    "interval": human(s.retention.interval),
                    "batch": s.retention.batch,
                    "dead_families": human(s.retention.dead_families),
                    "audit": human(s.retention.audit),
                },
                "master_key": if s.master_key.is_some() { "REDACTED (from master_key)".to_owned() } else { format!("file {}", s.master_key_file.display()) },
            });
            emit(ctx.output, &effective, || {
                let mut out = String::from("configuration is valid\n");
                if let serde_json::Value::Object(sections) = &effective {
                    for (name, value) in sections {
                        match value {
                            serde_json::Value::Object(keys) => {
                                out.push_str(&format!("\n[{name}]\n"));
                                for (k, v) in keys {
                                    out.push_str(&format!("{k} = {v}\n"));
                                }
                            }
                            other => out.push_str(&format!("\n{name} = {other}\n")),
                        }
                    }
                }
                out.trim_end().to_owned()
            })
        }
    }
}
