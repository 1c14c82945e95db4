//! Notices as webhooks signed per the Standard Webhooks specification: a
//! POST of `{type, timestamp, data}` with `webhook-id` (`msg_{syncId}`, the
//! same on every retry, so receivers can deduplicate), `webhook-timestamp`
//! and `webhook-signature` (HMAC-SHA256 with a `whsec_…` secret, by the
//! specification's own crate). https only (plain http to loopback, for
//! tests); redirects are never followed.

use super::{Notice, Notifier, NotifyError, WEBHOOK_TYPE};
use async_trait::async_trait;
use backon::BackoffBuilder;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A `whsec_…` signing secret. Its text never reaches a log or a report.
#[derive(Clone)]
pub struct WebhookSecret(String);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(redacted)")
    }
}

impl WebhookSecret {
    /// `whsec_` and base64, as the specification writes secrets.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if !raw.starts_with("whsec_") {
            return Err("a webhook signing secret starts with whsec_".into());
        }
        standardwebhooks::Webhook::new(raw)
            .map_err(|_| "a webhook signing secret is whsec_ followed by base64".to_string())?;
        Ok(Self(raw.to_owned()))
    }
}

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Tries of one notice to one receiver within the deadline.
    pub attempts: u32,
    /// Bound of one try.
    pub attempt_timeout: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            attempts: 3,
            attempt_timeout: Duration::from_secs(5),
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(2),
        }
    }
}

pub struct WebhookNotifier {
    client: reqwest::Client,
    url: reqwest::Url,
    signer: standardwebhooks::Webhook,
    config: WebhookConfig,
    target: String,
}

/// What one try came to.
enum Try {
    Delivered,
    /// Worth another try (a 5xx, 408, 429, a timeout, a dropped connection).
    Again(String),
    /// Not worth another try in this sync (a redirect, another 4xx).
    GiveUp(String),
}

impl WebhookNotifier {
    pub fn new(url: &str, secret: &WebhookSecret, config: WebhookConfig) -> Result<Self, String> {
        let url = validate_url(url)?;
        let signer = standardwebhooks::Webhook::new(&secret.0)
            .map_err(|_| "the webhook signing secret is not valid".to_string())?;
        let client = crate::tls::http_client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("composio-schema-cache/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("webhook client: {e}"))?;
        let mut shown = url.clone();
        shown.set_query(None);
        shown.set_fragment(None);
        Ok(Self {
            client,
            target: format!("webhook:{shown}"),
            url,
            signer,
            config,
        })
    }

    /// The body every try of a notice sends, the same bytes each time.
    fn body(notice: &Notice) -> Vec<u8> {
        let payload = serde_json::json!({
            "type": WEBHOOK_TYPE,
            "timestamp": notice.published_at,
            "data": notice,
        });
        serde_json::to_vec(&payload).expect("a notice serializes")
    }

    async fn try_once(&self, id: &str, body: &[u8], timeout: Duration) -> Try {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64;
        let signature = match self.signer.sign(id, now, body) {
            Ok(signature) => signature,
            Err(e) => return Try::GiveUp(format!("could not sign: {e}")),
        };
        let sent = self
            .client
            .post(self.url.clone())
            .timeout(timeout)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", signature)
            .body(body.to_vec())
            .send()
            .await;
        let status = match sent {
            Ok(answer) => answer.status(),
            Err(e) if e.is_timeout() => return Try::Again(format!("no answer within {timeout:?}")),
            Err(e) => return Try::Again(format!("could not connect: {}", transport(e))),
        };
        match status.as_u16() {
            200..=299 => Try::Delivered,
            300..=399 => Try::GiveUp(format!(
                "HTTP {status}: redirects are not followed; point the URL at the receiver itself"
            )),
            408 | 425 | 429 | 500..=599 => Try::Again(format!("HTTP {status}")),
            _ => Try::GiveUp(format!("HTTP {status}")),
        }
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn target(&self) -> &str {
        &self.target
    }

    async fn deliver(&self, notice: &Notice, deadline: Instant) -> Result<(), NotifyError> {
        let id = format!("msg_{}", notice.sync_id);
        let body = Self::body(notice);
        let mut pauses = backon::ExponentialBuilder::default()
            .with_min_delay(self.config.min_backoff)
            .with_max_delay(self.config.max_backoff)
            .with_jitter()
            .without_max_times()
            .build();
        let mut last = String::from("not tried before the deadline");
        for attempt in 1..=self.config.attempts.max(1) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self
                .try_once(&id, &body, left.min(self.config.attempt_timeout))
                .await
            {
                Try::Delivered => return Ok(()),
                Try::GiveUp(why) => return Err(self.failed(why)),
                Try::Again(why) => last = why,
            }
            let pause = pauses.next().unwrap_or(self.config.max_backoff);
            if attempt == self.config.attempts || Instant::now() + pause >= deadline {
                break;
            }
            tracing::debug!(target = %self.target, attempt, error = %last, "webhook try failed; trying again");
            tokio::time::sleep(pause).await;
        }
        Err(self.failed(last))
    }
}

impl WebhookNotifier {
    fn failed(&self, detail: String) -> NotifyError {
        NotifyError::Failed {
            target: self.target.clone(),
            detail: crate::composio::cut(&detail),
        }
    }
}

/// What went wrong on the way, without the URL (its query may hold a token).
fn transport(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// https, or plain http to this machine only.
pub fn validate_url(raw: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a webhook URL must not carry credentials".into());
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(format!(
            "{}: webhook URLs must be https (plain http only to 127.0.0.1, localhost or [::1])",
            url.host_str().unwrap_or("?")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_or_loopback_and_secrets_are_whsec() {
        assert!(validate_url("https://hooks.example.com/x?token=1").is_ok());
        assert!(validate_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(validate_url("http://localhost:9000/hook").is_ok());
        assert!(validate_url("http://hooks.example.com/x").is_err());
        assert!(validate_url("ftp://127.0.0.1/x").is_err());
        assert!(validate_url("https://user:pw@hooks.example.com/").is_err());
        assert!(WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(WebhookSecret::parse("whsec_not base64!").is_err());
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert!(!format!("{secret:?}").contains("MfKQ"));
        let hook = WebhookNotifier::new(
            "https://hooks.example.com/x?token=secret",
            &secret,
            WebhookConfig::default(),
        )
        .unwrap();
        assert_eq!(hook.target(), "webhook:https://hooks.example.com/x");
    }
}
