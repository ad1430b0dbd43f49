//! Resource indicators (RFC 8707): the APIs an access token is meant for.
//!
//! An administrator registers each resource server by its URI with the scopes it accepts. A
//! request that names resources (`resource`, repeatable) gets an access token whose `aud` is
//! those URIs, with only the scopes they accept; a grant (a family, a code) keeps the resources
//! it was made for, and a later token request may narrow to some of them, never widen. A
//! request that names none gets what it always got: `aud` is the issuer.

use crate::domain::scope::Scope;
use crate::store::models::ResourceRow;
use crate::store::AnyConnection;
use crate::value::UnixMs;

/// At most this many resources in one request.
pub const MAX_PER_REQUEST: usize = 8;

/// Longest resource URI accepted.
const MAX_URI_LEN: usize = 512;

/// Why a `resource` was refused: RFC 8707 §2's `invalid_target`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("resource `{0}` is not an absolute URI without a fragment")]
    Malformed(String),
    #[error("resource `{0}` is not known to this server")]
    Unknown(String),
    #[error("resource `{0}` was not part of the grant")]
    NotGranted(String),
    #[error("at most {MAX_PER_REQUEST} resources per request")]
    TooMany,
}

/// Why a registration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("resource `{0}` is already registered")]
    Exists(String),
    #[error("a resource needs at least one scope")]
    NoScope,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// A resource URI as RFC 8707 §2 wants it: absolute, no fragment. Compared as written, like
/// redirect URIs.
pub fn parse_uri(text: &str) -> Result<String, TargetError> {
    let shown = || TargetError::Malformed(text.chars().take(64).collect());
    if text.is_empty()
        || text.len() > MAX_URI_LEN
        || text.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(shown());
    }
    let url = url::Url::parse(text).map_err(|_| shown())?;
    if url.fragment().is_some() || text.contains('#') {
        return Err(shown());
    }
    Ok(text.to_owned())
}

/// A set of resource URIs, sorted: the `aud` of a token, the resources of a grant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets(Vec<String>);

impl Targets {
    /// As stored in a family or a code (`None`: no resources).
    pub fn stored(text: Option<&str>) -> Targets {
        Targets::from_uris(text.unwrap_or("").split_whitespace().map(str::to_owned))
    }

    fn from_uris(uris: impl IntoIterator<Item = String>) -> Targets {
        let mut uris: Vec<String> = uris.into_iter().collect();
        uris.sort();
        uris.dedup();
        Targets(uris)
    }

    /// The stored form: space-separated, `None` when empty.
    pub fn to_stored(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| self.0.join(" "))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn uris(&self) -> &[String] {
        &self.0
    }

    /// Whether every resource here is also in `other`.
    pub fn is_subset_of(&self, other: &Targets) -> bool {
        self.0.iter().all(|uri| other.0.contains(uri))
    }

    pub fn union(&self, other: &Targets) -> Targets {
        Targets::from_uris(self.0.iter().chain(&other.0).cloned())
    }
}

/// Resources named in a request, each registered: their URIs and every scope they accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    pub targets: Targets,
    pub accepted: Scope,
}

impl Requested {
    /// The part of `scope` these resources accept; `None` when they accept none of it.
    pub fn scope_for(&self, scope: &Scope) -> Option<Scope> {
        Some(scope.intersection(&self.accepted)).filter(|s| !s.is_empty())
    }

    /// Refuses any resource outside `granted` (RFC 8707 §2.2: a token request may narrow the
    /// resources of its grant, not widen them).
    pub fn within(&self, granted: &Targets) -> Result<(), TargetError> {
        match self.targets.0.iter().find(|uri| !granted.0.contains(uri)) {
            Some(uri) => Err(TargetError::NotGranted(uri.chars().take(64).collect())),
            None => Ok(()),
        }
    }
}

/// Checks only the form of a request's `resource` values: how many, and each an absolute URI
/// without a fragment. Says nothing of which are registered.
pub fn check_form(values: &[String]) -> Result<(), TargetError> {
    if values.len() > MAX_PER_REQUEST {
        return Err(TargetError::TooMany);
    }
    values.iter().try_for_each(|v| parse_uri(v).map(drop))
}

/// Checks the `resource` values of a request: `None` when there are none, otherwise every one
/// well-formed and registered.
pub fn lookup(
    conn: &mut AnyConnection,
    values: &[String],
) -> Result<Option<Requested>, LookupError> {
    if values.is_empty() {
        return Ok(None);
    }
    check_form(values)?;
    let uris = values
        .iter()
        .map(|v| parse_uri(v))
        .collect::<Result<Vec<_>, _>>()?;
    let targets = Targets::from_uris(uris);
    let found = ResourceRow::find_all(conn, &targets.0)?;
    if let Some(missing) = targets
        .0
        .iter()
        .find(|uri| !found.iter().any(|r| &r.uri == *uri))
    {
        return Err(TargetError::Unknown(missing.chars().take(64).collect()).into());
    }
    let accepted = found.iter().fold(Scope::default(), |all, r| {
        all.union(&Scope::stored(&r.scopes))
    });
    Ok(Some(Requested { targets, accepted }))
}

/// Why [`lookup`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Registers a resource server.
pub fn register(
    conn: &mut AnyConnection,
    uri: &str,
    scope: &Scope,
    now: UnixMs,
) -> Result<ResourceRow, ResourceError> {
    let uri = parse_uri(uri)?;
    if scope.is_empty() {
        return Err(ResourceError::NoScope);
    }
    if ResourceRow::find(conn, &uri)?.is_some() {
        return Err(ResourceError::Exists(uri));
    }
    let row = ResourceRow {
        uri,
        scopes: scope.to_string(),
        created_at: now,
    };
    row.insert(conn)?;
    Ok(row)
}

/// Removes a resource server; returns whether it was registered. Grants made for it keep it
/// as their audience until they end; no new grant or narrowing can name it.
pub fn remove(conn: &mut AnyConnection, uri: &str) -> diesel::QueryResult<bool> {
    Ok(ResourceRow::delete(conn, uri)? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_uris_are_absolute_without_fragments() {
        for good in [
            "https://api.example.com",
            "https://api.example.com/v1",
            "urn:example:calendar",
        ] {
            assert_eq!(parse_uri(good).as_deref(), Ok(good));
        }
        for bad in [
            "",
            "/relative",
            "api.example.com",
            "https://api.example.com/#frag",
            "https://api.example.com/#",
            "https://api.example.com/ x",
        ] {
            assert!(parse_uri(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn targets_are_sorted_and_round_trip_through_storage() {
        let t = Targets::from_uris(["https://b".to_owned(), "https://a".to_owned()]);
        assert_eq!(t.to_stored().as_deref(), Some("https://a https://b"));
        assert_eq!(Targets::stored(t.to_stored().as_deref()), t);
        assert_eq!(Targets::stored(None).to_stored(), None);
        let narrowed = Requested {
            targets: Targets::from_uris(["https://a".to_owned()]),
            accepted: Scope::default(),
        };
        assert!(narrowed.within(&t).is_ok());
        assert!(narrowed.within(&Targets::default()).is_err());
    }
}
