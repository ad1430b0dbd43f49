//! Who asked: what the HTTP layer knows of a request, handed down to the rules that record it.

/// Recorded with each refresh token (the family's lineage, incidents) and with each audit
/// event the request causes.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The server's id for the request (`X-Request-Id`), on its log lines and audit events.
    pub request_id: Option<String>,
}

impl RequestMeta {
    pub fn new(client_ip: Option<String>, user_agent: Option<&str>) -> Self {
        // Bounded: the value is stored per token.
        let user_agent = user_agent.map(|ua| ua.chars().take(256).collect());
        Self {
            client_ip,
            user_agent,
            request_id: None,
        }
    }

    /// The same, for the request with id `id`.
    pub fn with_request_id(self, id: Option<String>) -> Self {
        Self {
            request_id: id,
            ..self
        }
    }
}
