use clap::Subcommand;
use serde::Serialize;
use tessera::domain::client::{self, ClientSpec, GrantType};
use tessera::domain::scope::Scope;
use tessera::store::models::Client;

use super::Context;
use crate::output::{emit, rfc3339};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its id and, for a confidential client, its secret (shown once)
    Register {
        /// A name for people
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
}

fn parse_grant(s: &str) -> Result<GrantType, String> {
    s.parse()
}

#[derive(Serialize)]
struct ClientView<'a> {
    client_id: &'a str,
    client_secret: Option<&'a str>,
    name: &'a str,
    public: bool,
    grant_types: Vec<&'a str>,
    scope: &'a str,
    redirect_uris: Vec<&'a str>,
    created_at: String,
    disabled_at: Option<String>,
}

impl<'a> ClientView<'a> {
    fn new(c: &'a Client, secret: Option<&'a str>) -> Self {
        let words = |s: &'a str| s.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>();
        Self {
            client_id: &c.id,
            client_secret: secret,
            name: &c.name,
            public: c.is_public(),
            grant_types: words(&c.grant_types),
            scope: &c.scopes,
            redirect_uris: words(&c.redirect_uris),
            created_at: rfc3339(c.created_at),
            disabled_at: c.disabled_at.map(rfc3339),
        }
    }
}

pub fn run(ctx: &mut Context, cmd: ClientCommand) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Register {
            name,
            public,
            grants,
            scope,
            redirect_uris,
        } => {
            let scope = Scope::parse(&scope).map_err(|e| anyhow::anyhow!("--scope: {e}"))?;
            let redirect_uris = redirect_uris
                .iter()
                .map(|u| url::Url::parse(u).map_err(|e| anyhow::anyhow!("--redirect-uri {u}: {e}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let spec = ClientSpec {
                name,
                public,
                grants,
                scope,
                redirect_uris,
            };
            let (client, secret) = client::register(ctx.conn()?, &spec)?;
            let secret = secret.as_ref().map(|s| s.expose());
            let view = ClientView::new(&client, secret);
            emit(ctx.output, &view, || {
                let mut text = format!("client_id:     {}\n", client.id);
                match secret {
                    Some(s) => text.push_str(&format!(
                        "client_secret: {s}\n\nStore the secret now: it is not shown again."
                    )),
                    None => text.push_str("public client: no secret"),
                }
                text
            })
        }
        ClientCommand::List => {
            let clients = Client::list(ctx.conn()?)?;
            let views: Vec<_> = clients.iter().map(|c| ClientView::new(c, None)).collect();
            emit(ctx.output, &views, || {
                let mut text = format!(
                    "{:<24} {:<24} {:<8} {}",
                    "CLIENT_ID", "NAME", "TYPE", "GRANTS"
                );
                for v in &views {
                    text.push_str(&format!(
                        "\n{:<24} {:<24} {:<8} {}",
                        v.client_id,
                        v.name,
                        if v.public { "public" } else { "secret" },
                        v.grant_types.join(",")
                    ));
                }
                text
            })
        }
    }
}
