use clap::Subcommand;
use serde::Serialize;
use tessera::domain::client::{self, Client, ClientError, ClientSpec, ClientUpdate, GrantType};
use tessera::domain::scope::Scope;
use tessera::value::ClientId;

use tessera::domain::audit::AuditKind;

use super::{Confirm, Context};
use crate::output::{confirm, emit, rfc3339, Table};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its id and, for a confidential client, its secret (shown once)
    Register {
        /// A name for people (shown on consent pages)
        #[arg(long)]
        name: String,
        /// A public client (mobile or single-page app): no secret
        #[arg(long)]
        public: bool,
        /// A grant the client may use (repeat for several): password, refresh_token,
        /// authorization_code, client_credentials
        #[arg(long = "grant", value_name = "GRANT", required = true, value_parser = parse_grant)]
        grants: Vec<GrantType>,
        /// Space-separated scopes the client may request, e.g. "profile orders:read"
        #[arg(long, default_value = "")]
        scope: String,
        /// A redirect URI for browser sign-in (repeat for several); matched exactly
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
    },
    /// List clients
    List,
    /// Show one client
    Show {
        #[arg(allow_hyphen_values = true)]
        client_id: ClientId,
    },
    /// Change a client's name, grants, scopes or redirect URIs (each replaces the current list)
    Update(UpdateArgs),
    /// Issue a new secret; the old one stops working at once
    RotateSecret {
        #[arg(allow_hyphen_values = true)]
        client_id: ClientId,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// Disable a client: it can no longer authenticate (its families are kept)
    Disable {
        #[arg(allow_hyphen_values = true)]
        client_id: ClientId,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// Enable a disabled client
    Enable {
        #[arg(allow_hyphen_values = true)]
        client_id: ClientId,
    },
    /// Delete a client with its token families and incidents
    Delete {
        #[arg(allow_hyphen_values = true)]
        client_id: ClientId,
        /// Also when it has active token families (they are revoked with it)
        #[arg(long)]
        revoke_families: bool,
        #[command(flatten)]
        confirm: Confirm,
    },
}

fn parse_grant(s: &str) -> Result<GrantType, String> {
    s.parse()
}

fn parse_scope(s: &str) -> anyhow::Result<Scope> {
    Scope::parse(s).map_err(|e| anyhow::anyhow!("--scope: {e}"))
}

fn parse_uris(uris: &[String]) -> anyhow::Result<Vec<url::Url>> {
    uris.iter()
        .map(|u| url::Url::parse(u).map_err(|e| anyhow::anyhow!("--redirect-uri {u}: {e}")))
        .collect()
}

/// `client update`'s arguments.
#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    #[arg(allow_hyphen_values = true)]
    pub client_id: ClientId,
    #[arg(long)]
    pub name: Option<String>,
    /// Replaces the allowed grants (repeat for several)
    #[arg(long = "grant", value_name = "GRANT", value_parser = parse_grant)]
    pub grants: Vec<GrantType>,
    /// Replaces the allowed scopes
    #[arg(long)]
    pub scope: Option<String>,
    /// Replaces the redirect URIs (repeat for several)
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    /// Let this client (a resource server) introspect tokens issued to other clients
    #[arg(long, conflicts_with = "deny_introspection")]
    pub allow_introspection: bool,
    /// Take that right away again
    #[arg(long)]
    pub deny_introspection: bool,
}

/// The JSON shape of a client.
#[derive(Serialize)]
struct ClientView<'a> {
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<Option<&'a str>>,
    /// After `client update --scope`: the families whose scope it narrowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    narrowed_families: Option<usize>,
    name: &'a str,
    public: bool,
    grant_types: Vec<&'static str>,
    scope: String,
    redirect_uris: Vec<&'a str>,
    created_at: String,
    disabled_at: Option<String>,
    allow_introspection: bool,
}

impl<'a> ClientView<'a> {
    fn new(c: &'a Client) -> Self {
        Self {
            client_id: c.id.as_str(),
            client_secret: None,
            narrowed_families: None,
            name: &c.name,
            public: c.is_public(),
            grant_types: c.grants.iter().map(|g| g.as_str()).collect(),
            scope: c.scope.to_string(),
            redirect_uris: c.redirect_uris.iter().map(url::Url::as_str).collect(),
            created_at: rfc3339(c.created_at),
            disabled_at: c.disabled_at.map(rfc3339),
            allow_introspection: c.allow_introspection,
        }
    }

    fn text(&self) -> String {
        let mut t = format!(
            "client_id      {}\nname           {}\ntype           {}\ngrant_types    {}\nscope          {}\nredirect_uris  {}\ncreated_at     {}\nstate          {}",
            self.client_id,
            self.name,
            if self.public { "public" } else { "confidential" },
            self.grant_types.join(" "),
            self.scope,
            self.redirect_uris.join(" "),
            self.created_at,
            self.disabled_at.as_ref().map_or_else(|| "enabled".to_owned(), |d| format!("disabled since {d}")),
        );
        if self.allow_introspection {
            t.push_str("\nintrospection  may introspect other clients' access tokens");
        }
        if let Some(Some(secret)) = self.client_secret {
            t.push_str(&format!(
                "\nclient_secret  {secret}\n\nStore the secret now: it is not shown again."
            ));
        }
        t
    }
}

fn show(ctx: &Context, client: &Client, secret: Option<Option<&str>>) -> anyhow::Result<()> {
    let mut view = ClientView::new(client);
    view.client_secret = secret;
    emit(ctx.output, &view, || view.text())
}

pub fn run(ctx: &mut Context, cmd: ClientCommand) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Register {
            name,
            public,
            grants,
            scope,
            redirect_uris,
        } => register(ctx, name, public, grants, scope, redirect_uris),
        ClientCommand::List => list(ctx),
        ClientCommand::Show { client_id } => show_one(ctx, client_id),
        ClientCommand::Update(args) => update(ctx, args),
        ClientCommand::RotateSecret {
            client_id,
            confirm: c,
        } => rotate_secret(ctx, client_id, c),
        ClientCommand::Disable {
            client_id,
            confirm: c,
        } => disable(ctx, client_id, c),
        ClientCommand::Enable { client_id } => enable(ctx, client_id),
        ClientCommand::Delete {
            client_id,
            revoke_families,
            confirm: c,
        } => delete(ctx, client_id, revoke_families, c),
    }
}

fn register(
    ctx: &mut Context,
    name: String,
    public: bool,
    grants: Vec<GrantType>,
    scope: String,
    redirect_uris: Vec<String>,
) -> anyhow::Result<()> {
    let clock = ctx.clock.clone();
    let spec = ClientSpec {
        name,
        public,
        grants,
        scope: parse_scope(&scope)?,
        redirect_uris: parse_uris(&redirect_uris)?,
    };
    let (client, secret) = client::register(ctx.conn()?, &spec, &clock).map_err(hint)?;
    ctx.audit(
        AuditKind::ClientRegistered,
        Some(client.id.as_str()),
        Some(&client.name),
    )?;
    show(ctx, &client, Some(secret.as_ref().map(|s| s.expose())))
}

fn list(ctx: &mut Context) -> anyhow::Result<()> {
    let clients = client::list(ctx.conn()?)?;
    let views: Vec<_> = clients.iter().map(ClientView::new).collect();
    emit(ctx.output, &views, || {
        let mut t = Table::new(&["CLIENT_ID", "NAME", "TYPE", "STATE", "GRANTS", "SCOPE"]);
        for v in &views {
            t.row(vec![
                v.client_id.to_owned(),
                v.name.to_owned(),
                (if v.public { "public" } else { "confidential" }).to_owned(),
                (if v.disabled_at.is_some() {
                    "disabled"
                } else {
                    "enabled"
                })
                .to_owned(),
                v.grant_types.join(","),
                v.scope.to_owned(),
            ]);
        }
        t.render()
    })
}

fn show_one(ctx: &mut Context, client_id: ClientId) -> anyhow::Result<()> {
    let client = client::get(ctx.conn()?, &client_id)?
        .ok_or_else(|| anyhow::anyhow!("no client with id {client_id}"))?;
    show(ctx, &client, None)
}

fn update(ctx: &mut Context, args: UpdateArgs) -> anyhow::Result<()> {
    let UpdateArgs {
        client_id,
        name,
        grants,
        scope,
        redirect_uris,
        allow_introspection,
        deny_introspection,
    } = args;
    let update = ClientUpdate {
        name,
        grants: (!grants.is_empty()).then_some(grants),
        scope: scope.as_deref().map(parse_scope).transpose()?,
        redirect_uris: (!redirect_uris.is_empty())
            .then(|| parse_uris(&redirect_uris))
            .transpose()?,
        allow_introspection: match (allow_introspection, deny_introspection) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
    };
    let updated = client::update(ctx.conn()?, &client_id, &update).map_err(hint)?;
    let narrowed = updated.narrowed_families;
    let detail = (narrowed > 0).then(|| format!("{narrowed} families narrowed"));
    ctx.audit(
        AuditKind::ClientUpdated,
        Some(client_id.as_str()),
        detail.as_deref(),
    )?;
    let mut view = ClientView::new(&updated.client);
    view.narrowed_families = update.scope.is_some().then_some(narrowed);
    emit(ctx.output, &view, || {
        let mut text = view.text();
        if let Some(n) = view.narrowed_families {
            text.push_str(&format!(
                "\n\nnarrowed the scope of {n} token families to what the client may still ask for"
            ));
        }
        text
    })
}

fn rotate_secret(ctx: &mut Context, client_id: ClientId, c: Confirm) -> anyhow::Result<()> {
    confirm(
        c.yes,
        &format!("replace the secret of client {client_id} (the old one stops working at once)"),
    )?;
    let secret = client::rotate_secret(ctx.conn()?, &client_id)?;
    ctx.audit(
        AuditKind::ClientSecretRotated,
        Some(client_id.as_str()),
        None,
    )?;
    let client = client::get(ctx.conn()?, &client_id)?
        .ok_or_else(|| anyhow::anyhow!("no client with id {client_id}"))?;
    show(ctx, &client, Some(Some(secret.expose())))
}

fn disable(ctx: &mut Context, client_id: ClientId, c: Confirm) -> anyhow::Result<()> {
    let clock = ctx.clock.clone();
    confirm(c.yes, &format!("disable client {client_id}"))?;
    let client = client::set_disabled(ctx.conn()?, &client_id, true, &clock)?;
    ctx.audit(AuditKind::ClientDisabled, Some(client_id.as_str()), None)?;
    show(ctx, &client, None)
}

fn enable(ctx: &mut Context, client_id: ClientId) -> anyhow::Result<()> {
    let clock = ctx.clock.clone();
    let client = client::set_disabled(ctx.conn()?, &client_id, false, &clock)?;
    ctx.audit(AuditKind::ClientEnabled, Some(client_id.as_str()), None)?;
    show(ctx, &client, None)
}

fn delete(
    ctx: &mut Context,
    client_id: ClientId,
    revoke_families: bool,
    c: Confirm,
) -> anyhow::Result<()> {
    let clock = ctx.clock.clone();
    client::get(ctx.conn()?, &client_id)?
        .ok_or_else(|| anyhow::anyhow!("no client with id {client_id}"))?;
    confirm(
        c.yes,
        &format!("delete client {client_id} with its token families"),
    )?;
    let revoked = client::delete(ctx.conn()?, &client_id, revoke_families, &clock).map_err(hint)?;
    ctx.audit(
        AuditKind::ClientDeleted,
        Some(client_id.as_str()),
        Some(&format!("{revoked} active families revoked")),
    )?;
    #[derive(Serialize)]
    struct Deleted<'a> {
        deleted: &'a str,
        revoked_families: i64,
    }
    emit(
        ctx.output,
        &Deleted {
            deleted: client_id.as_str(),
            revoked_families: revoked,
        },
        || format!("deleted client {client_id} ({revoked} active token families revoked)"),
    )
}

/// A refusal from the domain, with what to do about it in this command's words.
fn hint(e: ClientError) -> anyhow::Error {
    match e {
        ClientError::NoGrants => anyhow::anyhow!("{e}: give at least one --grant"),
        ClientError::NothingToChange => anyhow::anyhow!(
            "{e}: give --name, --grant, --scope, --redirect-uri or --allow-introspection"
        ),
        ClientError::HasActiveFamilies { .. } => {
            anyhow::anyhow!("{e}: revoke them first, or pass --revoke-families")
        }
        other => other.into(),
    }
}
