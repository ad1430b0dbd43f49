mod audit;
mod client;
mod doctor;
mod family;
mod incident;
mod key;
mod prune;
mod resource;
mod system;
mod user;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use tessera::domain::Clock;
use tessera::settings::Settings;
use tessera::store::{self, AnyConnection, PooledConn};
use tessera::value::{ClientId, UserId};

use crate::output::Format;

/// Administer a Tessera OAuth2 server: clients, users, token families, reuse incidents,
/// signing keys and resource servers.
///
/// Reads the same configuration as the server (defaults, then the config file, then
/// TESSERA_<SECTION>__<KEY> variables) and works directly on its database: changes apply to a
/// running server at once.
#[derive(Debug, Parser)]
#[command(name = "tessera-admin", version)]
pub struct Cli {
    /// Configuration file [default: ./tessera.toml if present]
    #[arg(long, global = true, env = "TESSERA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL (postgres://… or sqlite://…); overrides database.url
    #[arg(
        long,
        global = true,
        env = "TESSERA_DATABASE__URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Output format; json prints one JSON document on stdout and nothing else
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register and manage OAuth2 clients
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Create and manage users
    #[command(subcommand)]
    User(user::UserCommand),
    /// Inspect and revoke refresh-token families
    #[command(subcommand)]
    Family(family::FamilyCommand),
    /// Inspect refresh-token reuse incidents
    #[command(subcommand)]
    Incident(incident::IncidentCommand),
    /// Rotate and retire signing keys
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Register resource servers: the audiences (RFC 8707) access tokens may be requested for
    #[command(subcommand)]
    Resource(resource::ResourceCommand),
    /// Security events: sign-ins, throttling, reuse, revocations, administrative changes
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Delete what retention no longer keeps (the server does it every retention.interval)
    Prune {
        /// Only count what would be deleted
        #[arg(long)]
        dry_run: bool,
    },
    /// Check the configuration and the clients against RFC 9700 and Tessera's rules; each
    /// finding with its severity, the rule, and the command that fixes it. Exits 1 on an error
    Doctor {
        /// Exit 1 on warnings too
        #[arg(long)]
        strict: bool,
        /// A client that got no token for this long is reported
        #[arg(long, value_name = "DURATION", default_value = "90d", value_parser = parse_duration)]
        unused_after: std::time::Duration,
        /// How many server instances share the database, for the connection check
        #[arg(long, value_name = "N", default_value_t = 1)]
        instances: u32,
    },
    /// Apply database migrations without starting the server
    Migrate,
    /// Check the configuration
    #[command(subcommand)]
    Config(system::ConfigCommand),
    /// Print a shell completion script
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `--yes` for commands that destroy or revoke.
#[derive(Debug, Args)]
pub struct Confirm {
    /// Do not ask for confirmation (required when there is no terminal to ask on)
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// What every command gets: settings, a connection, the output format.
pub struct Context {
    pub settings: Settings,
    pub output: Format,
    /// Where every command reads "now".
    pub clock: Clock,
    conn: Option<PooledConn>,
}

impl Context {
    /// Records an administrative change in the audit log.
    pub fn audit(
        &mut self,
        kind: tessera::domain::audit::AuditKind,
        subject: Option<&str>,
        detail: Option<&str>,
    ) -> anyhow::Result<()> {
        let now = self.clock.now();
        let actor = tessera::domain::audit::admin_actor();
        tessera::domain::audit::Event {
            kind,
            actor: Some(&actor),
            subject,
            client_ip: None,
            detail,
            request: None,
        }
        .record(self.conn()?, now);
        Ok(())
    }

    pub fn conn(&mut self) -> anyhow::Result<&mut AnyConnection> {
        if self.conn.is_none() {
            let db = &self.settings.database;
            let options = store::Options {
                pool_size: 1,
                ..db.options()
            };
            let (pool, _) = store::open(db.url.expose(), &options, store::Schema::RequireCurrent)?;
            self.conn = Some(pool.get().context("database unreachable")?);
        }
        match self.conn.as_mut() {
            Some(conn) => Ok(&mut **conn),
            None => anyhow::bail!("database unreachable"),
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let Cli {
        config,
        database_url,
        output,
        command,
    } = cli;
    // Every command but `completions` reads the configuration.
    let context = || -> anyhow::Result<Context> {
        let mut env: Vec<(String, String)> = std::env::vars().collect();
        if let Some(url) = &database_url {
            env.retain(|(k, _)| k != "TESSERA_DATABASE__URL");
            env.push(("TESSERA_DATABASE__URL".into(), url.clone()));
        }
        Ok(Context {
            settings: Settings::load_from(config.as_deref(), env)?,
            output,
            clock: Clock::system(),
            conn: None,
        })
    };
    match command {
        Command::Client(cmd) => client::run(&mut context()?, cmd),
        Command::User(cmd) => user::run(&mut context()?, cmd),
        Command::Family(cmd) => family::run(&mut context()?, cmd),
        Command::Incident(cmd) => incident::run(&mut context()?, cmd),
        Command::Key(cmd) => key::run(&mut context()?, cmd),
        Command::Resource(cmd) => resource::run(&mut context()?, cmd),
        Command::Audit(cmd) => audit::run(&mut context()?, cmd),
        Command::Prune { dry_run } => prune::run(&mut context()?, dry_run),
        Command::Doctor {
            strict,
            unused_after,
            instances,
        } => doctor::run(&mut context()?, strict, unused_after, instances),
        Command::Migrate => system::migrate(&context()?),
        Command::Config(cmd) => system::config(&context()?, cmd),
        Command::Completions { shell } => system::completions(shell),
    }
}

/// Parses a duration such as `15m` or `7d`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration ({e}); use e.g. 30m, 7d"))
}

/// Resolves `--user NAME` to the user's id and checks that `--client ID` exists, so that a
/// filter naming nobody is an error rather than an empty list.
pub fn check_filters(
    conn: &mut AnyConnection,
    user: Option<&str>,
    client: Option<&ClientId>,
) -> anyhow::Result<Option<UserId>> {
    if let Some(id) = client {
        tessera::domain::client::get(conn, id)?
            .ok_or_else(|| anyhow::anyhow!("no client with id {id}"))?;
    }
    Ok(match user {
        Some(name) => Some(tessera::domain::user::by_name(conn, name)?.id),
        None => None,
    })
}
