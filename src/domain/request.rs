//! Who asked: what the HTTP layer knows of a request, handed down to the rules that record it.

/// Recorded with each refresh token (the family's lineage, incidents) and with each audit
/// event the request causes.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The request's ids, on its log lines and audit events.
    pub request: Option<RequestIds>,
}

/// A request's ids: the server's own (unguessable, the `X-Request-Id` of the answer) and,
/// kept apart, the one a trusted proxy sent (`upstream_request_id`), so that the proxy's
/// logs and ours line up without anyone choosing our id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestIds {
    pub own: String,
    pub upstream: Option<String>,
}

impl RequestMeta {
    pub fn new(client_ip: Option<String>, user_agent: Option<&str>) -> Self {
        // Bounded: the value is stored per token.
        let user_agent = user_agent.map(|ua| ua.chars().take(256).collect());
        Self {
            client_ip,
            user_agent,
            request: None,
        }
    }

    /// The same, for the request with these ids.
    pub fn with_request(self, ids: Option<RequestIds>) -> Self {
        Self {
            request: ids,
            ..self
        }
    }
}
