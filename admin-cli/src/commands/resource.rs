use clap::Subcommand;
use serde::Serialize;
use tessera::domain::resource::{self, ResourceError};
use tessera::domain::scope::Scope;
use tessera::store::models::ResourceRow;

use tessera::domain::audit::AuditKind;

use super::{Confirm, Context};
use crate::output::{confirm, emit, rfc3339, Table};

#[derive(Debug, Subcommand)]
pub enum ResourceCommand {
    /// Register a resource server (RFC 8707): clients may then ask for access tokens whose
    /// `aud` is its URI, carrying only the scopes it accepts
    Add {
        /// The resource server's URI, as clients will name it (absolute, no fragment)
        uri: String,
        /// Space-separated scopes the resource server accepts, e.g. "orders:read orders:write"
        #[arg(long)]
        scope: String,
    },
    /// List resource servers
    List,
    /// Remove a resource server: no new grant or refresh can name it; grants made for it keep
    /// it as their tokens' audience until they end (`family revoke` ends them)
    Remove {
        uri: String,
        #[command(flatten)]
        confirm: Confirm,
    },
}

#[derive(Serialize)]
struct ResourceView {
    uri: String,
    scope: String,
    created_at: String,
}

impl ResourceView {
    fn new(r: &ResourceRow) -> Self {
        Self {
            uri: r.uri.clone(),
            scope: r.scopes.clone(),
            created_at: rfc3339(r.created_at),
        }
    }
}

pub fn run(ctx: &mut Context, cmd: ResourceCommand) -> anyhow::Result<()> {
    match cmd {
        ResourceCommand::Add { uri, scope } => {
            let scope = Scope::parse(&scope).map_err(|e| anyhow::anyhow!("--scope: {e}"))?;
            let now = ctx.clock.now();
            let row = resource::register(ctx.conn()?, &uri, &scope, now).map_err(|e| match e {
                ResourceError::NoScope => anyhow::anyhow!("{e}: pass --scope"),
                ResourceError::Exists(_) => {
                    anyhow::anyhow!("{e}; `resource remove` it first to change its scopes")
                }
                other => other.into(),
            })?;
            ctx.audit(
                AuditKind::ResourceAdded,
                Some(&row.uri),
                Some(&format!("scope {}", row.scopes)),
            )?;
            let view = ResourceView::new(&row);
            emit(ctx.output, &view, || {
                format!(
                    "registered resource {} (scope {}); clients ask for it with resource={}",
                    view.uri, view.scope, view.uri
                )
            })
        }
        ResourceCommand::List => {
            let views: Vec<ResourceView> = ResourceRow::list(ctx.conn()?)?
                .iter()
                .map(ResourceView::new)
                .collect();
            emit(ctx.output, &views, || {
                let mut t = Table::new(&["URI", "SCOPE", "CREATED"]);
                for v in &views {
                    t.row(vec![v.uri.clone(), v.scope.clone(), v.created_at.clone()]);
                }
                t.render()
            })
        }
        ResourceCommand::Remove { uri, confirm: c } => {
            let row = ResourceRow::find(ctx.conn()?, &uri)?
                .ok_or_else(|| anyhow::anyhow!("no resource {uri}; see `resource list`"))?;
            confirm(c.yes, &format!("remove resource {uri}"))?;
            resource::remove(ctx.conn()?, &uri)?;
            ctx.audit(AuditKind::ResourceRemoved, Some(&uri), None)?;
            let view = ResourceView::new(&row);
            emit(ctx.output, &view, || format!("removed resource {uri}"))
        }
    }
}
