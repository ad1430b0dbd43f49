//! One type for every secret value: the configured master secret and database URL, refresh
//! tokens, client secrets, session ids and authorization codes.

use serde::{Deserialize, Serialize, Serializer};

use crate::domain::crypto::ct_eq;

/// A secret in plaintext: handed to its owner, never logged or stored. `Debug` prints nothing
/// of it, and equality takes the same time wherever two values differ.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The plaintext, for the one place that must hand it over or hash it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Serialized as `REDACTED`: a secret that ends up in JSON (`config check`) shows it is set,
/// never what it is.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("REDACTED")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        ct_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl Eq for Secret {}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_shows_nothing_and_equality_compares_the_value() {
        let s = Secret::new("tsr_very-secret");
        assert!(!format!("{s:?}").contains("very-secret"));
        assert!(!format!("{:?}", Some(&s)).contains("very-secret"));
        assert_eq!(s, Secret::new("tsr_very-secret"));
        assert_ne!(s, Secret::new("tsr_very-secreT"));
        assert_ne!(s, Secret::new("tsr_very-secret!"));
    }
}
