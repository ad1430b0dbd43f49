use std::fmt;

/// An error of the token endpoint (RFC 6749 §5.2). `Display` is the RFC's `error` code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthError {
    InvalidRequest(String),
    InvalidClient(String),
    InvalidGrant(String),
    UnauthorizedClient(String),
    UnsupportedGrantType(String),
    InvalidScope(String),
    /// RFC 8707 §2: a `resource` that is malformed, unknown, or outside the grant.
    InvalidTarget(String),
    /// RFC 7009 §2.2.1.
    UnsupportedTokenType(String),
    /// RFC 9449 §4.3: a DPoP proof that fails a check.
    InvalidDpopProof(String),
    /// RFC 9449 §8: the proof must carry the server's current nonce.
    UseDpopNonce(String),
    /// 503: the database or the password hasher is out of capacity.
    TemporarilyUnavailable(String),
    /// 500; the description is generic, the cause goes to the log.
    ServerError,
}

impl OAuthError {
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::InvalidTarget(_) => "invalid_target",
            OAuthError::UnsupportedTokenType(_) => "unsupported_token_type",
            OAuthError::InvalidDpopProof(_) => "invalid_dpop_proof",
            OAuthError::UseDpopNonce(_) => "use_dpop_nonce",
            OAuthError::TemporarilyUnavailable(_) => "temporarily_unavailable",
            OAuthError::ServerError => "server_error",
        }
    }

    pub fn description(&self) -> &str {
        match self {
            OAuthError::InvalidRequest(d)
            | OAuthError::InvalidClient(d)
            | OAuthError::InvalidGrant(d)
            | OAuthError::UnauthorizedClient(d)
            | OAuthError::UnsupportedGrantType(d)
            | OAuthError::InvalidScope(d)
            | OAuthError::InvalidTarget(d)
            | OAuthError::UnsupportedTokenType(d)
            | OAuthError::InvalidDpopProof(d)
            | OAuthError::UseDpopNonce(d)
            | OAuthError::TemporarilyUnavailable(d) => d,
            OAuthError::ServerError => "internal error",
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl std::error::Error for OAuthError {}

impl From<diesel::result::Error> for OAuthError {
    fn from(e: diesel::result::Error) -> Self {
        // Contention and lost connections are worth a retry; anything else is a bug.
        if crate::store::is_transient(&e) {
            tracing::warn!(error = %e, "database busy");
            OAuthError::TemporarilyUnavailable("the database is busy; retry shortly".into())
        } else {
            tracing::error!(error = %e, "database error");
            OAuthError::ServerError
        }
    }
}

impl From<crate::domain::dpop::ProofError> for OAuthError {
    fn from(e: crate::domain::dpop::ProofError) -> Self {
        match e {
            crate::domain::dpop::ProofError::UseNonce => OAuthError::UseDpopNonce(e.to_string()),
            other => OAuthError::InvalidDpopProof(other.to_string()),
        }
    }
}

impl From<crate::domain::resource::TargetError> for OAuthError {
    fn from(e: crate::domain::resource::TargetError) -> Self {
        OAuthError::InvalidTarget(e.to_string())
    }
}

impl From<crate::domain::resource::LookupError> for OAuthError {
    fn from(e: crate::domain::resource::LookupError) -> Self {
        match e {
            crate::domain::resource::LookupError::Target(t) => t.into(),
            crate::domain::resource::LookupError::Database(d) => d.into(),
        }
    }
}

impl From<r2d2::Error> for OAuthError {
    fn from(e: r2d2::Error) -> Self {
        tracing::error!(error = %e, "no database connection");
        OAuthError::TemporarilyUnavailable("the database is unavailable; retry later".into())
    }
}

/// `error_description` may only hold %x20-21 / %x23-5B / %x5D-7E (RFC 6749 §5.2, §4.1.2.1).
pub fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ' ' | '!' | '#'..='[' | ']'..='~' => c,
            _ => '?',
        })
        .collect()
}
