use clap::Subcommand;
use serde::Serialize;
use tessera::store::models::AuditEvent;

use super::{parse_duration, Context};
use crate::output::{emit, rfc3339, Table};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List security events, newest first
    List {
        /// Only events this recent, e.g. 24h or 7d
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        since: Option<std::time::Duration>,
        /// Only this kind, or kinds under it: login, login.failure, family, client, key…
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

/// The JSON shape of an audit event.
#[derive(Serialize)]
struct EventView {
    id: String,
    occurred_at: String,
    kind: String,
    actor: Option<String>,
    subject: Option<String>,
    client_ip: Option<String>,
    detail: Option<String>,
    /// The HTTP request's `X-Request-Id`, to find its log lines.
    request_id: Option<String>,
    /// The id the reverse proxy in front sent, to find the request in its logs.
    upstream_request_id: Option<String>,
}

pub fn run(ctx: &mut Context, cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::List { since, kind, limit } => {
            let since = since.map(|d| ctx.clock.now() - d);
            let events =
                AuditEvent::list(ctx.conn()?, since, kind.as_deref(), limit.clamp(1, 10_000))?;
            let views: Vec<EventView> = events
                .into_iter()
                .map(|e| EventView {
                    id: e.id,
                    occurred_at: rfc3339(e.occurred_at),
                    kind: e.kind,
                    actor: e.actor,
                    subject: e.subject,
                    client_ip: e.client_ip,
                    detail: e.detail,
                    request_id: e.request_id,
                    upstream_request_id: e.upstream_request_id,
                })
                .collect();
            emit(ctx.output, &views, || {
                let mut t =
                    Table::new(&["AT", "KIND", "ACTOR", "SUBJECT", "IP", "REQUEST", "DETAIL"]);
                for v in &views {
                    let dash = || "-".to_owned();
                    t.row(vec![
                        v.occurred_at.clone(),
                        v.kind.clone(),
                        v.actor.clone().unwrap_or_else(dash),
                        v.subject.clone().unwrap_or_else(dash),
                        v.client_ip.clone().unwrap_or_else(dash),
                        v.request_id.clone().unwrap_or_else(dash),
                        v.detail.clone().unwrap_or_default(),
                    ]);
                }
                t.render()
            })
        }
    }
}
