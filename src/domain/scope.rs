//! Scopes (RFC 6749 §3.3): a set of space-delimited tokens.

use std::collections::BTreeSet;
use std::fmt;

/// A validated set of scope tokens, kept sorted so equal sets print equally.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope(BTreeSet<String>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a valid scope token")]
pub struct InvalidScope(pub String);

/// The scope that makes a grant an OpenID Connect sign-in (Core §3.1.2.1): its tokens come
/// with an ID token.
pub const OPENID: &str = "openid";

/// Longest scope string accepted, so a request cannot make us build huge sets.
const MAX_LEN: usize = 1024;

impl Scope {
    /// Parses `a b c`. Tokens are printable ASCII without `"`, `\` and space (§3.3).
    pub fn parse(text: &str) -> Result<Self, InvalidScope> {
        if text.len() > MAX_LEN {
            let head: String = text.chars().take(32).collect();
            return Err(InvalidScope(format!("{head}…")));
        }
        let mut set = BTreeSet::new();
        for token in text.split(' ').filter(|t| !t.is_empty()) {
            let valid = token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
            if !valid {
                return Err(InvalidScope(token.to_owned()));
            }
            set.insert(token.to_owned());
        }
        Ok(Self(set))
    }

    /// A scope read back from the database. It was parsed on the way in; one that no longer
    /// parses (a database edited by hand) grants nothing.
    pub fn stored(text: &str) -> Self {
        Self::parse(text).unwrap_or_default()
    }

    /// The tokens in both.
    pub fn intersection(&self, other: &Scope) -> Scope {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    /// Every token of either.
    pub fn union(&self, other: &Scope) -> Scope {
        Self(self.0.union(&other.0).cloned().collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.iter().any(|s| s == scope)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for token in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(token)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let s = Scope::parse("write  read read").unwrap();
        assert_eq!(s.to_string(), "read write");
        assert!(Scope::parse("read").unwrap().is_subset_of(&s));
        assert!(!Scope::parse("admin").unwrap().is_subset_of(&s));
    }

    #[test]
    fn refuses_bad_tokens() {
        assert!(Scope::parse("a\"b").is_err());
        assert!(Scope::parse("a\\b").is_err());
        assert!(Scope::parse("é").is_err());
        assert!(Scope::parse(&"a".repeat(2000)).is_err());
    }
}
