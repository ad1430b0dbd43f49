//! The user's own account, as the account page shows it: the devices they are signed in on
//! (their live token families), the apps they allowed, their recent security activity; and
//! what they may do about each. Every family this ends goes through [`revocation`], the one
//! revocation path, so the apps hear of it as they do of any other (back-channel logout).

use std::collections::{HashMap, HashSet};

use crate::domain::audit::{AuditKind, Event};
use crate::domain::crypto::MasterKey;
use crate::domain::request::RequestMeta;
use crate::domain::revocation::{self, Families, Revocation, PASSWORD_CHANGED};
use crate::domain::secret::Secret;
use crate::domain::{browser, client};
use crate::store::models::{
    AuditEvent, Consent, FamilyFilter, RefreshToken, Session, TokenFamily, User,
};
use crate::store::{write_tx, AnyConnection};
use crate::value::{Amr, ClientId, FamilyId, UnixMs, UserId};

/// `revoked_reason` of a family the user signed out from the account page.
pub const USER_SIGNED_OUT: &str = "user_signed_out";
/// `revoked_reason` of the families of an app the user removed access from.
pub const ACCESS_REMOVED: &str = "user_removed_access";

/// The most devices and events a page lists.
const MAX_DEVICES: i64 = 100;
const MAX_EVENTS: i64 = 30;
/// The most recent families whose events the activity looks at.
const MAX_FAMILIES: i64 = 500;

/// One device: a live token family of the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub family_id: FamilyId,
    /// The app: the client's name.
    pub app: String,
    /// The user agent of its latest token, in words: "ExampleApp 2.1 on Android 14".
    pub device: String,
    /// The address of its latest token.
    pub ip: Option<String>,
    pub signed_in_at: UnixMs,
    /// When its latest token was issued.
    pub last_used_at: UnixMs,
    /// Begun in the browser session looking at the page.
    pub this_browser: bool,
}

/// The user's live families, most recently used first. `sid`: the public id of the browser
/// session looking at the page.
pub fn devices(
    conn: &mut AnyConnection,
    user_id: &UserId,
    sid: &str,
    now: UnixMs,
) -> diesel::QueryResult<Vec<Device>> {
    let filter = FamilyFilter {
        user_id: Some(user_id.clone()),
        active: Some(true),
        limit: MAX_DEVICES,
        ..FamilyFilter::default()
    };
    let families = TokenFamily::list(conn, &filter, now)?;
    let ids: Vec<FamilyId> = families.iter().map(|f| f.id.clone()).collect();
    let mut latest: HashMap<FamilyId, RefreshToken> = RefreshToken::active_in_families(conn, &ids)?
        .into_iter()
        .map(|t| (t.family_id.clone(), t))
        .collect();
    let mut names = ClientNames::default();
    let mut devices = Vec::new();
    for family in families {
        let (ip, agent, last_used_at) = match latest.remove(&family.id) {
            Some(t) => (t.client_ip, t.user_agent, t.issued_at),
            None => (None, None, family.created_at),
        };
        devices.push(Device {
            app: names.of(conn, &family.client_id)?,
            device: describe_agent(agent.as_deref()),
            ip,
            signed_in_at: family.signed_in_at(),
            last_used_at,
            this_browser: family.sid.as_deref() == Some(sid),
            family_id: family.id,
        });
    }
    devices.sort_by_key(|d| std::cmp::Reverse(d.last_used_at));
    Ok(devices)
}

/// Client names, each looked up once.
#[derive(Default)]
struct ClientNames(HashMap<ClientId, String>);

impl ClientNames {
    fn of(&mut self, conn: &mut AnyConnection, id: &ClientId) -> diesel::QueryResult<String> {
        if let Some(name) = self.0.get(id) {
            return Ok(name.clone());
        }
        let name = client::get(conn, id)?.map_or_else(|| "An app".to_owned(), |c| c.name);
        self.0.insert(id.clone(), name.clone());
        Ok(name)
    }
}

/// Who acts, from where: the signed-in user on the account page.
pub struct Actor<'a> {
    pub user_id: &'a UserId,
    pub meta: &'a RequestMeta,
}

impl Actor<'_> {
    /// Records an event the user caused, about themselves.
    pub fn audit(&self, c: &mut AnyConnection, kind: AuditKind, detail: &str, now: UnixMs) {
        Event {
            kind,
            actor: Some(self.user_id.as_str()),
            subject: Some(self.user_id.as_str()),
            client_ip: self.meta.client_ip.as_deref(),
            detail: Some(detail),
            request: self.meta.request.as_ref(),
        }
        .record(c, now);
    }

    fn revocation<'b>(&'b self, reason: &'b str, about: &'b str) -> Revocation<'b> {
        Revocation {
            client_ip: self.meta.client_ip.as_deref(),
            request: self.meta.request.as_ref(),
            about: Some(about),
            subject: Some(self.user_id.as_str()),
            ..Revocation::new(reason, Some(self.user_id.as_str()))
        }
    }
}

/// Signs one of the user's devices out: revokes the family, if it is the user's and lives.
/// Returns whether it did.
pub fn sign_out_device(
    conn: &mut AnyConnection,
    actor: &Actor<'_>,
    family_id: &FamilyId,
    now: UnixMs,
) -> diesel::QueryResult<bool> {
    write_tx(conn, |c| {
        TokenFamily::lock(c, family_id)?;
        let Some(family) = TokenFamily::find(c, family_id)? else {
            return Ok(false);
        };
        if family.user_id != *actor.user_id {
            return Ok(false);
        }
        let why = Revocation {
            subject: None,
            ..actor.revocation(USER_SIGNED_OUT, "signed out by the user")
        };
        Ok(revocation::revoke_in(c, Families::One(family_id), &why, now)? > 0)
    })
}

/// Signs out every device of the user but those begun in the browser session `sid`.
/// Returns how many.
pub fn sign_out_others(
    conn: &mut AnyConnection,
    actor: &Actor<'_>,
    sid: &str,
    now: UnixMs,
) -> diesel::QueryResult<usize> {
    let why = actor.revocation(
        USER_SIGNED_OUT,
        "every other device, signed out by the user",
    );
    let families = Families::OfUserExceptSession {
        user_id: actor.user_id,
        sid,
    };
    revocation::revoke(conn, families, &why, now)
}

/// Sets the user's new password (`hash`, made by the caller), ends every browser session and
/// every token family of the user (whoever held them may have known the old password), and
/// starts a new session for the browser that changed it, carrying its sign-in (`signed_in`: how
/// and when), in one transaction. Returns how many families ended and the new session's cookie
/// value.
pub fn set_password(
    conn: &mut AnyConnection,
    master: &MasterKey,
    actor: &Actor<'_>,
    hash: &str,
    signed_in: (&Amr, UnixMs),
    now: UnixMs,
) -> diesel::QueryResult<(usize, Secret)> {
    write_tx(conn, |c| {
        User::set_password_hash(c, actor.user_id, hash)?;
        Session::delete_for_user(c, actor.user_id)?;
        let why = actor.revocation(PASSWORD_CHANGED, "every device, after a password change");
        let revoked = revocation::revoke_in(c, Families::OfUser(actor.user_id), &why, now)?;
        let detail = format!("changed on the account page; {revoked} families revoked");
        actor.audit(c, AuditKind::UserPasswordChanged, &detail, now);
        let session = browser::carry_session(c, master, actor.user_id, signed_in, now)?;
        Ok((revoked, session))
    })
}

/// An app the user allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub client_id: ClientId,
    pub name: String,
    /// What it was allowed, scope by scope.
    pub scopes: Vec<String>,
    pub granted_at: UnixMs,
}

/// The apps the user allowed (remembered consents), most recent first.
pub fn apps(conn: &mut AnyConnection, user_id: &UserId) -> diesel::QueryResult<Vec<App>> {
    let mut names = ClientNames::default();
    let mut apps = Vec::new();
    for consent in Consent::for_user(conn, user_id)? {
        apps.push(App {
            name: names.of(conn, &consent.client_id)?,
            scopes: consent
                .scope
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            granted_at: consent.granted_at,
            client_id: consent.client_id,
        });
    }
    apps.sort_by_key(|a| std::cmp::Reverse(a.granted_at));
    Ok(apps)
}

/// Removes an app's access: forgets the consent (the next sign-in asks again) and signs out
/// every device of the user in that app, in one transaction. Returns whether there was
/// anything to remove.
pub fn remove_access(
    conn: &mut AnyConnection,
    actor: &Actor<'_>,
    client_id: &ClientId,
    now: UnixMs,
) -> diesel::QueryResult<bool> {
    write_tx(conn, |c| {
        let forgot = Consent::delete(c, actor.user_id, client_id)?;
        let why = actor.revocation(ACCESS_REMOVED, "the app's access removed by the user");
        let families = Families::OfUserAtClient {
            user_id: actor.user_id,
            client_id,
        };
        let revoked = revocation::revoke_in(c, families, &why, now)?;
        if forgot {
            let detail = format!("client {client_id}; {revoked} families revoked");
            actor.audit(c, AuditKind::ConsentRevoked, &detail, now);
        }
        Ok(forgot || revoked > 0)
    })
}

/// One entry of the user's security activity, in plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub at: UnixMs,
    pub what: String,
    pub ip: Option<String>,
    /// Worth the user's attention: a failed sign-in, a copy of a sign-in used again.
    pub alarming: bool,
}

/// The user's recent security events, newest first: sign-ins and failed attempts, password
/// changes, devices signed out, and reuse detected on their families.
pub fn activity(
    conn: &mut AnyConnection,
    user_id: &UserId,
    username: &str,
) -> diesel::QueryResult<Vec<Activity>> {
    let families: HashSet<String> = TokenFamily::ids_of_user(conn, user_id, MAX_FAMILIES)?
        .into_iter()
        .map(|id| id.as_str().to_owned())
        .collect();
    let mut subjects: Vec<String> = vec![user_id.as_str().to_owned(), username.to_owned()];
    subjects.extend(families.iter().cloned());
    let mut names = ClientNames::default();
    let mut shown = Vec::new();
    for event in AuditEvent::about_any(conn, &subjects, MAX_EVENTS * 2)? {
        let about_user = event.subject.as_deref() == Some(user_id.as_str());
        // The username names the user only for the CLI's password change, which has no id.
        let about_name = event.subject.as_deref() == Some(username);
        // The actor of a sign-in or a replay is the client's id.
        let client = |names: &mut ClientNames, conn: &mut AnyConnection| match &event.actor {
            Some(a) => names.of(conn, &ClientId::from(a.as_str())),
            None => Ok("An app".to_owned()),
        };
        let (what, alarming) = match event.kind.as_str() {
            "login.success" if about_user => (signed_in_via(&event, client(&mut names, conn)?), false),
            "login.failure" if about_user => (
                "Someone tried to sign in with a wrong password".to_owned(),
                true,
            ),
            "user.password_changed" if about_user || about_name => {
                ("Your password was changed".to_owned(), false)
            }
            "user.factor_added" if about_user => (
                format!("You set up {}", event.detail.as_deref().unwrap_or("a second factor")),
                false,
            ),
            "user.factor_removed" if about_user && event.actor.as_deref() == Some(user_id.as_str()) => (
                format!("You removed {}", event.detail.as_deref().unwrap_or("a second factor")),
                true,
            ),
            "user.factor_removed" if about_user => (
                "An administrator reset your second factors and signed you out everywhere".to_owned(),
                true,
            ),
            "user.recovery_codes_issued" if about_user => {
                ("You got new recovery codes".to_owned(), false)
            }
            "refresh.reuse_detected" => (
                format!(
                    "A copy of a sign-in on {} was used again; we signed that device out to protect you",
                    client(&mut names, conn)?
                ),
                true,
            ),
            "family.revoked" if event.actor.as_deref() == Some(user_id.as_str()) => {
                let what = match event.detail.as_deref() {
                    Some(d) if d.contains(ACCESS_REMOVED) => "You removed an app's access",
                    _ => "You signed a device out",
                };
                (what.to_owned(), false)
            }
            _ => continue,
        };
        shown.push(Activity {
            at: event.occurred_at,
            what,
            ip: event.client_ip,
            alarming,
        });
        if shown.len() as i64 >= MAX_EVENTS {
            break;
        }
    }
    Ok(shown)
}

/// "Signed in to ExampleApp", or "Signed in on this page".
fn signed_in_via(event: &AuditEvent, client: String) -> String {
    match event.actor.as_deref() {
        Some("login page") => "Signed in on the sign-in page".to_owned(),
        Some("passkey") => "Signed in with a passkey".to_owned(),
        Some("second step") => "Confirmed it was you with a second factor".to_owned(),
        Some("account page") => "Confirmed your password on the account page".to_owned(),
        _ => format!("Signed in to {client}"),
    }
}

/// A user agent in words: "ExampleApp 2.1 on Android 14", "Firefox on Linux".
pub fn describe_agent(agent: Option<&str>) -> String {
    let Some(agent) = agent.map(str::trim).filter(|a| !a.is_empty()) else {
        return "Unknown device".to_owned();
    };
    let agent: String = agent
        .chars()
        .filter(|c| !c.is_control())
        .take(512)
        .collect();
    let os = operating_system(&agent);
    let what = if agent.starts_with("Mozilla/") {
        browser(&agent).map(str::to_owned)
    } else {
        agent.split_whitespace().next().map(|product| {
            let (name, version) = product.split_once('/').unwrap_or((product, ""));
            let version: Vec<&str> = version.split('.').take(2).collect();
            match version.join(".") {
                v if v.is_empty() => name.to_owned(),
                v => format!("{name} {v}"),
            }
        })
    };
    match (what, os) {
        (Some(what), Some(os)) => format!("{what} on {os}"),
        (Some(what), None) => what,
        (None, Some(os)) => format!("A browser on {os}"),
        (None, None) => "Unknown device".to_owned(),
    }
}

fn browser(agent: &str) -> Option<&'static str> {
    // Order matters: Edge and Opera name Chrome too, Chrome names Safari.
    [
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("Edg", "Edge"),
        ("OPR/", "Opera"),
        ("SamsungBrowser/", "Samsung Internet"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("Version/", "Safari"),
    ]
    .into_iter()
    .find(|(marker, _)| agent.contains(marker))
    .map(|(_, name)| name)
}

fn operating_system(agent: &str) -> Option<String> {
    let version_after = |marker: &str, sep: char| {
        agent.split_once(marker).map(|(_, rest)| {
            rest.trim_start()
                .split(|c: char| !(c.is_ascii_digit() || c == sep))
                .next()
                .unwrap_or_default()
                .split(sep)
                .next()
                .unwrap_or_default()
                .to_owned()
        })
    };
    let named = |name: &str, version: Option<String>| match version.filter(|v| !v.is_empty()) {
        Some(v) => format!("{name} {v}"),
        None => name.to_owned(),
    };
    if agent.contains("Android") {
        return Some(named("Android", version_after("Android", '.')));
    }
    if agent.contains("iPad") {
        return Some(named("iPadOS", version_after("OS ", '_')));
    }
    if agent.contains("iPhone") || agent.contains("iOS") {
        let version = version_after("OS ", '_').or_else(|| version_after("iOS", '.'));
        return Some(named("iOS", version));
    }
    [
        ("Windows", "Windows"),
        ("CrOS", "ChromeOS"),
        ("Mac OS X", "macOS"),
        ("Macintosh", "macOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(marker, _)| agent.contains(marker))
    .map(|(_, name)| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::describe_agent;

    #[test]
    fn user_agents_read_as_apps_and_browsers_on_systems() {
        let cases = [
            (
                "ExampleApp/2.1 (Android 14; Pixel 8)",
                "ExampleApp 2.1 on Android 14",
            ),
            (
                "ExampleApp/2.1.7 (iPhone; iOS 17.2)",
                "ExampleApp 2.1 on iOS 17",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
                "Firefox on Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/120.0.0.0 Mobile Safari/537.36",
                "Chrome on Android 14",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
                "Safari on iOS 17",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, \
                 like Gecko) Version/17.2 Safari/605.1.15",
                "Safari on macOS",
            ),
            ("curl/8.5.0", "curl 8.5"),
            ("okhttp", "okhttp"),
            ("", "Unknown device"),
        ];
        for (agent, words) in cases {
            assert_eq!(describe_agent(Some(agent)), words, "{agent}");
        }
        assert_eq!(describe_agent(None), "Unknown device");
    }
}
