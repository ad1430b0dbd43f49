//! Form parameters of an OAuth2 request (RFC 6749 §3.1–3.2).

use std::collections::HashMap;

use crate::grant::OAuthError;

/// Most parameters a request may carry.
pub const MAX_PARAMS: usize = 32;
/// Longest parameter value accepted.
pub const MAX_VALUE_LEN: usize = 4096;

/// Parameters with empty values dropped (they count as omitted, §3.1) and repeats refused (§3.2),
/// except `resource`, which RFC 8707 §2 lets a client repeat.
#[derive(Default)]
pub struct Params(HashMap<String, String>, Vec<String>);

/// The one parameter that may be repeated.
const RESOURCE: &str = "resource";

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be passwords, secrets or tokens: print only the names.
        let resource = (!self.1.is_empty()).then_some(&RESOURCE);
        f.debug_set()
            .entries(self.0.keys().map(String::as_str).chain(resource.copied()))
            .finish()
    }
}

impl Params {
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        Self::parse_with_limit(body, MAX_VALUE_LEN)
    }

    /// As [`Params::parse`], with values up to `max_value` bytes (the pages' forms carry a
    /// whole authorization request in one field).
    pub fn parse_with_limit(body: &[u8], max_value: usize) -> Result<Self, OAuthError> {
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut resources = Vec::new();
        let mut count = 0;
        for (key, value) in form_urlencoded::parse(body) {
            count += 1;
            if count > MAX_PARAMS {
                return Err(OAuthError::InvalidRequest(format!(
                    "more than {MAX_PARAMS} parameters"
                )));
            }
            if value.len() > max_value || key.len() > 64 {
                return Err(OAuthError::InvalidRequest(format!(
                    "parameter `{}` is too long",
                    key.chars().take(64).collect::<String>()
                )));
            }
            if key == RESOURCE {
                if !value.is_empty() {
                    resources.push(value.into_owned());
                }
                continue;
            }
            if seen.insert(key.to_string(), value.into_owned()).is_some() {
                return Err(OAuthError::InvalidRequest(format!(
                    "parameter `{key}` is repeated"
                )));
            }
        }
        seen.retain(|_, v| !v.is_empty());
        Ok(Self(seen, resources))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Every `resource` value (RFC 8707), in the order given.
    pub fn resources(&self) -> &[String] {
        &self.1
    }

    pub fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::InvalidRequest(format!("missing parameter `{name}`")))
    }

    pub fn insert(&mut self, name: &str, value: &str) {
        self.0.insert(name.to_owned(), value.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused_even_when_empty() {
        assert_eq!(
            Params::parse(b"a=1&a=2").unwrap_err().code(),
            "invalid_request"
        );
        assert_eq!(
            Params::parse(b"a=&a=2").unwrap_err().code(),
            "invalid_request"
        );
    }

    #[test]
    fn empty_values_count_as_omitted() {
        let p = Params::parse(b"scope=&grant_type=password").unwrap();
        assert_eq!(p.get("scope"), None);
        assert_eq!(p.get("grant_type"), Some("password"));
    }

    #[test]
    fn debug_hides_values() {
        let p = Params::parse(b"password=hunter2").unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
