use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use tessera::domain::crypto::MasterKey;
use tessera::domain::keys::{self, KeyAlgorithm, KeyError, KeyState};
use tessera::store::models::StoredKey;

use tessera::domain::audit::AuditKind;

use super::{Confirm, Context};
use crate::output::{confirm, emit, rfc3339, Table};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Alg {
    #[value(name = "ES256")]
    Es256,
    #[value(name = "EdDSA")]
    EdDsa,
    /// For the ID tokens of clients registered with --id-token-alg RS256
    #[value(name = "RS256")]
    Rs256,
}

impl From<Alg> for KeyAlgorithm {
    fn from(alg: Alg) -> Self {
        match alg {
            Alg::Es256 => KeyAlgorithm::ES256,
            Alg::EdDsa => KeyAlgorithm::EdDSA,
            Alg::Rs256 => KeyAlgorithm::RS256,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List signing keys and their state (pending, signing, verifying, retired, expired)
    List,
    /// Make a new signing key: published in the JWKS at once, signing after keys.activation_delay
    Rotate {
        /// Sign with it at once (after a key compromise); relying parties that cached the JWKS
        /// reject tokens until they fetch it again
        #[arg(long)]
        now: bool,
        /// Algorithm [default: keys.algorithm]
        #[arg(long, value_enum)]
        algorithm: Option<Alg>,
    },
    /// Retire a key: servers stop signing with it within keys.reload_interval, and it leaves the
    /// JWKS once every token it signed has expired
    Retire {
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// Also when the remaining keys are not active yet
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        confirm: Confirm,
    },
}

/// The JSON shape of a key: public parts only.
#[derive(Serialize)]
struct KeyView {
    kid: String,
    alg: String,
    state: KeyState,
    created_at: String,
    activates_at: String,
    retired_at: Option<String>,
    /// When it leaves the JWKS (retired keys).
    unpublished_at: Option<String>,
}

fn views(ctx: &mut Context) -> anyhow::Result<Vec<KeyView>> {
    let ttl = ctx.settings.key_retention();
    let all = StoredKey::all(ctx.conn()?)?;
    let states = keys::states(&all, ctx.clock.now(), ttl);
    Ok(all
        .iter()
        .zip(states)
        .map(|(k, state)| KeyView {
            kid: k.kid.clone(),
            alg: k.alg.clone(),
            state,
            created_at: rfc3339(k.created_at),
            activates_at: rfc3339(k.activates_at),
            retired_at: k.retired_at.map(rfc3339),
            unpublished_at: k.retired_at.map(|r| rfc3339(r + ttl)),
        })
        .collect())
}

fn state_text(s: KeyState) -> &'static str {
    match s {
        KeyState::Pending => "pending",
        KeyState::Signing => "signing",
        KeyState::Verifying => "verifying",
        KeyState::Retired => "retired",
        KeyState::Expired => "expired",
    }
}

/// The server's master key, refusing one that cannot open the keys already stored (a key
/// sealed under the wrong master key would stop the server).
pub(super) fn master_key(ctx: &mut Context) -> anyhow::Result<MasterKey> {
    let master = ctx.settings.master_key(false)?;
    if let Some(existing) = StoredKey::all(ctx.conn()?)?.first() {
        master
            .open(existing.kid.as_bytes(), &existing.private_key)
            .map_err(|_| {
                anyhow::anyhow!(
                    "the master key does not match the one the server's keys are sealed with"
                )
            })?;
    }
    Ok(master)
}

pub fn run(ctx: &mut Context, cmd: KeyCommand) -> anyhow::Result<()> {
    match cmd {
        KeyCommand::List => list(ctx),
        KeyCommand::Rotate {
            now: immediately,
            algorithm,
        } => rotate(ctx, immediately, algorithm),
        KeyCommand::Retire {
            kid,
            force,
            confirm: c,
        } => retire(ctx, kid, force, c),
    }
}

fn list(ctx: &mut Context) -> anyhow::Result<()> {
    let views = views(ctx)?;
    emit(ctx.output, &views, || {
        let mut t = Table::new(&["KID", "ALG", "STATE", "CREATED", "SIGNS FROM", "RETIRED"]);
        for v in &views {
            t.row(vec![
                v.kid.clone(),
                v.alg.clone(),
                state_text(v.state).to_owned(),
                v.created_at.clone(),
                v.activates_at.clone(),
                v.retired_at.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        t.render()
    })
}

fn rotate(ctx: &mut Context, immediately: bool, algorithm: Option<Alg>) -> anyhow::Result<()> {
    let master = master_key(ctx)?;
    let alg = algorithm.map_or(ctx.settings.keys.algorithm, KeyAlgorithm::from);
    let now = ctx.clock.now();
    let delay = if immediately {
        Duration::ZERO
    } else {
        ctx.settings.keys.activation_delay
    };
    let key = keys::create(ctx.conn()?, &master, alg, now, now + delay)?;
    ctx.audit(
        AuditKind::KeyCreated,
        Some(&key.kid),
        Some(&format!("signs from {}", rfc3339(key.activates_at))),
    )?;
    let view = views(ctx)?.into_iter().find(|v| v.kid == key.kid);
    emit(ctx.output, &view, || {
        format!(
            "new {} key {}: published now, signs from {}",
            key.alg,
            key.kid,
            rfc3339(key.activates_at)
        )
    })
}

fn retire(ctx: &mut Context, kid: String, force: bool, c: Confirm) -> anyhow::Result<()> {
    StoredKey::find(ctx.conn()?, &kid)?
        .ok_or_else(|| anyhow::anyhow!("no signing key with kid {kid}"))?;
    confirm(c.yes, &format!("retire signing key {kid}"))?;
    let now = ctx.clock.now();
    keys::retire(ctx.conn()?, &kid, force, now).map_err(|e| match e {
        // What to do about it, in this command's words.
        KeyError::OnlySigningKey(_) => anyhow::anyhow!("{e}: run `key rotate` first"),
        KeyError::OthersPending(_) => anyhow::anyhow!("{e}; wait, or pass --force"),
        other => other.into(),
    })?;
    ctx.audit(AuditKind::KeyRetired, Some(&kid), None)?;
    let view = views(ctx)?.into_iter().find(|v| v.kid == kid);
    emit(ctx.output, &view, || {
        format!(
            "retired {kid}; it stays in the JWKS until {}",
            view.as_ref()
                .and_then(|v| v.unpublished_at.clone())
                .unwrap_or_default()
        )
    })
}
