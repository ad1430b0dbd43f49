use std::collections::HashMap;

use clap::{ArgGroup, Subcommand};
use serde::Serialize;
use tessera::domain::family;
use tessera::domain::revocation::{self, Families, Revocation};
use tessera::domain::user;
use tessera::store::models::{
    Client, FamilyFilter, RefreshToken, ReuseIncident, TokenFamily, User,
};
use tessera::store::AnyConnection;

use super::{Confirm, Context};
use crate::commands::incident::IncidentView;
use crate::output::{confirm, emit, rfc3339, rfc3339_opt, short, Table};

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
        client: Option<String>,
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
        family_id: String,
    },
    /// Revoke one family, or every active family of a user or of a client. Their refresh
    /// tokens stop working at once, and so do their access tokens at /userinfo.
    #[command(group(ArgGroup::new("target").required(true).args(["family_id", "user", "client"])))]
    Revoke {
        #[arg(allow_hyphen_values = true)]
        family_id: Option<String>,
        /// Every active family of this username
        #[arg(long, value_name = "USERNAME")]
        user: Option<String>,
        /// Every active family of this client id
        #[arg(long, value_name = "CLIENT_ID")]
        client: Option<String>,
        /// Recorded as the families' revoked_reason
        #[arg(long, default_value = revocation::REVOKED_BY_ADMIN)]
        reason: String,
        #[command(flatten)]
        confirm: Confirm,
    },
}

/// A token's state within its family.
fn token_state(t: &RefreshToken, f: &TokenFamily, now: i64) -> &'static str {
    if t.rotated_at.is_some() {
        "rotated"
    } else {
        family::state(f, family::token_live(t, now), now).as_str()
    }
}

/// The JSON shape of a family.
#[derive(Serialize)]
struct FamilyView {
    id: String,
    user_id: String,
    username: Option<String>,
    client_id: String,
    client_name: Option<String>,
    scope: String,
    auth_method: String,
    state: &'static str,
    created_at: String,
    expires_at: String,
    revoked_at: Option<String>,
    revoked_reason: Option<String>,
}

/// The JSON shape of a refresh token: its id, never the token.
#[derive(Serialize)]
struct TokenView {
    id: String,
    parent_id: Option<String>,
    state: &'static str,
    issued_at: String,
    expires_at: String,
    rotated_at: Option<String>,
    client_ip: Option<String>,
    user_agent: Option<String>,
}

#[derive(Serialize)]
struct Lineage {
    family: FamilyView,
    tokens: Vec<TokenView>,
    incidents: Vec<IncidentView>,
}

struct Names {
    users: HashMap<String, String>,
    clients: HashMap<String, String>,
}

impl Names {
    fn load(conn: &mut AnyConnection) -> anyhow::Result<Self> {
        Ok(Self {
            users: User::list(conn)?
                .into_iter()
                .map(|u| (u.id, u.username))
                .collect(),
            clients: Client::list(conn)?
                .into_iter()
                .map(|c| (c.id, c.name))
                .collect(),
        })
    }

    fn family(&self, f: &TokenFamily, live: bool, now: i64) -> FamilyView {
        FamilyView {
            id: f.id.clone(),
            user_id: f.user_id.clone(),
            username: self.users.get(&f.user_id).cloned(),
            client_id: f.client_id.clone(),
            client_name: self.clients.get(&f.client_id).cloned(),
            scope: f.scope.clone(),
            auth_method: f.auth_method.clone(),
            state: family::state(f, live, now).as_str(),
            created_at: rfc3339(f.created_at),
            expires_at: rfc3339(f.expires_at),
            revoked_at: f.revoked_at.map(rfc3339),
            revoked_reason: f.revoked_reason.clone(),
        }
    }
}

pub fn run(ctx: &mut Context, cmd: FamilyCommand) -> anyhow::Result<()> {
    let now = ctx.clock.now_ms();
    match cmd {
        FamilyCommand::List {
            user,
            client,
            active,
            revoked,
            limit,
        } => {
            let conn = ctx.conn()?;
            let user_id = super::check_filters(conn, user.as_deref(), client.as_deref())?;
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
            let ids: Vec<String> = families.iter().map(|f| f.id.clone()).collect();
            let live = RefreshToken::live_families(conn, &ids, now)?;
            let views: Vec<FamilyView> = families
                .iter()
                .map(|f| names.family(f, live.contains(&f.id), now))
                .collect();
            emit(ctx.output, &views, || {
                let mut t = Table::new(&["FAMILY", "USER", "CLIENT", "STATE", "CREATED", "REASON"]);
                for v in &views {
                    t.row(vec![
                        v.id.clone(),
                        v.username.clone().unwrap_or_else(|| v.user_id.clone()),
                        v.client_name.clone().unwrap_or_else(|| v.client_id.clone()),
                        v.state.to_owned(),
                        v.created_at.clone(),
                        v.revoked_reason.clone().unwrap_or_default(),
                    ]);
                }
                t.render()
            })
        }
        FamilyCommand::Show { family_id } => {
            let conn = ctx.conn()?;
            let family = TokenFamily::find(conn, &family_id)?
                .ok_or_else(|| anyhow::anyhow!("no token family with id {family_id}"))?;
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
                        state: token_state(t, &family, now),
                        issued_at: rfc3339(t.issued_at),
                        expires_at: rfc3339(t.expires_at),
                        rotated_at: t.rotated_at.map(rfc3339),
                        client_ip: t.client_ip.clone(),
                        user_agent: t.user_agent.clone(),
                    })
                    .collect(),
                incidents: incidents.iter().map(IncidentView::new).collect(),
            };
            emit(ctx.output, &lineage, || tree(&lineage, &tokens, &incidents))
        }
        FamilyCommand::Revoke {
            family_id,
            user,
            client,
            reason,
            confirm: c,
        } => {
            let conn = ctx.conn()?;
            let (what, user_id) = if let Some(id) = &family_id {
                TokenFamily::find(conn, id)?
                    .ok_or_else(|| anyhow::anyhow!("no token family with id {id}"))?;
                (format!("family {id}"), None)
            } else if let Some(name) = &user {
                (
                    format!("every active family of user {name}"),
                    Some(user::find(conn, name)?.id),
                )
            } else if let Some(id) = &client {
                Client::find(conn, id)?.ok_or_else(|| anyhow::anyhow!("no client with id {id}"))?;
                (format!("every active family of client {id}"), None)
            } else {
                anyhow::bail!("give a family id, --user or --client");
            };
            confirm(c.yes, &format!("revoke {what}"))?;
            let families = match (&family_id, &user_id, &client) {
                (Some(id), _, _) => Families::One(id),
                (None, Some(user_id), _) => Families::OfUser(user_id),
                (None, None, Some(client_id)) => Families::OfClient(client_id),
                (None, None, None) => anyhow::bail!("give a family id, --user or --client"),
            };
            let actor = tessera::domain::audit::admin_actor();
            let why = Revocation {
                // The name the admin typed, rather than the user's id.
                subject: user.as_deref(),
                ..Revocation::new(&reason, Some(&actor))
            };
            let revoked = revocation::revoke(ctx.conn()?, families, &why, now)?;
            #[derive(Serialize)]
            struct Revoked {
                revoked: usize,
            }
            emit(ctx.output, &Revoked { revoked }, || {
                format!("revoked {revoked} token families")
            })
        }
    }
}

/// The lineage as a tree: each token under its parent, the incident beneath.
fn tree(l: &Lineage, tokens: &[RefreshToken], incidents: &[ReuseIncident]) -> String {
    let f = &l.family;
    let mut out = format!("family {}\n", f.id);
    let who = |name: &Option<String>, id: &str| match name {
        Some(n) => format!("{n} ({})", short(id)),
        None => id.to_owned(),
    };
    out.push_str(&format!("  user     {}\n", who(&f.username, &f.user_id)));
    out.push_str(&format!(
        "  client   {}\n",
        who(&f.client_name, &f.client_id)
    ));
    out.push_str(&format!(
        "  scope    {}    (granted by {})\n",
        if f.scope.is_empty() { "-" } else { &f.scope },
        f.auth_method
    ));
    out.push_str(&format!(
        "  created  {}    expires {}\n",
        f.created_at, f.expires_at
    ));
    let state = match (&f.revoked_at, &f.revoked_reason) {
        (Some(at), reason) => format!("REVOKED {at} ({})", reason.as_deref().unwrap_or("-")),
        _ => f.state.to_uppercase(),
    };
    out.push_str(&format!("  state    {state}\n\n"));

    let replayed: HashMap<&str, &ReuseIncident> = incidents
        .iter()
        .map(|i| (i.replayed_token_id.as_str(), i))
        .collect();
    let holder: HashMap<&str, &ReuseIncident> = incidents
        .iter()
        .filter_map(|i| i.active_token_id.as_deref().map(|a| (a, i)))
        .collect();
    // Tokens form a chain (each has at most one successor); roots have no parent.
    let by_parent: HashMap<Option<&str>, Vec<usize>> =
        tokens
            .iter()
            .enumerate()
            .fold(HashMap::new(), |mut m, (i, t)| {
                m.entry(t.parent_id.as_deref()).or_default().push(i);
                m
            });
    let mut stack: Vec<(usize, usize)> = by_parent
        .get(&None)
        .map_or_else(Vec::new, |r| r.iter().rev().map(|&i| (i, 0)).collect());
    while let Some((i, depth)) = stack.pop() {
        let t = &tokens[i];
        let v = &l.tokens[i];
        let indent = if depth == 0 {
            "  ".to_owned()
        } else {
            format!("  {}└─ ", "   ".repeat(depth - 1))
        };
        let mut line = format!(
            "{indent}{}  issued {}  {}  \"{}\"  ",
            short(&t.id),
            v.issued_at,
            t.client_ip.as_deref().unwrap_or("-"),
            t.user_agent.as_deref().unwrap_or("-"),
        );
        match v.state {
            "rotated" => line.push_str(&format!("rotated {}", rfc3339_opt(t.rotated_at))),
            other => line.push_str(&other.to_uppercase()),
        }
        if replayed.contains_key(t.id.as_str()) {
            line.push_str("  ◀ replayed");
        }
        if holder.contains_key(t.id.as_str()) {
            line.push_str("  ◀ held at the replay");
        }
        out.push_str(&line);
        out.push('\n');
        if let Some(children) = by_parent.get(&Some(t.id.as_str())) {
            stack.extend(children.iter().rev().map(|&c| (c, depth + 1)));
        }
    }
    for (inc, view) in incidents.iter().zip(&l.incidents) {
        out.push_str(&format!(
            "\nreuse incident {}  at {}\n",
            inc.id, view.occurred_at
        ));
        out.push_str(&format!(
            "  token {} was presented again after it had been rotated\n",
            short(&inc.replayed_token_id)
        ));
        let active = inc
            .active_token_id
            .as_deref()
            .and_then(|a| tokens.iter().find(|t| t.id == a));
        let mut t = Table::new(&["", "REPLAYED BY", "ACTIVE TOKEN HOLDER"]);
        t.row(vec![
            "token".into(),
            short(&inc.replayed_token_id),
            active.map_or_else(|| "-".to_owned(), |a| short(&a.id)),
        ]);
        t.row(vec![
            "ip".into(),
            inc.client_ip.clone().unwrap_or_else(|| "-".into()),
            active
                .and_then(|a| a.client_ip.clone())
                .unwrap_or_else(|| "-".into()),
        ]);
        t.row(vec![
            "user agent".into(),
            inc.user_agent.clone().unwrap_or_else(|| "-".into()),
            active
                .and_then(|a| a.user_agent.clone())
                .unwrap_or_else(|| "-".into()),
        ]);
        t.row(vec![
            "at".into(),
            view.occurred_at.clone(),
            active.map_or_else(
                || "-".to_owned(),
                |a| format!("issued {}", rfc3339(a.issued_at)),
            ),
        ]);
        for line in t.render_width(None).lines() {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out.trim_end().to_owned()
}
