//! The Lambda edges. HTTP events of every shape (API Gateway REST and HTTP
//! APIs, function URLs) go through the same axum router as `serve`; the sync
//! function also takes EventBridge scheduled events and direct invokes.

use crate::http::{RequestId, SyncBudget, SyncOptions};
use crate::sync::{SyncEngine, SyncError, SyncReport, SyncRequest};
use axum::Router;
use lambda_http::request::{LambdaRequest, RequestContext};
use lambda_http::{Adapter, RequestExt};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use std::convert::Infallible;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tower::ServiceExt;

/// Time kept back from the Lambda deadline to publish and report: 20 s, or a
/// fifth of a short invocation's time (a local `cargo lambda` run).
const PUBLISH_MARGIN: Duration = Duration::from_secs(20);

/// The router as a `lambda_http` service. Routes are matched on the path the
/// client asked for: `lambda_http` adds a REST API's stage to the URI, so the
/// raw path is used, and an HTTP API's named stage (`/prod/...` in its raw
/// path) is taken off, so every shape reaches the same routes.
pub fn http_service(
    router: Router,
) -> impl tower::Service<
    lambda_http::Request,
    Response = axum::response::Response,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    tower::service_fn(move |request: lambda_http::Request| {
        let router = router.clone();
        async move {
            let (mut parts, body) = request.into_parts();
            let raw = without_named_stage(
                parts.raw_http_path(),
                parts.extensions.get::<RequestContext>(),
            );
            if !raw.is_empty() {
                let path_and_query = match parts.uri.query() {
                    Some(q) => format!("{raw}?{q}"),
                    None => raw,
                };
                if let Ok(uri) = path_and_query.parse() {
                    parts.uri = uri;
                }
            }
            let context = parts.extensions.get::<Context>();
            let (budget, id) = (budget(context), context.map(|c| c.request_id.clone()));
            if let Some(budget) = budget {
                parts.extensions.insert(SyncBudget(budget));
            }
            if let Some(id) = id.filter(|id| !id.is_empty()) {
                parts.extensions.insert(RequestId(id));
            }
            let request = axum::http::Request::from_parts(parts, axum::body::Body::new(body));
            router.oneshot(request).await
        }
    })
}

/// An HTTP API (v2) raw path carries a named stage (`/prod/api/...`); the
/// `$default` stage and REST APIs (whose raw path never has it) are left alone.
fn without_named_stage(raw: &str, context: Option<&RequestContext>) -> String {
    if let Some(RequestContext::ApiGatewayV2(ctx)) = context {
        if let Some(stage) = ctx.stage.as_deref().filter(|s| *s != "$default") {
            let prefix = format!("/{stage}");
            if let Some(rest) = raw.strip_prefix(&prefix) {
                if rest.is_empty() || rest.starts_with('/') {
                    return if rest.is_empty() {
                        "/".into()
                    } else {
                        rest.into()
                    };
                }
            }
        }
    }
    raw.to_owned()
}

/// The sync budget left by a Lambda deadline, less the publish margin. The
/// engine takes the earlier of this and its own `SYNC_TIMEOUT_MS`.
///
/// A deadline already past when the invocation starts is no deadline: Lambda
/// never hands over an expired invocation, but emulators do (`cargo lambda
/// watch` 1.9 sends the constant 600000, ten minutes after the epoch), and
/// reading it as "no time left" would cut every local sync to one second.
fn budget(context: Option<&Context>) -> Option<Duration> {
    let deadline_ms = context?.deadline;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    if deadline_ms <= now_ms {
        return None;
    }
    let left = Duration::from_millis(deadline_ms - now_ms);
    let margin = PUBLISH_MARGIN.min(left / 5);
    Some(left.saturating_sub(margin).max(Duration::from_secs(1)))
}

/// The shape of an invocation of the sync function.
#[derive(Debug, PartialEq)]
pub enum Invocation {
    Http,
    Scheduled,
    /// `{}`, `{"full": true}`, `{"allowShrink": true}` or both.
    Direct(SyncOptions),
}

#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error("unrecognised event: expected an API Gateway or function URL request, an EventBridge scheduled event, or a direct invoke {{}} / {{\"full\": true, \"allowShrink\": true}}")]
    Unrecognised,
    #[error("sync failed: {message}; report: {report}")]
    SyncFailed { message: String, report: String },
    #[error("{0}")]
    NotStarted(String),
    #[error("could not translate the HTTP event: {0}")]
    Http(String),
}

impl From<InvocationError> for lambda_runtime::Diagnostic {
    fn from(e: InvocationError) -> Self {
        let error_type = match e {
            InvocationError::Unrecognised => "UnrecognisedEvent",
            InvocationError::SyncFailed { .. } => "SyncFailed",
            InvocationError::NotStarted(_) => "SyncNotStarted",
            InvocationError::Http(_) => "HttpEventError",
        };
        Self {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

pub fn classify(event: &Value) -> Result<Invocation, InvocationError> {
    let Some(object) = event.as_object() else {
        return Err(InvocationError::Unrecognised);
    };
    if object.contains_key("requestContext") || object.contains_key("httpMethod") {
        return Ok(Invocation::Http);
    }
    if object.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
        return Ok(Invocation::Scheduled);
    }
    serde_json::from_value::<SyncOptions>(event.clone())
        .map(Invocation::Direct)
        .map_err(|_| InvocationError::Unrecognised)
}

/// The sync function's handler: HTTP through the router, everything else
/// straight to the engine. A failed non-HTTP sync fails the invocation, so
/// EventBridge retries it and its failure destination sees it.
pub async fn handle_sync_event(
    router: Router,
    engine: &SyncEngine,
    event: LambdaEvent<Value>,
) -> Result<Value, InvocationError> {
    let LambdaEvent { payload, context } = event;
    match classify(&payload)? {
        Invocation::Http => handle_http(router, payload, context).await,
        Invocation::Scheduled => sync_report(engine, SyncOptions::default(), &context).await,
        Invocation::Direct(options) => sync_report(engine, options, &context).await,
    }
}

/// Any HTTP-shaped event through the router, answered in the event's own shape.
pub async fn handle_http(
    router: Router,
    payload: Value,
    context: Context,
) -> Result<Value, InvocationError> {
    let request: LambdaRequest =
        serde_json::from_value(payload).map_err(|e| InvocationError::Http(e.to_string()))?;
    let adapter: Adapter<'_, _, _> = Adapter::from(http_service(router));
    let response = adapter
        .oneshot(LambdaEvent::new(request, context))
        .await
        .map_err(|e: Infallible| InvocationError::Http(e.to_string()))?;
    serde_json::to_value(response).map_err(|e| InvocationError::Http(e.to_string()))
}

impl From<SyncError> for InvocationError {
    fn from(e: SyncError) -> Self {
        Self::NotStarted(e.to_string())
    }
}

async fn sync_report(
    engine: &SyncEngine,
    options: SyncOptions,
    context: &Context,
) -> Result<Value, InvocationError> {
    let request = SyncRequest {
        full: options.full,
        allow_shrink: options.allow_shrink,
        deadline: budget(Some(context)).map(|b| Instant::now() + b),
    };
    let report: SyncReport = engine.run(request).await?;
    let value = serde_json::to_value(&report).expect("report serializes");
    if report.success {
        Ok(value)
    } else {
        Err(InvocationError::SyncFailed {
            message: report
                .message
                .clone()
                .unwrap_or_else(|| "sync failed".into()),
            report: value.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_every_trigger() {
        let fixture = |name: &str| -> Value {
            let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
        };
        assert_eq!(
            classify(&fixture("sync-apigw-v1.json")).unwrap(),
            Invocation::Http
        );
        assert_eq!(
            classify(&fixture("sync-apigw-v2.json")).unwrap(),
            Invocation::Http
        );
        assert_eq!(
            classify(&fixture("sync-function-url.json")).unwrap(),
            Invocation::Http
        );
        assert_eq!(
            classify(&fixture("sync-scheduled.json")).unwrap(),
            Invocation::Scheduled
        );
        let direct = |full, allow_shrink| Invocation::Direct(SyncOptions { full, allow_shrink });
        assert_eq!(
            classify(&fixture("sync-direct.json")).unwrap(),
            direct(false, false)
        );
        assert_eq!(
            classify(&fixture("sync-direct-full.json")).unwrap(),
            direct(true, false)
        );
        assert_eq!(
            classify(&fixture("sync-direct-allow-shrink.json")).unwrap(),
            direct(false, true)
        );
        for bad in [
            json!([]),
            json!("x"),
            json!({"full": "yes"}),
            json!({"other": 1}),
            json!({"full": true, "other": 1}),
            json!(null),
        ] {
            assert!(classify(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn budget_keeps_a_margin() {
        assert_eq!(budget(None), None);
        assert_eq!(budget(Some(&Context::default())), None);
        let mut ctx = Context::default();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        ctx.deadline = now + 900_000;
        let b = budget(Some(&ctx)).unwrap();
        assert!(
            b <= Duration::from_secs(880) && b > Duration::from_secs(870),
            "{b:?}"
        );
        // A short local invocation keeps most of its time.
        ctx.deadline = now + 30_000;
        let b = budget(Some(&ctx)).unwrap();
        assert!(
            b > Duration::from_secs(23) && b <= Duration::from_secs(24),
            "{b:?}"
        );
        ctx.deadline = now + 1_000;
        assert_eq!(budget(Some(&ctx)), Some(Duration::from_secs(1)));
        // What `cargo lambda watch` sends: no deadline, so SYNC_TIMEOUT_MS rules.
        ctx.deadline = 600_000;
        assert_eq!(budget(Some(&ctx)), None);
        ctx.deadline = now.saturating_sub(1);
        assert_eq!(budget(Some(&ctx)), None);
    }

    #[test]
    fn named_stages_come_off_http_api_paths_only() {
        let v2 = |stage: &str| {
            let event = json!({
                "version": "2.0", "routeKey": "$default", "rawPath": "/x", "rawQueryString": "",
                "headers": {}, "isBase64Encoded": false,
                "requestContext": {"accountId": "1", "apiId": "a", "domainName": "d", "domainPrefix": "d",
                    "http": {"method": "GET", "path": "/x", "protocol": "HTTP/1.1", "sourceIp": "1.1.1.1", "userAgent": "u"},
                    "requestId": "r", "routeKey": "$default", "stage": stage, "time": "t", "timeEpoch": 0}
            });
            let request: LambdaRequest = serde_json::from_value(event).unwrap();
            let request: lambda_http::Request = request.into();
            request.extensions().get::<RequestContext>().cloned()
        };
        let prod = v2("prod");
        assert_eq!(without_named_stage("/prod/api/x", prod.as_ref()), "/api/x");
        assert_eq!(without_named_stage("/prod", prod.as_ref()), "/");
        assert_eq!(
            without_named_stage("/production/x", prod.as_ref()),
            "/production/x"
        );
        let default = v2("$default");
        assert_eq!(
            without_named_stage("/prod/api/x", default.as_ref()),
            "/prod/api/x"
        );
        assert_eq!(without_named_stage("/prod/api/x", None), "/prod/api/x");
    }
}
