use clap::Subcommand;
use tessera::store::models::{IncidentFilter, ReuseIncident};
use tessera::value::{ClientId, TokenId};

use super::{parse_duration, Context};
use crate::output::lineage::IncidentView;
use crate::output::{emit, short, Table};

#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// List refresh-token reuse incidents, newest first
    List {
        /// Only incidents this recent, e.g. 24h or 7d
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        since: Option<std::time::Duration>,
        /// Only this client's
        #[arg(long, value_name = "CLIENT_ID")]
        client: Option<ClientId>,
        /// Only this user's (username)
        #[arg(long, value_name = "USERNAME")]
        user: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Show one incident
    Show {
        #[arg(allow_hyphen_values = true)]
        incident_id: String,
    },
}

pub fn run(ctx: &mut Context, cmd: IncidentCommand) -> anyhow::Result<()> {
    match cmd {
        IncidentCommand::List {
            since,
            client,
            user,
            limit,
        } => {
            let now = ctx.clock.now();
            let conn = ctx.conn()?;
            let user_id = super::check_filters(conn, user.as_deref(), client.as_ref())?;
            let filter = IncidentFilter {
                since: since.map(|d| now - d),
                client_id: client,
                user_id,
                limit: limit.clamp(1, 10_000),
            };
            let views: Vec<IncidentView> = ReuseIncident::list(conn, &filter)?
                .iter()
                .map(IncidentView::new)
                .collect();
            emit(ctx.output, &views, || {
                let mut t = Table::new(&[
                    "INCIDENT",
                    "AT",
                    "FAMILY",
                    "CLIENT",
                    "REPLAYED",
                    "IP",
                    "USER AGENT",
                ]);
                for v in &views {
                    t.row(vec![
                        v.id.clone(),
                        v.occurred_at.clone(),
                        v.family_id.to_string(),
                        short(&v.client_id),
                        short(&v.replayed_token_id),
                        v.client_ip.clone().unwrap_or_else(|| "-".into()),
                        v.user_agent.clone().unwrap_or_else(|| "-".into()),
                    ]);
                }
                t.render()
            })
        }
        IncidentCommand::Show { incident_id } => {
            let Some(i) = ReuseIncident::find(ctx.conn()?, &incident_id)? else {
                let kept = ctx.settings.retention_policy().audit;
                let now = ctx.clock.now();
                if tessera::domain::retention::may_have_been_pruned(&incident_id, kept, now) {
                    anyhow::bail!(
                        "incident {incident_id} was pruned: it is older than retention.audit"
                    );
                }
                anyhow::bail!("no incident with id {incident_id}");
            };
            let v = IncidentView::new(&i);
            emit(ctx.output, &v, || {
                format!(
                    "incident        {}\noccurred_at     {}\nfamily          {}   (tessera-admin family show {})\nclient          {}\nreplayed token  {}\nactive token    {}\nreplayed by     {}  \"{}\"\ndpop key        {}",
                    v.id,
                    v.occurred_at,
                    v.family_id,
                    v.family_id,
                    v.client_id,
                    v.replayed_token_id,
                    v.active_token_id.as_ref().map_or("-", TokenId::as_str),
                    v.client_ip.as_deref().unwrap_or("-"),
                    v.user_agent.as_deref().unwrap_or("-"),
                    v.dpop_jkt.as_deref().unwrap_or("no proof"),
                )
            })
        }
    }
}
