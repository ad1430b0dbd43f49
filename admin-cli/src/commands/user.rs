use std::io::{BufRead, IsTerminal};

use anyhow::Context as _;
use clap::Subcommand;
use serde::Serialize;
use tessera::domain::password::PasswordHasher;
use tessera::domain::profile::{self, ProfileChange};
use tessera::domain::second_factor::{self, ResetWhat};
use tessera::domain::user::{self, Username};
use tessera::domain::{browser, client};
use tessera::store::models::{Consent, TokenFamily, User};

use tessera::domain::audit::AuditKind;
use tessera::domain::resource::Targets;
use tessera::value::{ClientId, UserId};

use super::{Confirm, Context};
use crate::output::{confirm, emit, rfc3339, Table};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is prompted for (without echo) unless --password-stdin
    Create {
        username: String,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// Change what apps are told about a user (OpenID Connect `name`, `email`)
    Update {
        username: String,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// List users
    List,
    /// Show one user
    Show { username: String },
    /// Set a new password; revokes the user's active token families
    SetPassword {
        username: String,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// Disable a user: sign-in and refresh stop at once; revokes the user's active families
    Disable {
        username: String,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// Enable a disabled user
    Enable { username: String },
    /// List the clients a user has allowed, with the scopes
    Consents { username: String },
    /// Forget a user's consent for a client: the consent page shows again next time
    RevokeConsent {
        username: String,
        #[arg(allow_hyphen_values = true)]
        client_id: ClientId,
    },
    /// A user's second factors: show them (no secrets), or reset them
    Mfa {
        #[command(subcommand)]
        command: MfaCommand,
    },
    /// Clear the failed sign-in counter that throttles a username
    Unlock {
        username: String,
        /// Also clear the counter of this client IP address
        #[arg(long, value_name = "ADDRESS")]
        ip: Option<std::net::IpAddr>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MfaCommand {
    /// The user's passkeys, authenticator app and how many recovery codes are left
    Show { username: String },
    /// Remove the user's passkeys, authenticator app and/or recovery codes (all three without
    /// a flag), and end their sessions and token families: for a user who lost their phone
    Reset {
        username: String,
        /// Remove every passkey
        #[arg(long)]
        passkeys: bool,
        /// Remove the authenticator app
        #[arg(long)]
        totp: bool,
        /// Remove the recovery codes
        #[arg(long)]
        recovery_codes: bool,
        #[command(flatten)]
        confirm: Confirm,
    },
}

/// What apps may be told about a user (released by the `profile` and `email` scopes).
#[derive(Debug, clap::Args)]
pub struct ProfileArgs {
    /// The user's full name ("" removes it)
    #[arg(long)]
    name: Option<String>,
    /// The user's email address ("" removes it); a new address is unverified unless
    /// --email-verified true
    #[arg(long)]
    email: Option<String>,
    /// Whether the address is known to be the user's
    #[arg(long, value_name = "BOOL")]
    email_verified: Option<bool>,
}

impl ProfileArgs {
    fn change(self) -> ProfileChange {
        ProfileChange {
            name: self.name,
            email: self.email,
            email_verified: self.email_verified,
        }
    }
}

/// The JSON shape of a user.
#[derive(Serialize)]
struct UserView {
    id: UserId,
    username: String,
    name: Option<String>,
    email: Option<String>,
    email_verified: bool,
    created_at: String,
    disabled_at: Option<String>,
    active_families: i64,
    /// Failed sign-ins in the current throttling window.
    failed_logins: i64,
    /// Whether sign-ins for this username are refused now (`user unlock` clears it).
    locked: bool,
}

fn view(ctx: &mut Context, u: &User) -> anyhow::Result<UserView> {
    let policy = ctx.settings.throttle_policy();
    let now = ctx.clock.now();
    let conn = ctx.conn()?;
    let active_families = TokenFamily::count_active(conn, Some(&u.id), None, now)?;
    let failed_logins = policy.failures(conn, &u.username, now)?;
    Ok(UserView {
        id: u.id.clone(),
        username: u.username.clone(),
        name: u.name.clone(),
        email: u.email.clone(),
        email_verified: u.email_verified,
        created_at: rfc3339(u.created_at),
        disabled_at: u.disabled_at.map(rfc3339),
        active_families,
        failed_logins,
        locked: policy.locked(failed_logins),
    })
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("no terminal to prompt for the password: use --password-stdin");
    }
    let first = rpassword::prompt_password("Password: ")?;
    let again = rpassword::prompt_password("Password (again): ")?;
    if first != again {
        anyhow::bail!("the passwords do not match");
    }
    Ok(first)
}

fn hasher(ctx: &Context) -> anyhow::Result<PasswordHasher> {
    Ok(PasswordHasher::new(&ctx.settings.hash_policy(Some(1)))?)
}

/// The JSON shape of a consent.
#[derive(Serialize)]
struct ConsentView {
    client_id: ClientId,
    client_name: Option<String>,
    scope: String,
    /// The resource servers (RFC 8707) the consent covers.
    resources: Vec<String>,
    granted_at: String,
}

#[derive(Serialize)]
struct Changed {
    username: String,
    revoked_families: usize,
}

pub fn run(ctx: &mut Context, cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Create {
            username,
            password_stdin,
            profile,
        } => create(ctx, username, password_stdin, profile.change()),
        UserCommand::Update { username, profile } => update(ctx, username, profile.change()),
        UserCommand::List => list(ctx),
        UserCommand::Show { username } => show(ctx, username),
        UserCommand::SetPassword {
            username,
            password_stdin,
            confirm: c,
        } => set_password(ctx, username, password_stdin, c),
        UserCommand::Disable {
            username,
            confirm: c,
        } => disable(ctx, username, c),
        UserCommand::Enable { username } => enable(ctx, username),
        UserCommand::Consents { username } => consents(ctx, username),
        UserCommand::RevokeConsent {
            username,
            client_id,
        } => revoke_consent(ctx, username, client_id),
        UserCommand::Unlock { username, ip } => unlock(ctx, username, ip),
        UserCommand::Mfa {
            command: MfaCommand::Show { username },
        } => mfa_show(ctx, username),
        UserCommand::Mfa {
            command:
                MfaCommand::Reset {
                    username,
                    passkeys,
                    totp,
                    recovery_codes,
                    confirm,
                },
        } => {
            // No flag: all of them.
            let all = !(passkeys || totp || recovery_codes);
            let what = ResetWhat {
                totp: totp || all,
                recovery_codes: recovery_codes || all,
                passkeys: passkeys || all,
            };
            mfa_reset(ctx, username, what, confirm)
        }
    }
}

fn create(
    ctx: &mut Context,
    username: String,
    password_stdin: bool,
    profile: ProfileChange,
) -> anyhow::Result<()> {
    let clock = ctx.clock.clone();
    let username = Username::parse(&username)?;
    // Checked before the password is asked for.
    profile.for_new_user()?;
    let password = read_password(password_stdin)?;
    let hasher = hasher(ctx)?;
    let user = user::create(ctx.conn()?, &hasher, &username, &password, &profile, &clock)?;
    ctx.audit(
        AuditKind::UserCreated,
        Some(user.id.as_str()),
        Some(&user.username),
    )?;
    let v = view(ctx, &user)?;
    emit(ctx.output, &v, || {
        format!("created user {} (id {})", v.username, v.id)
    })
}

fn list(ctx: &mut Context) -> anyhow::Result<()> {
    let users = User::list(ctx.conn()?)?;
    let views = users
        .iter()
        .map(|u| view(ctx, u))
        .collect::<anyhow::Result<Vec<_>>>()?;
    emit(ctx.output, &views, || {
        let mut t = Table::new(&["USERNAME", "ID", "STATE", "FAMILIES", "CREATED"]);
        for v in &views {
            t.row(vec![
                v.username.clone(),
                v.id.to_string(),
                (if v.disabled_at.is_some() {
                    "disabled"
                } else {
                    "enabled"
                })
                .to_owned(),
                v.active_families.to_string(),
                v.created_at.clone(),
            ]);
        }
        t.render()
    })
}

fn update(ctx: &mut Context, username: String, change: ProfileChange) -> anyhow::Result<()> {
    let clock = ctx.clock.clone();
    let user = profile::update(ctx.conn()?, &username, &change, &clock)?;
    ctx.audit(
        AuditKind::UserUpdated,
        Some(user.id.as_str()),
        Some(&user.username),
    )?;
    let v = view(ctx, &user)?;
    emit(ctx.output, &v, || format!("updated user {}", v.username))
}

fn show(ctx: &mut Context, username: String) -> anyhow::Result<()> {
    let u = user::by_name(ctx.conn()?, &username)?;
    let v = view(ctx, &u)?;
    emit(ctx.output, &v, || {
        format!(
                "username         {}\nid               {}\nname             {}\nemail            {}\ncreated_at       {}\nstate            {}{}\nactive_families  {}\nfailed_logins    {}",
                v.username,
                v.id,
                v.name.as_deref().unwrap_or("-"),
                v.email.as_deref().map_or_else(|| "-".to_owned(), |e| format!("{e} ({})", if v.email_verified { "verified" } else { "not verified" })),
                v.created_at,
                v.disabled_at.as_ref().map_or_else(|| "enabled".to_owned(), |d| format!("disabled since {d}")),
                if v.locked { ", locked (too many failed sign-ins)" } else { "" },
                v.active_families,
                v.failed_logins,
            )
    })
}

fn set_password(
    ctx: &mut Context,
    username: String,
    password_stdin: bool,
    c: Confirm,
) -> anyhow::Result<()> {
    let clock = ctx.clock.clone();
    let actor = tessera::domain::audit::admin_actor();
    user::by_name(ctx.conn()?, &username)?;
    confirm(
        c.yes,
        &format!("change the password of {username} and revoke their token families"),
    )?;
    let password = read_password(password_stdin)?;
    let hasher = hasher(ctx)?;
    let revoked = user::set_password(ctx.conn()?, &hasher, &username, &password, &actor, &clock)?;
    ctx.audit(
        AuditKind::UserPasswordChanged,
        Some(&username),
        Some(&format!("{revoked} families revoked")),
    )?;
    emit(
        ctx.output,
        &Changed {
            username: username.clone(),
            revoked_families: revoked,
        },
        || format!("password of {username} changed; {revoked} active token families revoked"),
    )
}

fn disable(ctx: &mut Context, username: String, c: Confirm) -> anyhow::Result<()> {
    let clock = ctx.clock.clone();
    let actor = tessera::domain::audit::admin_actor();
    user::by_name(ctx.conn()?, &username)?;
    confirm(
        c.yes,
        &format!("disable user {username} and revoke their token families"),
    )?;
    let revoked = user::set_disabled(ctx.conn()?, &username, true, &actor, &clock)?;
    ctx.audit(
        AuditKind::UserDisabled,
        Some(&username),
        Some(&format!("{revoked} families revoked")),
    )?;
    emit(
        ctx.output,
        &Changed {
            username: username.clone(),
            revoked_families: revoked,
        },
        || format!("disabled {username}; {revoked} active token families revoked"),
    )
}

fn enable(ctx: &mut Context, username: String) -> anyhow::Result<()> {
    let clock = ctx.clock.clone();
    let actor = tessera::domain::audit::admin_actor();
    user::set_disabled(ctx.conn()?, &username, false, &actor, &clock)?;
    ctx.audit(AuditKind::UserEnabled, Some(&username), None)?;
    emit(
        ctx.output,
        &Changed {
            username: username.clone(),
            revoked_families: 0,
        },
        || format!("enabled {username}"),
    )
}

fn consents(ctx: &mut Context, username: String) -> anyhow::Result<()> {
    let conn = ctx.conn()?;
    let u = user::by_name(conn, &username)?;
    let names: std::collections::HashMap<ClientId, String> = client::list(conn)?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    let views: Vec<ConsentView> = Consent::for_user(conn, &u.id)?
        .into_iter()
        .map(|c| ConsentView {
            client_name: names.get(&c.client_id).cloned(),
            client_id: c.client_id,
            scope: c.scope,
            resources: Targets::stored(c.resources.as_deref()).uris().to_vec(),
            granted_at: rfc3339(c.granted_at),
        })
        .collect();
    emit(ctx.output, &views, || {
        let mut t = Table::new(&["CLIENT_ID", "CLIENT", "SCOPE", "GRANTED"]);
        for v in &views {
            t.row(vec![
                v.client_id.to_string(),
                v.client_name.clone().unwrap_or_default(),
                v.scope.clone(),
                v.granted_at.clone(),
            ]);
        }
        t.render()
    })
}

fn revoke_consent(ctx: &mut Context, username: String, client_id: ClientId) -> anyhow::Result<()> {
    let conn = ctx.conn()?;
    let u = user::by_name(conn, &username)?;
    if !browser::forget_consent(conn, &u.id, &client_id)? {
        anyhow::bail!("{username} has no consent for client {client_id}");
    }
    ctx.audit(
        AuditKind::ConsentRevoked,
        Some(&username),
        Some(&format!("client {client_id}")),
    )?;
    #[derive(Serialize)]
    struct Revoked {
        username: String,
        client_id: ClientId,
    }
    emit(
        ctx.output,
        &Revoked {
            username: username.clone(),
            client_id: client_id.clone(),
        },
        || format!("{username} will be asked again before client {client_id} gets access"),
    )
}

fn unlock(ctx: &mut Context, username: String, ip: Option<std::net::IpAddr>) -> anyhow::Result<()> {
    let policy = ctx.settings.throttle_policy();
    let conn = ctx.conn()?;
    let mut had = user::unlock(conn, &username)?;
    if let Some(ip) = ip {
        had |= policy.unlock_ip(conn, &ip.to_string())?;
    }
    ctx.audit(
        AuditKind::UserUnlocked,
        Some(&username),
        ip.map(|i| format!("and address {i}")).as_deref(),
    )?;
    #[derive(Serialize)]
    struct Unlocked {
        username: String,
        cleared: bool,
    }
    emit(
        ctx.output,
        &Unlocked {
            username: username.clone(),
            cleared: had,
        },
        || {
            if had {
                format!("cleared the failed sign-in counter of {username}")
            } else {
                format!("{username} had no failed sign-ins to clear")
            }
        },
    )
}

fn mfa_show(ctx: &mut Context, username: String) -> anyhow::Result<()> {
    let conn = ctx.conn()?;
    let u = user::by_name(conn, &username)?;
    let factors = second_factor::factors(conn, &u.id)?;
    #[derive(Serialize)]
    struct Factors {
        username: String,
        /// When the authenticator app was set up; `null`: none.
        totp_since: Option<String>,
        totp_last_used: Option<String>,
        recovery_codes_left: i64,
        passkeys: Vec<Passkey>,
    }
    #[derive(Serialize)]
    struct Passkey {
        name: String,
        created_at: String,
        last_used_at: Option<String>,
    }
    let shown = Factors {
        username: username.clone(),
        totp_since: factors.totp.map(|(since, _)| rfc3339(since)),
        totp_last_used: factors.totp.and_then(|(_, used)| used.map(rfc3339)),
        recovery_codes_left: factors.recovery_codes_left,
        passkeys: factors
            .passkeys
            .iter()
            .map(|p| Passkey {
                name: p.name.clone(),
                created_at: rfc3339(p.created_at),
                last_used_at: p.last_used_at.map(rfc3339),
            })
            .collect(),
    };
    emit(ctx.output, &shown, || {
        let app = match (&shown.totp_since, &shown.totp_last_used) {
            (Some(since), Some(used)) => format!("set up {since}, last used {used}"),
            (Some(since), None) => format!("set up {since}, never used"),
            _ => "none".to_owned(),
        };
        let mut text = format!(
            "{username}\n  authenticator app  {app}\n  recovery codes     {} left\n  passkeys           {}",
            shown.recovery_codes_left,
            shown.passkeys.len()
        );
        for p in &shown.passkeys {
            let used = p.last_used_at.as_deref().unwrap_or("never used");
            text.push_str(&format!(
                "\n    {}    added {}, last used {used}",
                p.name, p.created_at
            ));
        }
        text
    })
}

fn mfa_reset(
    ctx: &mut Context,
    username: String,
    which: ResetWhat,
    c: Confirm,
) -> anyhow::Result<()> {
    let clock = ctx.clock.clone();
    let actor = tessera::domain::audit::admin_actor();
    let u = user::by_name(ctx.conn()?, &username)?;
    confirm(
        c.yes,
        &format!(
            "reset the second factors of {username} and end their sessions and token families"
        ),
    )?;
    let done = second_factor::reset(ctx.conn()?, &u.id, which, &actor, clock.now())?;
    let detail = format!(
        "{} passkeys removed; authenticator app {}; {} recovery codes removed; {} families revoked",
        done.passkeys_removed,
        if done.totp_removed {
            "removed"
        } else {
            "kept or none"
        },
        done.recovery_codes_removed,
        done.families_revoked
    );
    ctx.audit(
        AuditKind::UserFactorRemoved,
        Some(u.id.as_str()),
        Some(&detail),
    )?;
    #[derive(Serialize)]
    struct ResetView {
        username: String,
        passkeys_removed: usize,
        totp_removed: bool,
        recovery_codes_removed: usize,
        revoked_families: usize,
    }
    emit(
        ctx.output,
        &ResetView {
            username: username.clone(),
            passkeys_removed: done.passkeys_removed,
            totp_removed: done.totp_removed,
            recovery_codes_removed: done.recovery_codes_removed,
            revoked_families: done.families_revoked,
        },
        || format!("second factors of {username} reset: {detail}"),
    )
}
