use clap::Subcommand;
use serde::Serialize;
use tessera::domain::client::{
    self, AppOptions, Client, ClientError, ClientSpec, ClientUpdate, GrantType, OpenIdOptions,
};
use tessera::domain::keys::{self, KeyAlgorithm};
use tessera::domain::origin::Origin;
use tessera::domain::scope::Scope;
use tessera::settings::compact_duration;
use tessera::value::ClientId;

use tessera::domain::audit::AuditKind;

use super::key::Alg;
use super::{Confirm, Context};
use crate::output::{confirm, emit, rfc3339, Table};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its id and, for a confidential client, its secret (shown once)
    Register(RegisterArgs),
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

/// `client register`'s arguments.
#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
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
    /// Space-separated scopes the client may request, e.g. "openid profile orders:read"
    #[arg(long, default_value = "")]
    scope: String,
    /// A redirect URI for browser sign-in (repeat for several); matched exactly
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// OpenID Connect: sign its ID tokens with ES256, EdDSA or RS256 (an RS256 key is made
    /// if there is none) [default: the access tokens' key]
    #[arg(long, value_name = "ALG", value_enum)]
    id_token_alg: Option<Alg>,
    /// OpenID Connect: where logout may send the user back (repeat for several); matched exactly
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    post_logout_redirect_uris: Vec<String>,
    /// OpenID Connect: where logout tokens are POSTed whenever a sign-in of this client ends
    #[arg(long, value_name = "URI")]
    backchannel_logout_uri: Option<String>,
    /// Its logout tokens must carry the session id (sid)
    #[arg(long, requires = "backchannel_logout_uri")]
    backchannel_logout_session_required: bool,
    /// A browser app: a web origin whose scripts may call the token, revocation and userinfo
    /// endpoints for it (CORS; repeat for several), e.g. https://app.example.com
    #[arg(long = "allowed-origin", value_name = "ORIGIN", value_parser = parse_origin)]
    allowed_origins: Vec<Origin>,
    /// Cap its refresh tokens' absolute lifetime below the server's, e.g. 1d
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    refresh_absolute_ttl: Option<std::time::Duration>,
    /// Refuse its token requests without a DPoP proof: every token it gets is bound to its key
    #[arg(long)]
    require_dpop: bool,
    /// Its users must sign in with a second factor (a passkey, or a password and a code): the
    /// password grant is refused for it
    #[arg(long)]
    require_second_factor: bool,
}

fn parse_origin(s: &str) -> Result<Origin, String> {
    Origin::parse(s)
}

/// `--refresh-absolute-ttl` of `client update`: a duration, or `default` for the server's.
#[derive(Debug, Clone, Copy)]
pub struct RefreshTtl(Option<std::time::Duration>);

fn parse_ttl_or_default(s: &str) -> Result<RefreshTtl, String> {
    match s {
        "default" => Ok(RefreshTtl(None)),
        other => super::parse_duration(other).map(|d| RefreshTtl(Some(d))),
    }
}

fn parse_grant(s: &str) -> Result<GrantType, String> {
    s.parse()
}

fn parse_scope(s: &str) -> anyhow::Result<Scope> {
    Scope::parse(s).map_err(|e| anyhow::anyhow!("--scope: {e}"))
}

fn parse_uris(uris: &[String]) -> anyhow::Result<Vec<url::Url>> {
    parse_uris_of("--redirect-uri", uris)
}

fn parse_uris_of(flag: &str, uris: &[String]) -> anyhow::Result<Vec<url::Url>> {
    uris.iter()
        .map(|u| url::Url::parse(u).map_err(|e| anyhow::anyhow!("{flag} {u}: {e}")))
        .collect()
}

/// `--id-token-alg` of `client update`: an algorithm, or `default` for the access tokens' key.
#[derive(Debug, Clone, Copy)]
pub enum IdTokenAlg {
    Default,
    Alg(KeyAlgorithm),
}

fn parse_id_token_alg(s: &str) -> Result<IdTokenAlg, String> {
    match s {
        "default" => Ok(IdTokenAlg::Default),
        other => KeyAlgorithm::parse(other)
            .map(IdTokenAlg::Alg)
            .ok_or_else(|| format!("`{other}`: expected ES256, EdDSA, RS256 or default")),
    }
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
    /// OpenID Connect: sign its ID tokens with ES256, EdDSA, RS256, or `default` (the access
    /// tokens' key)
    #[arg(long, value_name = "ALG", value_parser = parse_id_token_alg)]
    pub id_token_alg: Option<IdTokenAlg>,
    /// Replaces the post-logout redirect URIs (repeat for several)
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    pub post_logout_redirect_uris: Vec<String>,
    /// Where logout tokens are POSTed
    #[arg(long, value_name = "URI", conflicts_with = "no_backchannel_logout")]
    pub backchannel_logout_uri: Option<String>,
    /// Stop back-channel logout for this client
    #[arg(long)]
    pub no_backchannel_logout: bool,
    /// Whether its logout tokens must carry the session id (sid)
    #[arg(long, value_name = "BOOL")]
    pub backchannel_logout_session_required: Option<bool>,
    /// Replaces the allowed web origins (repeat for several)
    #[arg(long = "allowed-origin", value_name = "ORIGIN", value_parser = parse_origin,
          conflicts_with = "no_allowed_origins")]
    pub allowed_origins: Vec<Origin>,
    /// Remove every allowed origin: no more calls from browser scripts
    #[arg(long)]
    pub no_allowed_origins: bool,
    /// Cap its refresh tokens' absolute lifetime (e.g. 1d), or `default` for the server's;
    /// families already started keep theirs
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl_or_default)]
    pub refresh_absolute_ttl: Option<RefreshTtl>,
    /// Whether its token requests must carry a DPoP proof
    #[arg(long, value_name = "BOOL")]
    pub require_dpop: Option<bool>,
    /// Whether its users must sign in with a second factor
    #[arg(long, value_name = "BOOL")]
    pub require_second_factor: Option<bool>,
}

/// The JSON shape of a client.
#[derive(Serialize)]
struct ClientView<'a> {
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<Option<&'a str>>,
    /// After `client update --refresh-absolute-ttl`: the families it ended sooner.
    #[serde(skip_serializing_if = "Option::is_none")]
    shortened_families: Option<usize>,
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
    id_token_alg: Option<&'static str>,
    post_logout_redirect_uris: Vec<&'a str>,
    backchannel_logout_uri: Option<&'a str>,
    backchannel_logout_session_required: bool,
    allowed_origins: Vec<&'a str>,
    /// e.g. `1d`; `None`: the server's.
    refresh_absolute_ttl: Option<String>,
    require_dpop: bool,
    require_second_factor: bool,
}

impl<'a> ClientView<'a> {
    fn new(c: &'a Client) -> Self {
        Self {
            client_id: c.id.as_str(),
            client_secret: None,
            narrowed_families: None,
            shortened_families: None,
            name: &c.name,
            public: c.is_public(),
            grant_types: c.grants.iter().map(|g| g.as_str()).collect(),
            scope: c.scope.to_string(),
            redirect_uris: c.redirect_uris.iter().map(url::Url::as_str).collect(),
            created_at: rfc3339(c.created_at),
            disabled_at: c.disabled_at.map(rfc3339),
            allow_introspection: c.allow_introspection,
            id_token_alg: c.openid.id_token_alg.map(KeyAlgorithm::as_str),
            post_logout_redirect_uris: c
                .openid
                .post_logout_redirect_uris
                .iter()
                .map(url::Url::as_str)
                .collect(),
            backchannel_logout_uri: c
                .openid
                .backchannel_logout_uri
                .as_ref()
                .map(url::Url::as_str),
            backchannel_logout_session_required: c.openid.backchannel_logout_session_required,
            allowed_origins: c.app.allowed_origins.iter().map(Origin::as_str).collect(),
            refresh_absolute_ttl: c.app.refresh_absolute_ttl.map(compact_duration),
            require_dpop: c.app.require_dpop,
            require_second_factor: c.app.require_second_factor,
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
        if let Some(alg) = self.id_token_alg {
            t.push_str(&format!("\nid_token_alg   {alg}"));
        }
        if !self.post_logout_redirect_uris.is_empty() {
            t.push_str(&format!(
                "\npost_logout    {}",
                self.post_logout_redirect_uris.join(" ")
            ));
        }
        if let Some(uri) = self.backchannel_logout_uri {
            let sid = if self.backchannel_logout_session_required {
                " (sid required)"
            } else {
                ""
            };
            t.push_str(&format!("\nbackchannel    {uri}{sid}"));
        }
        if !self.allowed_origins.is_empty() {
            t.push_str(&format!(
                "\norigins        {}",
                self.allowed_origins.join(" ")
            ));
        }
        if let Some(ttl) = &self.refresh_absolute_ttl {
            t.push_str(&format!("\nrefresh_ttl    {ttl} at most"));
        }
        if self.require_dpop {
            t.push_str("\ndpop           required: every token is bound to the app's key");
        }
        if self.require_second_factor {
            t.push_str("\nsecond_factor  required: a passkey, or a password and a code");
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
        ClientCommand::Register(args) => register(ctx, args),
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

fn register(ctx: &mut Context, args: RegisterArgs) -> anyhow::Result<()> {
    let clock = ctx.clock.clone();
    let openid = OpenIdOptions {
        id_token_alg: args.id_token_alg.map(KeyAlgorithm::from),
        post_logout_redirect_uris: parse_uris_of(
            "--post-logout-redirect-uri",
            &args.post_logout_redirect_uris,
        )?,
        backchannel_logout_uri: args
            .backchannel_logout_uri
            .as_deref()
            .map(|u| parse_uris_of("--backchannel-logout-uri", &[u.to_owned()]))
            .transpose()?
            .and_then(|mut u| u.pop()),
        backchannel_logout_session_required: args.backchannel_logout_session_required,
    };
    let spec = ClientSpec {
        name: args.name,
        public: args.public,
        grants: args.grants,
        scope: parse_scope(&args.scope)?,
        redirect_uris: parse_uris(&args.redirect_uris)?,
        openid,
        app: AppOptions {
            allowed_origins: args.allowed_origins,
            refresh_absolute_ttl: args.refresh_absolute_ttl,
            require_dpop: args.require_dpop,
            require_second_factor: args.require_second_factor,
        },
    };
    if let Some(alg) = spec.openid.id_token_alg {
        ensure_key(ctx, alg)?;
    }
    if let Some(ttl) = spec.app.refresh_absolute_ttl {
        warn_longer_than_server(ctx, ttl);
    }
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

/// A client's refresh lifetime only shortens the server's: says so when it would not.
fn warn_longer_than_server(ctx: &Context, ttl: std::time::Duration) {
    let server = ctx.settings.tokens.refresh_absolute_ttl;
    if ttl >= server {
        eprintln!(
            "note: --refresh-absolute-ttl {} is not shorter than the server's tokens.refresh_absolute_ttl ({}): the server's applies",
            compact_duration(ttl),
            compact_duration(server)
        );
    }
}

/// Makes sure a key of `alg` is in force for a client's ID tokens; says so when one is made.
fn ensure_key(ctx: &mut Context, alg: KeyAlgorithm) -> anyhow::Result<()> {
    let master = super::key::master_key(ctx)?;
    let now = ctx.clock.now();
    if let Some(key) = keys::ensure(ctx.conn()?, &master, alg, now)? {
        ctx.audit(AuditKind::KeyCreated, Some(&key.kid), Some("for ID tokens"))?;
        eprintln!(
            "made a new {} signing key {} for ID tokens",
            key.alg, key.kid
        );
    }
    Ok(())
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
        id_token_alg,
        post_logout_redirect_uris,
        backchannel_logout_uri,
        no_backchannel_logout,
        backchannel_logout_session_required,
        allowed_origins,
        no_allowed_origins,
        refresh_absolute_ttl,
        require_dpop,
        require_second_factor,
    } = args;
    if let Some(IdTokenAlg::Alg(alg)) = id_token_alg {
        ensure_key(ctx, alg)?;
    }
    let backchannel_logout_uri = match (backchannel_logout_uri, no_backchannel_logout) {
        (Some(u), _) => Some(parse_uris_of("--backchannel-logout-uri", &[u])?.pop()),
        (None, true) => Some(None),
        (None, false) => None,
    };
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
        id_token_alg: id_token_alg.map(|a| match a {
            IdTokenAlg::Default => None,
            IdTokenAlg::Alg(alg) => Some(alg),
        }),
        post_logout_redirect_uris: (!post_logout_redirect_uris.is_empty())
            .then(|| parse_uris_of("--post-logout-redirect-uri", &post_logout_redirect_uris))
            .transpose()?,
        backchannel_logout_uri,
        backchannel_logout_session_required,
        allowed_origins: (no_allowed_origins || !allowed_origins.is_empty())
            .then_some(allowed_origins),
        refresh_absolute_ttl: refresh_absolute_ttl.map(|t| t.0),
        require_dpop,
        require_second_factor,
    };
    if let Some(Some(ttl)) = update.refresh_absolute_ttl {
        warn_longer_than_server(ctx, ttl);
    }
    let updated = client::update(ctx.conn()?, &client_id, &update).map_err(hint)?;
    let narrowed = updated.narrowed_families;
    let shortened = updated.shortened_families;
    let detail = [
        (narrowed > 0).then(|| format!("{narrowed} families narrowed")),
        (shortened > 0).then(|| format!("{shortened} families shortened")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    let detail = (!detail.is_empty()).then(|| detail.join(", "));
    ctx.audit(
        AuditKind::ClientUpdated,
        Some(client_id.as_str()),
        detail.as_deref(),
    )?;
    let mut view = ClientView::new(&updated.client);
    view.narrowed_families = update.scope.is_some().then_some(narrowed);
    view.shortened_families =
        matches!(update.refresh_absolute_ttl, Some(Some(_))).then_some(shortened);
    emit(ctx.output, &view, || {
        let mut text = view.text();
        if let Some(n) = view.narrowed_families {
            text.push_str(&format!(
                "\n\nnarrowed the scope of {n} token families to what the client may still ask for"
            ));
        }
        if let Some(n) = view.shortened_families {
            text.push_str(&format!(
                "\n\nshortened {n} token families to the new refresh lifetime"
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
            "{e}: give --name, --grant, --scope, --redirect-uri, --allowed-origin, --refresh-absolute-ttl or another option (see --help)"
        ),
        ClientError::HasActiveFamilies { .. } => {
            anyhow::anyhow!("{e}: revoke them first, or pass --revoke-families")
        }
        other => other.into(),
    }
}
