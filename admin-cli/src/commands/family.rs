use std::collections::HashMap;

use clap::{ArgGroup, Subcommand};
use serde::Serialize;
use tessera::domain::audit::AuditKind;
use tessera::domain::family::TokenState;
use tessera::domain::resource::Targets;
use tessera::domain::retention;
use tessera::domain::revocation::{self, Families, Revocation};
use tessera::domain::user;
use tessera::domain::{client, family};
use tessera::store::models::{
    AuditEvent, FamilyFilter, LogoutNotice, RefreshToken, ReuseIncident, TokenFamily, User,
};
use tessera::store::AnyConnection;
use tessera::value::{Amr, ClientId, FamilyId, TokenId, UnixMs, UserId};

use super::{Confirm, Context};
use crate::output::lineage::{
    tree, FamilyView, IncidentView, Lineage, NoticeView, RetryView, TokenView,
};
use crate::output::{confirm, emit, rfc3339, Table};

#[derive(Debug, Subcommand)]
pub enum FamilyCommand {
    /// List token families, newest first
    #[command(group(ArgGroup::new("state").args(["active", "revoked"])))]
    List {
        /// Only this user's (username)
        #[arg(long, value_name = "USERNAME")]
        user: Option<String>,
        /// Only this client's
        #[arg(long, value_name = "CLIENT_ID")]
        client: Option<ClientId>,
        /// Only families that still work
        #[arg(long)]
        active: bool,
        /// Only revoked families
        #[arg(long)]
        revoked: bool,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Show a family's lineage: every refresh token, who used it, and the reuse incident
    /// that revoked the family, if any
    Show {
        /// The family id (the access token's `sid` claim)
        #[arg(allow_hyphen_values = true)]
        family_id: FamilyId,
    },
    /// Revoke one family, or every active family of a user or of a client. Their refresh
    /// tokens stop working at once, and so do their access tokens at /userinfo.
    #[command(group(ArgGroup::new("target").required(true).args(["family_id", "user", "client"])))]
    Revoke {
        #[arg(allow_hyphen_values = true)]
        family_id: Option<FamilyId>,
        /// Every active family of this username
        #[arg(long, value_name = "USERNAME")]
        user: Option<String>,
        /// Every active family of this client id
        #[arg(long, value_name = "CLIENT_ID")]
        client: Option<ClientId>,
        /// Recorded as the families' revoked_reason
        #[arg(long, default_value = revocation::REVOKED_BY_ADMIN)]
        reason: String,
        #[command(flatten)]
        confirm: Confirm,
    },
}

struct Names {
    users: HashMap<UserId, String>,
    clients: HashMap<ClientId, String>,
}

impl Names {
    fn load(conn: &mut AnyConnection) -> anyhow::Result<Self> {
        Ok(Self {
            users: User::list(conn)?
                .into_iter()
                .map(|u| (u.id, u.username))
                .collect(),
            clients: client::list(conn)?
                .into_iter()
                .map(|c| (c.id, c.name))
                .collect(),
        })
    }

    fn family(&self, f: &TokenFamily, live: bool, now: UnixMs) -> FamilyView {
        FamilyView {
            id: f.id.clone(),
            user_id: f.user_id.clone(),
            username: self.users.get(&f.user_id).cloned(),
            client_id: f.client_id.clone(),
            client_name: self.clients.get(&f.client_id).cloned(),
            scope: f.scope.clone(),
            resources: Targets::stored(f.resources.as_deref()).uris().to_vec(),
            auth_method: f.auth_method.clone(),
            dpop_jkt: f.dpop_jkt.clone(),
            amr: Amr::parse(f.amr.as_deref())
                .values()
                .iter()
                .map(|v| (*v).to_owned())
                .collect(),
            state: family::state(f, live, now),
            created_at: rfc3339(f.created_at),
            expires_at: rfc3339(f.expires_at),
            revoked_at: f.revoked_at.map(rfc3339),
            revoked_reason: f.revoked_reason.clone(),
        }
    }
}

pub fn run(ctx: &mut Context, cmd: FamilyCommand) -> anyhow::Result<()> {
    match cmd {
        FamilyCommand::List {
            user,
            client,
            active,
            revoked,
            limit,
        } => list(ctx, user, client, active, revoked, limit),
        FamilyCommand::Show { family_id } => show(ctx, family_id),
        FamilyCommand::Revoke {
            family_id,
            user,
            client,
            reason,
            confirm: c,
        } => revoke(ctx, family_id, user, client, reason, c),
    }
}

fn list(
    ctx: &mut Context,
    user: Option<String>,
    client: Option<ClientId>,
    active: bool,
    revoked: bool,
    limit: i64,
) -> anyhow::Result<()> {
    let now = ctx.clock.now();
    let conn = ctx.conn()?;
    let user_id = super::check_filters(conn, user.as_deref(), client.as_ref())?;
    let filter = FamilyFilter {
        user_id,
        client_id: client,
        active: if active {
            Some(true)
        } else if revoked {
            Some(false)
        } else {
            None
        },
        limit: limit.clamp(1, 10_000),
    };
    let families = TokenFamily::list(conn, &filter, now)?;
    let names = Names::load(conn)?;
    let ids: Vec<FamilyId> = families.iter().map(|f| f.id.clone()).collect();
    let live = RefreshToken::live_families(conn, &ids, now)?;
    let views: Vec<FamilyView> = families
        .iter()
        .map(|f| names.family(f, live.contains(&f.id), now))
        .collect();
    emit(ctx.output, &views, || {
        let mut t = Table::new(&["FAMILY", "USER", "CLIENT", "STATE", "CREATED", "REASON"]);
        for v in &views {
            t.row(vec![
                v.id.to_string(),
                v.username.clone().unwrap_or_else(|| v.user_id.to_string()),
                v.client_name
                    .clone()
                    .unwrap_or_else(|| v.client_id.to_string()),
                v.state.as_str().to_owned(),
                v.created_at.clone(),
                v.revoked_reason.clone().unwrap_or_default(),
            ]);
        }
        t.render()
    })
}

fn show(ctx: &mut Context, family_id: FamilyId) -> anyhow::Result<()> {
    let now = ctx.clock.now();
    let conn = ctx.conn()?;
    let Some(family) = TokenFamily::find(conn, &family_id)? else {
        let kept = ctx.settings.retention_policy().dead_families;
        if retention::may_have_been_pruned(family_id.as_str(), kept, now) {
            anyhow::bail!(
                    "token family {family_id} was pruned: it ended more than retention.dead_families ago"
                );
        }
        anyhow::bail!("no token family with id {family_id}");
    };
    let conn = ctx.conn()?;
    let tokens = RefreshToken::in_family(conn, &family.id)?;
    let incidents = ReuseIncident::for_family(conn, &family.id)?;
    let names = Names::load(conn)?;
    let lineage = Lineage {
        family: names.family(
            &family,
            tokens.iter().any(|t| family::token_live(t, now)),
            now,
        ),
        tokens: tokens
            .iter()
            .map(|t| TokenView {
                id: t.id.clone(),
                parent_id: t.parent_id.clone(),
                state: TokenState::of(t, &family, now),
                issued_at: rfc3339(t.issued_at),
                expires_at: rfc3339(t.expires_at),
                rotated_at: t.rotated_at.map(rfc3339),
                client_ip: t.client_ip.clone(),
                user_agent: t.user_agent.clone(),
            })
            .collect(),
        incidents: incidents.iter().map(IncidentView::new).collect(),
        earlier_tokens_pruned: {
            let ids: std::collections::HashSet<&TokenId> = tokens.iter().map(|t| &t.id).collect();
            tokens
                .iter()
                .filter_map(|t| t.parent_id.as_ref())
                .any(|p| !ids.contains(p))
        },
        grace_retries: AuditEvent::about(
            conn,
            family.id.as_str(),
            AuditKind::RefreshGraceRetry.as_str(),
        )?
        .iter()
        .map(RetryView::new)
        .collect(),
        logout_notices: LogoutNotice::of_family(conn, &family.id)?
            .iter()
            .map(NoticeView::new)
            .collect(),
    };
    emit(ctx.output, &lineage, || tree(&lineage, &tokens, &incidents))
}

fn revoke(
    ctx: &mut Context,
    family_id: Option<FamilyId>,
    user: Option<String>,
    client: Option<ClientId>,
    reason: String,
    c: Confirm,
) -> anyhow::Result<()> {
    let conn = ctx.conn()?;
    let user_id = match &user {
        Some(name) => Some(user::by_name(conn, name)?.id),
        None => None,
    };
    // clap lets exactly one of the three through.
    let (what, families) = match (&family_id, &user, &user_id, &client) {
        (Some(id), ..) => {
            TokenFamily::find(conn, id)?
                .ok_or_else(|| anyhow::anyhow!("no token family with id {id}"))?;
            (format!("family {id}"), Families::One(id))
        }
        (None, Some(name), Some(user_id), _) => (
            format!("every active family of user {name}"),
            Families::OfUser(user_id),
        ),
        (None, None, None, Some(id)) => {
            client::get(conn, id)?.ok_or_else(|| anyhow::anyhow!("no client with id {id}"))?;
            (
                format!("every active family of client {id}"),
                Families::OfClient(id),
            )
        }
        _ => anyhow::bail!("give a family id, --user or --client"),
    };
    confirm(c.yes, &format!("revoke {what}"))?;
    let actor = tessera::domain::audit::admin_actor();
    let why = Revocation {
        // The name the admin typed, rather than the user's id.
        subject: user.as_deref(),
        about: Some(&what),
        always_audit: true,
        ..Revocation::new(&reason, Some(&actor))
    };
    // Read after the question: the answer may have taken a while.
    let now = ctx.clock.now();
    let revoked = revocation::revoke(ctx.conn()?, families, &why, now)?;
    #[derive(Serialize)]
    struct Revoked {
        revoked: usize,
    }
    emit(ctx.output, &Revoked { revoked }, || {
        format!("revoked {revoked} token families")
    })
}
