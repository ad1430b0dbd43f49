//! A token family's lineage: its JSON shape, and the tree `family show` draws for people.

use std::collections::HashMap;

use serde::Serialize;
use tessera::domain::family::{FamilyState, TokenState};
use tessera::store::models::{AuditEvent, LogoutNotice, RefreshToken, ReuseIncident};
use tessera::value::{ClientId, FamilyId, TokenId, UserId};

use crate::output::{rfc3339, rfc3339_opt, short, Table};

/// The JSON shape of an incident.
#[derive(Serialize)]
pub struct IncidentView {
    pub id: String,
    pub family_id: FamilyId,
    pub replayed_token_id: TokenId,
    pub active_token_id: Option<TokenId>,
    pub client_id: ClientId,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub occurred_at: String,
    /// The DPoP key the replay's proof came from; `None`: no proof.
    pub dpop_jkt: Option<String>,
}

impl IncidentView {
    pub fn new(i: &ReuseIncident) -> Self {
        Self {
            id: i.id.clone(),
            family_id: i.family_id.clone(),
            replayed_token_id: i.replayed_token_id.clone(),
            active_token_id: i.active_token_id.clone(),
            client_id: i.client_id.clone(),
            client_ip: i.client_ip.clone(),
            user_agent: i.user_agent.clone(),
            occurred_at: rfc3339(i.occurred_at),
            dpop_jkt: i.dpop_jkt.clone(),
        }
    }
}

/// The JSON shape of a family.
#[derive(Serialize)]
pub struct FamilyView {
    pub id: FamilyId,
    pub user_id: UserId,
    pub username: Option<String>,
    pub client_id: ClientId,
    pub client_name: Option<String>,
    pub scope: String,
    /// The resource servers (RFC 8707) it was granted for.
    pub resources: Vec<String>,
    pub auth_method: String,
    /// The thumbprint of the DPoP key its tokens are bound to (RFC 9449).
    pub dpop_jkt: Option<String>,
    /// How the user signed in (RFC 8176 `amr` values).
    pub amr: Vec<String>,
    pub state: FamilyState,
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
    pub revoked_reason: Option<String>,
}

/// The JSON shape of a refresh token: its id, never the token.
#[derive(Serialize)]
pub struct TokenView {
    pub id: TokenId,
    pub parent_id: Option<TokenId>,
    pub state: TokenState,
    pub issued_at: String,
    pub expires_at: String,
    pub rotated_at: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Serialize)]
pub struct Lineage {
    pub family: FamilyView,
    pub tokens: Vec<TokenView>,
    pub incidents: Vec<IncidentView>,
    /// Retention pruned the tokens before the oldest one listed (a replay of any of them still
    /// revokes the family).
    pub earlier_tokens_pruned: bool,
    /// Just-rotated tokens presented again within the grace window by the same app instance,
    /// and answered with their successor.
    pub grace_retries: Vec<RetryView>,
    /// Back-channel logouts telling the family's app of its end.
    pub logout_notices: Vec<NoticeView>,
}

/// The JSON shape of a back-channel logout notice.
#[derive(Serialize)]
pub struct NoticeView {
    /// Also the logout token's `jti`.
    pub id: String,
    /// `pending`, `delivered` or `failed`.
    pub state: &'static str,
    pub reason: String,
    pub created_at: String,
    pub attempts: i64,
    pub delivered_at: Option<String>,
    pub last_error: Option<String>,
}

impl NoticeView {
    pub fn new(n: &LogoutNotice) -> Self {
        let state = match (n.delivered_at, n.failed_at) {
            (Some(_), _) => "delivered",
            (None, Some(_)) => "failed",
            (None, None) => "pending",
        };
        Self {
            id: n.id.clone(),
            state,
            reason: n.reason.clone(),
            created_at: rfc3339(n.created_at),
            attempts: n.attempts,
            delivered_at: n.delivered_at.map(rfc3339),
            last_error: n.last_error.clone(),
        }
    }
}

/// The JSON shape of a grace retry, from its audit event.
#[derive(Serialize)]
pub struct RetryView {
    pub at: String,
    pub client_ip: Option<String>,
    pub detail: Option<String>,
}

impl RetryView {
    pub fn new(e: &AuditEvent) -> Self {
        Self {
            at: rfc3339(e.occurred_at),
            client_ip: e.client_ip.clone(),
            detail: e.detail.clone(),
        }
    }
}

/// The lineage as a tree: the family, each token under its parent, the grace retries, and
/// each reuse incident beneath.
pub fn tree(l: &Lineage, tokens: &[RefreshToken], incidents: &[ReuseIncident]) -> String {
    let mut out = family_header(&l.family);
    out.push_str(&token_chain(l, tokens, incidents));
    if !l.grace_retries.is_empty() {
        out.push_str("\ngrace retries (the same app instance, answered with the successor)\n");
        for r in &l.grace_retries {
            out.push_str(&format!(
                "  {}  {}\n",
                r.at,
                r.detail.as_deref().unwrap_or("-")
            ));
        }
    }
    if !l.logout_notices.is_empty() {
        out.push_str("\nback-channel logout (the app told of the end)\n");
        for n in &l.logout_notices {
            let detail = match (&n.delivered_at, &n.last_error) {
                (Some(at), _) => format!("delivered {at}"),
                (None, Some(e)) => format!("{} after {} attempts: {e}", n.state, n.attempts),
                (None, None) => n.state.to_owned(),
            };
            out.push_str(&format!("  {}  {}  {detail}\n", n.created_at, n.reason));
        }
    }
    for (inc, view) in incidents.iter().zip(&l.incidents) {
        out.push_str(&incident(inc, view, tokens));
    }
    out.trim_end().to_owned()
}

/// Who, what and where the family stands.
fn family_header(f: &FamilyView) -> String {
    let mut out = format!("family {}\n", f.id);
    let who = |name: &Option<String>, id: &str| match name {
        Some(n) => format!("{n} ({})", short(id)),
        None => id.to_owned(),
    };
    out.push_str(&format!(
        "  user     {}\n",
        who(&f.username, f.user_id.as_str())
    ));
    out.push_str(&format!(
        "  client   {}\n",
        who(&f.client_name, f.client_id.as_str())
    ));
    out.push_str(&format!(
        "  scope    {}    (granted by {})\n",
        if f.scope.is_empty() { "-" } else { &f.scope },
        f.auth_method
    ));
    if !f.resources.is_empty() {
        out.push_str(&format!("  for      {}\n", f.resources.join(" ")));
    }
    if let Some(jkt) = &f.dpop_jkt {
        out.push_str(&format!("  dpop     bound to key {jkt}\n"));
    }
    out.push_str(&format!(
        "  amr      {}    ({})\n",
        f.amr.join(" "),
        describe_amr(&f.amr)
    ));
    out.push_str(&format!(
        "  created  {}    expires {}\n",
        f.created_at, f.expires_at
    ));
    let state = match (&f.revoked_at, &f.revoked_reason) {
        (Some(at), reason) => format!("REVOKED {at} ({})", reason.as_deref().unwrap_or("-")),
        _ => f.state.as_str().to_uppercase(),
    };
    out.push_str(&format!("  state    {state}\n\n"));

    out
}

/// Each token under its parent, marked where an incident names it.
fn token_chain(l: &Lineage, tokens: &[RefreshToken], incidents: &[ReuseIncident]) -> String {
    let mut out = String::new();
    let replayed: HashMap<&str, &ReuseIncident> = incidents
        .iter()
        .map(|i| (i.replayed_token_id.as_str(), i))
        .collect();
    let holder: HashMap<&str, &ReuseIncident> = incidents
        .iter()
        .filter_map(|i| i.active_token_id.as_ref().map(|a| (a.as_str(), i)))
        .collect();
    // Tokens form a chain (each has at most one successor); roots have no parent, or one that
    // retention pruned.
    let listed: std::collections::HashSet<&str> = tokens.iter().map(|t| t.id.as_str()).collect();
    let by_parent: HashMap<Option<&str>, Vec<usize>> =
        tokens
            .iter()
            .enumerate()
            .fold(HashMap::new(), |mut m, (i, t)| {
                let parent = t
                    .parent_id
                    .as_ref()
                    .map(TokenId::as_str)
                    .filter(|p| listed.contains(p));
                m.entry(parent).or_default().push(i);
                m
            });
    if l.earlier_tokens_pruned {
        out.push_str("  ⋯ earlier tokens pruned by retention\n");
    }
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
            TokenState::Rotated => line.push_str(&format!("rotated {}", rfc3339_opt(t.rotated_at))),
            other => line.push_str(&other.as_str().to_uppercase()),
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
    out
}

/// One reuse incident: the replayed token beside the one its family held then.
fn incident(inc: &ReuseIncident, view: &IncidentView, tokens: &[RefreshToken]) -> String {
    let mut out = String::new();
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
        .as_ref()
        .and_then(|a| tokens.iter().find(|t| t.id == *a));
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
        "dpop key".into(),
        view.dpop_jkt.clone().unwrap_or_else(|| "no proof".into()),
        "-".into(),
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
    out
}

/// How a family's user signed in, in words.
fn describe_amr(amr: &[String]) -> &'static str {
    let has = |v: &str| amr.iter().any(|a| a == v);
    match (has("pwd"), has("otp"), has("hwk")) {
        (true, true, _) => "a password, then a one-time code",
        (true, false, true) => "a password, then a passkey",
        (false, _, true) => "a passkey",
        _ => "a password",
    }
}
