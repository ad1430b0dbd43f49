//! `tessera-admin doctor`: the configuration and the registered clients, checked against
//! RFC 9700 (OAuth 2.0 Security Best Current Practice), the RFCs it builds on, and this
//! project's own rules. Each finding names its check, its severity, the rule, and the command
//! or setting that fixes it.

use std::time::Duration;

use serde::Serialize;
use tessera::domain::client::{self, is_loopback, Client, GrantType};
use tessera::domain::crypto::{check_private, MasterKeyError};
use tessera::domain::keys::{self, KeyState};
use tessera::domain::origin::Origin;
use tessera::settings::{compact_duration as human, SecondFactorPolicy, Settings};
use tessera::store::{self, models::StoredKey};

use super::Context;
use crate::output::{emit, Table};
use tessera::value::UnixMs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One thing to fix.
#[derive(Debug, Serialize)]
pub struct Finding {
    /// The check's name, stable for scripts.
    pub check: &'static str,
    pub severity: Severity,
    /// The rule: an RFC section, or this project's own.
    pub rule: &'static str,
    /// What is wrong, and where.
    pub message: String,
    /// The command or setting that fixes it.
    pub fix: String,
}

#[derive(Serialize)]
struct Report<'a> {
    findings: &'a [Finding],
    errors: usize,
    warnings: usize,
}

const DAY: Duration = Duration::from_secs(86_400);
const CONFIG: &str = "tessera.toml (or its TESSERA_<SECTION>__<KEY> variable)";

pub fn run(
    ctx: &mut Context,
    strict: bool,
    unused_after: Duration,
    instances: u32,
) -> anyhow::Result<()> {
    let now = ctx.clock.now();
    let mut findings = configuration(ctx);
    let pool_size = ctx.settings.database.pool_size;
    let pooler = ctx.settings.database.pooler;
    let conn = ctx.conn()?;
    findings.extend(connections_finding(
        store::connection_limits(conn)?,
        pool_size,
        pooler,
        instances,
    ));
    let clients = client::list(conn)?;
    let stored_keys = StoredKey::all(conn)?;
    findings.extend(clients_findings(ctx, &clients, now, unused_after));
    findings.extend(key_findings(ctx, &stored_keys, now));
    findings.extend(id_token_keys_missing(&clients, &stored_keys));
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.check.cmp(b.check)));

    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    emit(
        ctx.output,
        &Report {
            findings: &findings,
            errors,
            warnings,
        },
        || text(&findings, errors, warnings),
    )?;
    if errors > 0 || (strict && warnings > 0) {
        let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        anyhow::bail!(
            "{}, {}{}",
            plural(errors, "error"),
            plural(warnings, "warning"),
            if strict { " (--strict)" } else { "" }
        );
    }
    Ok(())
}

fn text(findings: &[Finding], errors: usize, warnings: usize) -> String {
    if findings.is_empty() {
        return "no findings: the configuration and the clients follow RFC 9700 and Tessera's rules"
            .to_owned();
    }
    let mut out = Vec::new();
    for f in findings {
        out.push(format!(
            "{} {} [{}]\n  {}\n  fix: {}",
            f.severity.as_str().to_uppercase(),
            f.check,
            f.rule,
            f.message,
            f.fix
        ));
    }
    let mut summary = Table::new(&["ERRORS", "WARNINGS"]);
    summary.row(vec![errors.to_string(), warnings.to_string()]);
    out.push(summary.render());
    out.join("\n\n")
}

/// Checks of the settings alone.
fn configuration(ctx: &Context) -> Vec<Finding> {
    let s = &ctx.settings;
    // Fixes name the defaults, as the settings define them.
    let defaults = Settings::defaults();
    let mut findings = Vec::new();
    issuer_finding(s, &mut findings);
    lifetime_findings(s, &defaults, &mut findings);
    throttle_finding(s, &defaults, &mut findings);
    master_key_finding(s, &mut findings);
    findings.extend(inline_master_key(s));
    findings.extend(wide_trusted_proxies(s));
    findings.extend(metrics_exposed(s));
    findings.extend(multi_host_without_read_write(s));
    findings
}

/// A database URL with several hosts that does not ask for the one that takes writes: after a
/// failover, connections may land on a standby, where every write fails.
fn multi_host_without_read_write(s: &Settings) -> Option<Finding> {
    // A multi-host URL is not one a URL parser takes (`h1:5432,h2:5432` is no port): libpq
    // takes the hosts from the authority or from `host=` parameters.
    let url = s.database.url.expose();
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))?;
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = before_query.split('/').next().unwrap_or("");
    let mut hosts = authority
        .rsplit('@')
        .next()
        .unwrap_or("")
        .split(',')
        .count();
    let mut attrs = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "host" | "hostaddr" => hosts = hosts.max(v.split(',').count()),
            "target_session_attrs" => attrs = Some(v.into_owned()),
            _ => {}
        }
    }
    let writable = matches!(attrs.as_deref(), Some("read-write" | "primary"));
    (hosts > 1 && !writable).then(|| Finding {
        check: "multi_host_without_read_write",
        severity: Severity::Warning,
        rule: "Tessera: database.url (libpq target_session_attrs)",
        message: format!(
            "database.url names {hosts} hosts but not target_session_attrs=read-write{}: connections go to the first host that answers, and after a failover that may be a standby, where every sign-in and refresh fails",
            attrs.map(|a| format!(" (it says {a})")).unwrap_or_default()
        ),
        fix: "add target_session_attrs=read-write to database.url, e.g. postgres://user@db1:5432,db2:5432/tessera?target_session_attrs=read-write".to_owned(),
    })
}

/// Without a pooler in transaction mode, every instance's pool holds its own server
/// connections: the pools together must fit under the server's `max_connections`.
fn connections_finding(
    limits: Option<(i64, i64)>,
    pool_size: u32,
    pooler: store::Pooler,
    instances: u32,
) -> Option<Finding> {
    let (max, reserved) = limits?;
    if pooler == store::Pooler::Transaction {
        return None;
    }
    let per_instance = i64::from(store::pool_size(store::Backend::Postgres, pool_size));
    let needed = per_instance * i64::from(instances);
    let available = max - reserved;
    (needed > available).then(|| Finding {
        check: "pools_exceed_max_connections",
        severity: Severity::Warning,
        rule: "Tessera: database.pool_size, database.pooler",
        message: format!(
            "{instances} instances × {per_instance} connections each = {needed}, more than the {available} PostgreSQL gives (max_connections {max}, {reserved} kept for superusers): when all are busy, the last instances to connect get no connection and answer 503"
        ),
        fix: format!(
            "put PgBouncer in pool_mode = transaction in front of PostgreSQL and set database.pooler = \"transaction\", or set database.pool_size to at most {} (see README: Deploying), or raise max_connections",
            (available / i64::from(instances.max(1))).max(1)
        ),
    })
}

/// A master key written into a configuration file that other users can read.
fn inline_master_key(s: &Settings) -> Option<Finding> {
    let file = s.file.as_deref()?;
    let text = std::fs::read_to_string(file).ok()?;
    let inline = text.lines().any(|l| {
        l.trim_start()
            .strip_prefix("master_key")
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    });
    let Err(MasterKeyError::Exposed { mode, .. }) = check_private(file) else {
        return None;
    };
    inline.then(|| Finding {
        check: "master_key_in_readable_config",
        severity: Severity::Error,
        rule: "Tessera: the master key is readable by its owner only",
        message: format!(
            "{} holds master_key and has mode {mode:03o}: other users can read the key that seals the signing keys and MACs refresh tokens",
            file.display()
        ),
        fix: format!(
            "move the key to a file of its own (master_key_file, mode 600) and delete master_key from {0}, or: chmod 600 {0}",
            file.display()
        ),
    })
}

/// Trusted proxies that take in every address: anyone can then name any client address.
fn wide_trusted_proxies(s: &Settings) -> Option<Finding> {
    let wide: Vec<String> = s
        .server
        .trusted_proxies
        .iter()
        .filter(|net| net.prefix_len() == 0)
        .map(ToString::to_string)
        .collect();
    (!wide.is_empty()).then(|| Finding {
        check: "wide_trusted_proxies",
        severity: Severity::Warning,
        rule: "RFC 7239 §8.1; Tessera: server.trusted_proxies",
        message: format!(
            "server.trusted_proxies has {}: every peer may then say which address a request came from, escape the per-address sign-in limit, lock out another address and write any address into audit events",
            wide.join(" and ")
        ),
        fix: "set server.trusted_proxies to the reverse proxies' own addresses, e.g. [\"10.0.0.5\"]"
            .to_owned(),
    })
}

/// `/metrics` served on an address other machines can reach.
fn metrics_exposed(s: &Settings) -> Option<Finding> {
    let addr: std::net::SocketAddr = s.server.metrics_listen.trim().parse().ok()?;
    (!addr.ip().is_loopback()).then(|| Finding {
        check: "metrics_exposed",
        severity: Severity::Warning,
        rule: "Tessera: server.metrics_listen",
        message: format!(
            "server.metrics_listen is {addr}: anyone who reaches it reads the traffic, sign-in, refresh and reuse counts, the version and the pool's state"
        ),
        fix: format!(
            "set server.metrics_listen = \"127.0.0.1:{}\" and let the scraper come through a tunnel or the reverse proxy, or allow only the scraper in a firewall",
            addr.port()
        ),
    })
}

/// An issuer that is not https (loopback aside).
fn issuer_finding(s: &Settings, findings: &mut Vec<Finding>) {
    let issuer = &s.server.issuer;
    if issuer.scheme() != "https" && !is_loopback(issuer) {
        findings.push(Finding {
            check: "http_issuer",
            severity: Severity::Error,
            rule: "RFC 8414 §2; RFC 6749 §3.1",
            message: format!(
                "server.issuer is {issuer}: tokens, codes and passwords would cross the network unencrypted"
            ),
            fix: format!(
                "set server.issuer = \"https://{}\" in {CONFIG}, with TLS at the proxy in front",
                issuer.host_str().unwrap_or("auth.example.com")
            ),
        });
    }
}

/// Access and refresh tokens that live too long, a wide grace window.
fn lifetime_findings(s: &Settings, defaults: &Settings, findings: &mut Vec<Finding>) {
    let t = &s.tokens;
    if t.access_ttl > Duration::from_secs(3600) {
        findings.push(Finding {
            check: "long_access_tokens",
            severity: Severity::Warning,
            rule: "RFC 9700 §2.2; RFC 6819 §5.1.5.3",
            message: format!(
                "tokens.access_ttl is {}: a stolen access token works that long, and revoking its family cannot reach resource servers that check it offline",
                human(t.access_ttl)
            ),
            fix: format!(
                "set tokens.access_ttl = \"{}\" in {CONFIG}",
                human(defaults.tokens.access_ttl)
            ),
        });
    }
    if t.reuse_grace > Duration::from_secs(30) {
        findings.push(Finding {
            check: "wide_grace_window",
            severity: Severity::Warning,
            rule: "RFC 9700 §4.14.2",
            message: format!(
                "tokens.reuse_grace is {}: a replayed refresh token within it is answered instead of revoking its family",
                human(t.reuse_grace)
            ),
            fix: format!(
                "set tokens.reuse_grace = \"{}\" in {CONFIG}",
                human(defaults.tokens.reuse_grace)
            ),
        });
    }
    let year = 365 * DAY;
    if t.refresh_absolute_ttl > year || t.refresh_idle_ttl > year {
        findings.push(Finding {
            check: "long_refresh_tokens",
            severity: Severity::Warning,
            rule: "RFC 9700 §4.14.2; RFC 6819 §5.2.2.3",
            message: format!(
                "refresh tokens live up to {} (tokens.refresh_absolute_ttl) and {} unused (tokens.refresh_idle_ttl): over a year",
                human(t.refresh_absolute_ttl),
                human(t.refresh_idle_ttl)
            ),
            fix: format!(
                "set tokens.refresh_absolute_ttl = \"{}\" and tokens.refresh_idle_ttl = \"{}\" in {CONFIG}",
                human(defaults.tokens.refresh_absolute_ttl),
                human(defaults.tokens.refresh_idle_ttl)
            ),
        });
    }
}

/// Throttling loose enough to be off.
fn throttle_finding(s: &Settings, defaults: &Settings, findings: &mut Vec<Finding>) {
    let th = &s.throttle;
    if th.max_failures_per_user > 20
        || th.max_failures_per_ip > 1000
        || th.window < Duration::from_secs(60)
    {
        findings.push(Finding {
            check: "throttling_off",
            severity: Severity::Warning,
            rule: "RFC 6749 §4.3.2; RFC 6819 §4.4.3.6",
            message: format!(
                "sign-in throttling is in effect off: {} failures per user and {} per address per {}; passwords can be guessed at the token endpoint and the login page",
                th.max_failures_per_user,
                th.max_failures_per_ip,
                human(th.window)
            ),
            fix: format!(
                "set throttle.max_failures_per_user = {}, throttle.max_failures_per_ip = {} and throttle.window = \"{}\" in {CONFIG}",
                defaults.throttle.max_failures_per_user,
                defaults.throttle.max_failures_per_ip,
                human(defaults.throttle.window)
            ),
        });
    }
}

/// A master key file others can read.
fn master_key_finding(s: &Settings, findings: &mut Vec<Finding>) {
    if s.master_key.is_none() {
        let path = &s.master_key_file;
        if let Err(MasterKeyError::Exposed { mode, .. }) = check_private(path) {
            findings.push(Finding {
                check: "master_key_exposed",
                severity: Severity::Error,
                rule: "Tessera: the master key is readable by its owner only",
                message: format!(
                    "{} has mode {mode:03o}: other users can read the key that seals the signing keys and MACs refresh tokens",
                    path.display()
                ),
                fix: format!("chmod 600 {}", path.display()),
            });
        }
    }
}

/// Checks of each registered client.
fn clients_findings(
    ctx: &Context,
    clients: &[Client],
    now: UnixMs,
    unused_after: Duration,
) -> Vec<Finding> {
    let https_issuer = ctx.settings.server.issuer.scheme() == "https";
    let mut findings = Vec::new();
    let required = ctx.settings.signin.second_factor == SecondFactorPolicy::Required;
    for c in clients.iter().filter(|c| c.disabled_at.is_none()) {
        findings.extend(public_password_client(c));
        findings.extend(password_grant_without_second_step(c, required));
        if https_issuer {
            findings.extend(insecure_redirect_uris(c));
        }
        findings.extend(unused_client(c, now, unused_after));
        findings.extend(origins_without_redirect(c));
    }
    findings
}

/// An allowed origin that no redirect URI lives on: a browser app signs in by coming back to
/// its own origin, so such an origin is a typo or a leftover that lets another site's scripts
/// read this client's token responses.
fn origins_without_redirect(c: &Client) -> Vec<Finding> {
    let homes: Vec<Origin> = c.redirect_uris.iter().filter_map(Origin::of).collect();
    let kept: Vec<String> = c
        .app
        .allowed_origins
        .iter()
        .filter(|o| homes.contains(o))
        .map(|o| format!("--allowed-origin {o}"))
        .collect();
    let fix = if kept.is_empty() {
        format!("tessera-admin client update {} --no-allowed-origins", c.id)
    } else {
        format!("tessera-admin client update {} {}", c.id, kept.join(" "))
    };
    c.app
        .allowed_origins
        .iter()
        .filter(|o| !homes.contains(o))
        .map(|origin| Finding {
            check: "origin_without_redirect_uri",
            severity: Severity::Warning,
            rule: "OAuth 2.0 for Browser-Based Apps (CORS)",
            message: format!(
                "client {} ({}) allows the origin {origin}, which none of its redirect URIs is on: scripts there may read its token responses",
                c.id, c.name
            ),
            fix: fix.clone(),
        })
        .collect()
}

/// A client with the password grant where every sign-in needs a second factor: the grant has
/// no second step, so each of its token requests is refused.
fn password_grant_without_second_step(c: &Client, required: bool) -> Option<Finding> {
    if !(c.allows(GrantType::Password) && (required || c.app.require_second_factor)) {
        return None;
    }
    let keep: Vec<String> = c
        .grants
        .iter()
        .filter(|g| **g != GrantType::Password)
        .map(|g| format!("--grant {g}"))
        .collect();
    let why = if required {
        "signin.second_factor = \"required\""
    } else {
        "it requires a second factor"
    };
    Some(Finding {
        check: "password_grant_with_second_factor",
        severity: Severity::Warning,
        rule: "Tessera: the password grant cannot carry a second step",
        message: format!(
            "client {} ({}) may use the password grant, but {why}: every password grant it sends is refused; move the app to authorization_code with PKCE, where the sign-in page asks for the second factor",
            c.id, c.name
        ),
        fix: if keep.is_empty() {
            format!("tessera-admin client update {} --grant authorization_code --grant refresh_token --redirect-uri <URI>", c.id)
        } else {
            format!("tessera-admin client update {} {}", c.id, keep.join(" "))
        },
    })
}

/// A public client with the password grant: anyone can collect passwords as it.
fn public_password_client(c: &Client) -> Option<Finding> {
    if !(c.is_public() && c.allows(GrantType::Password)) {
        return None;
    }
    let keep: Vec<String> = c
        .grants
        .iter()
        .filter(|g| **g != GrantType::Password)
        .map(|g| format!("--grant {g}"))
        .collect();
    Some(Finding {
        check: "password_grant_public_client",
        severity: Severity::Error,
        rule: "RFC 9700 §2.4",
        message: format!(
            "client {} ({}) is public and may use the password grant: any app can present itself as it and collect users' passwords; move the app to authorization_code with PKCE (RFC 9700 §2.1.1), then take the grant away",
            c.id, c.name
        ),
        fix: if keep.is_empty() {
            format!("tessera-admin client disable {}", c.id)
        } else {
            format!("tessera-admin client update {} {}", c.id, keep.join(" "))
        },
    })
}

/// Redirect URIs over plain http to anything but loopback, on an https issuer.
fn insecure_redirect_uris(c: &Client) -> Vec<Finding> {
    let insecure = |u: &url::Url| u.scheme() == "http" && !is_loopback(u);
    let fixed = c
        .redirect_uris
        .iter()
        .map(|u| {
            let mut u = u.clone();
            if insecure(&u) {
                let _ = u.set_scheme("https");
            }
            format!("--redirect-uri {u}")
        })
        .collect::<Vec<_>>()
        .join(" ");
    c.redirect_uris
        .iter()
        .filter(|u| insecure(u))
        .map(|uri| Finding {
            check: "insecure_redirect_uri",
            severity: Severity::Error,
            rule: "RFC 9700 §4.1; RFC 6749 §3.1.2.1",
            message: format!(
                "client {} ({}) has the redirect URI {uri}: authorization codes would travel unencrypted (only loopback http is safe, RFC 8252 §7.3)",
                c.id, c.name
            ),
            fix: format!("tessera-admin client update {} {fixed}", c.id),
        })
        .collect()
}

/// A client that got no token for `unused_after`.
fn unused_client(c: &Client, now: UnixMs, unused_after: Duration) -> Option<Finding> {
    let last = c.last_used_at.unwrap_or(c.created_at);
    if now.since(last) <= unused_after {
        return None;
    }
    Some(Finding {
        check: "unused_client",
        severity: Severity::Warning,
        rule: "Tessera: clients no one uses are credentials no one watches",
        message: format!(
            "client {} ({}) has {} for {} days",
            c.id,
            c.name,
            if c.last_used_at.is_some() {
                "not got a token"
            } else {
                "never got a token"
            },
            days(now.since(last))
        ),
        fix: format!("tessera-admin client disable {}", c.id),
    })
}

/// A client whose ID tokens are to be signed with an algorithm no key in force has: its
/// sign-ins fail with `server_error`.
fn id_token_keys_missing(clients: &[Client], stored: &[StoredKey]) -> Vec<Finding> {
    clients
        .iter()
        .filter(|c| c.disabled_at.is_none())
        .filter_map(|c| {
            let alg = c.openid.id_token_alg?;
            let in_force = stored
                .iter()
                .any(|k| k.alg == alg.as_str() && k.retired_at.is_none());
            (!in_force).then(|| Finding {
                check: "id_token_key_missing",
                severity: Severity::Error,
                rule: "OpenID Connect Core 1.0 §3.1.3.7: ID tokens signed with the client's registered algorithm",
                message: format!(
                    "client {} ({}) asks for {} ID tokens, and no {} key is in force",
                    c.id,
                    c.name,
                    alg.as_str(),
                    alg.as_str()
                ),
                fix: format!("tessera-admin key rotate --now --algorithm {}", alg.as_str()),
            })
        })
        .collect()
}

/// The signing key's age.
fn key_findings(ctx: &Context, stored: &[StoredKey], now: UnixMs) -> Vec<Finding> {
    let max_age = ctx.settings.keys.max_age;
    let states = keys::states(stored, now, ctx.settings.key_retention());
    let Some(signing) = stored
        .iter()
        .zip(&states)
        .find(|(_, s)| **s == KeyState::Signing)
        .map(|(k, _)| k)
    else {
        return Vec::new();
    };
    // A rotation already under way (a pending key) fixes it.
    let pending = states.contains(&KeyState::Pending);
    if now.since(signing.created_at) > max_age && !pending {
        return vec![Finding {
            check: "old_signing_key",
            severity: Severity::Warning,
            rule: "RFC 7517 §8.1; Tessera: keys.max_age",
            message: format!(
                "the signing key {} is {} days old (keys.max_age {})",
                signing.kid,
                days(now.since(signing.created_at)),
                human(max_age)
            ),
            fix: "tessera-admin key rotate".to_owned(),
        }];
    }
    Vec::new()
}

/// Whole days in `d`, for findings that speak of age.
fn days(d: Duration) -> u64 {
    d.as_secs() / 86_400
}
