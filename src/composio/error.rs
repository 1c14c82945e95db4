use std::time::Duration;

/// How a request failed below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Timeout,
    Connect,
    /// The connection dropped mid-request or mid-body (a reset, a truncated body).
    Interrupted,
    Other,
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Timeout => "timed out",
            Self::Connect => "could not connect",
            Self::Interrupted => "connection interrupted",
            Self::Other => "request failed",
        })
    }
}

/// A failed upstream call. `endpoint` is the method and path with its query,
/// never a header: the API key cannot end up in here.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("{endpoint}: HTTP {status}: {message}{}", request_id.as_ref().map(|id| format!(" (request id {id})")).unwrap_or_default())]
    Status {
        endpoint: String,
        status: u16,
        message: String,
        request_id: Option<String>,
        retry_after: Option<Duration>,
    },
    #[error("{endpoint}: {kind}: {detail}")]
    Transport {
        endpoint: String,
        kind: TransportKind,
        detail: String,
    },
    #[error("{endpoint}: response body is larger than the {limit}-byte cap")]
    TooLarge { endpoint: String, limit: usize },
    #[error("{endpoint}: unexpected response: {detail}")]
    Decode { endpoint: String, detail: String },
    #[error("{endpoint}: paging did not end: {detail}")]
    Paging { endpoint: String, detail: String },
}

impl UpstreamError {
    /// Worth another try: 408, 409, 429, 5xx, timeouts and dropped connections.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => matches!(status, 408 | 409 | 429 | 500..=599),
            Self::Transport { kind, .. } => *kind != TransportKind::Other,
            Self::TooLarge { .. } | Self::Decode { .. } | Self::Paging { .. } => false,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> UpstreamError {
        UpstreamError::Status {
            endpoint: "GET /x".into(),
            status: code,
            message: "m".into(),
            request_id: Some("req_1".into()),
            retry_after: None,
        }
    }

    #[test]
    fn retries_only_what_may_succeed_later() {
        for code in [408, 409, 429, 500, 502, 503, 504] {
            assert!(status(code).is_retryable(), "{code}");
        }
        for code in [400, 401, 403, 404, 410, 422] {
            assert!(!status(code).is_retryable(), "{code}");
        }
    }

    #[test]
    fn message_keeps_status_and_request_id() {
        assert_eq!(
            status(404).to_string(),
            "GET /x: HTTP 404: m (request id req_1)"
        );
    }
}
