use clap::{ArgGroup, Subcommand};
use serde::Serialize;
use tessera::domain::now_ms;
use tessera::store::models::{Client, TokenFamily, User};

use super::Context;
use crate::output::emit;

#[derive(Debug, Subcommand)]
pub enum FamilyCommand {
    /// Revoke one family, or every active family of a user or of a client. Their refresh
    /// tokens stop working at once; access tokens already issued stop working at /userinfo.
    #[command(group(ArgGroup::new("target").required(true).args(["family_id", "user", "client"])))]
    Revoke {
        /// The family id (the access token's `sid` claim)
        family_id: Option<String>,
        /// Revoke every active family of this username
        #[arg(long, value_name = "USERNAME")]
        user: Option<String>,
        /// Revoke every active family of this client id
        #[arg(long, value_name = "CLIENT_ID")]
        client: Option<String>,
        /// Recorded as the families' revoked_reason
        #[arg(long, default_value = "revoked_by_admin")]
        reason: String,
    },
}

#[derive(Serialize)]
struct Revoked {
    revoked: usize,
}

pub fn run(ctx: &mut Context, cmd: FamilyCommand) -> anyhow::Result<()> {
    match cmd {
        FamilyCommand::Revoke {
            family_id,
            user,
            client,
            reason,
        } => {
            let conn = ctx.conn()?;
            let now = now_ms();
            let revoked = if let Some(id) = family_id {
                let family = TokenFamily::find(conn, &id)?
                    .ok_or_else(|| anyhow::anyhow!("no token family with id {id}"))?;
                usize::from(TokenFamily::revoke(conn, &family.id, &reason, now)?)
            } else if let Some(name) = user {
                let user = User::find_by_username(conn, &name)?
                    .ok_or_else(|| anyhow::anyhow!("no user named {name}"))?;
                TokenFamily::revoke_where(conn, Some(&user.id), None, &reason, now)?
            } else if let Some(id) = client {
                let client = Client::find(conn, &id)?
                    .ok_or_else(|| anyhow::anyhow!("no client with id {id}"))?;
                TokenFamily::revoke_where(conn, None, Some(&client.id), &reason, now)?
            } else {
                anyhow::bail!("give a family id, --user or --client");
            };
            emit(ctx.output, &Revoked { revoked }, || {
                format!("revoked {revoked} token families")
            })
        }
    }
}
