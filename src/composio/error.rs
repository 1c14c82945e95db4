use std::time::Duration;

/// Longest upstream-provided text kept in an error, a report or the meta.
pub const MAX_UPSTREAM_TEXT: usize = 500;

/// Cuts text from elsewhere to at most [`MAX_UPSTREAM_TEXT`] characters,
/// the last of them an ellipsis when something was cut.
pub fn cut(text: &str) -> String {
    if text.chars().nth(MAX_UPSTREAM_TEXT).is_none() {
        return text.to_owned();
    }
    let keep: String = text.chars().take(MAX_UPSTREAM_TEXT - 1).collect();
    format!("{keep}…")
}

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
    /// Redirects are never followed: the key must not travel to another host.
    #[error("{endpoint}: HTTP {status} redirect to {location_host} refused (redirects are not followed)")]
    Redirect {
        endpoint: String,
        status: u16,
        location_host: String,
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
    #[error("{0}")]
    Config(String),
}

impl UpstreamError {
    /// Worth another try: 408, 409, 429, 5xx, timeouts, dropped connections,
    /// and a 200 whose body did not parse (a glitch once is not a verdict).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => matches!(status, 408 | 409 | 429 | 500..=599),
            Self::Transport { kind, .. } => *kind != TransportKind::Other,
            Self::Decode { .. } => true,
            Self::Redirect { .. } | Self::TooLarge { .. } | Self::Paging { .. } => false,
            Self::Config(_) => false,
        }
    }

    pub fn is_throttled(&self) -> bool {
        self.status() == Some(429)
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } | Self::Redirect { status, .. } => Some(*status),
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
        let decode = UpstreamError::Decode {
            endpoint: "GET /x".into(),
            detail: "EOF".into(),
        };
        assert!(
            decode.is_retryable(),
            "a malformed 200 is a transient fault"
        );
        let redirect = UpstreamError::Redirect {
            endpoint: "GET /x".into(),
            status: 302,
            location_host: "evil.example".into(),
        };
        assert!(!redirect.is_retryable());
    }

    #[test]
    fn message_keeps_status_and_request_id() {
        assert_eq!(
            status(404).to_string(),
            "GET /x: HTTP 404: m (request id req_1)"
        );
    }

    #[test]
    fn upstream_text_is_cut() {
        assert_eq!(cut("short"), "short");
        let long = "é".repeat(MAX_UPSTREAM_TEXT + 10);
        let kept = cut(&long);
        assert_eq!(kept.chars().count(), MAX_UPSTREAM_TEXT);
        assert!(kept.ends_with('…'));
        assert_eq!(
            cut(&"y".repeat(MAX_UPSTREAM_TEXT + 1)).chars().count(),
            MAX_UPSTREAM_TEXT
        );
        assert_eq!(cut(&"x".repeat(MAX_UPSTREAM_TEXT)).len(), MAX_UPSTREAM_TEXT);
    }
}
