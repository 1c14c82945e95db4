//! A stand-in for the Lambda Runtime API on 127.0.0.1: it hands a bootstrap
//! the events it is given, one at a time, and keeps the answers. Enough to
//! time a cold start and to walk the read function through a catalogue.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

#[derive(Default)]
struct Inner {
    events: VecDeque<(String, Value)>,
    answers: Vec<(String, Value)>,
    first_poll: Option<Instant>,
    last_id: String,
}

#[derive(Clone)]
pub struct RuntimeApi {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    queued: Arc<Notify>,
    answered: Arc<Notify>,
}

impl RuntimeApi {
    pub async fn start() -> Result<Self, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let api = Self {
            addr,
            inner: Arc::new(Mutex::new(Inner::default())),
            queued: Arc::new(Notify::new()),
            answered: Arc::new(Notify::new()),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(answer))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(answer))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api.clone());
        tokio::spawn(async move { axum::serve(crate::http::without_nagle(listener), app).await });
        Ok(api)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When the bootstrap first asked for work: its init is over.
    pub async fn first_poll(&self, within: Duration) -> Option<Instant> {
        let started = Instant::now();
        while started.elapsed() < within {
            if let Some(at) = self.lock().first_poll {
                return Some(at);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        None
    }

    /// The request id of the last invocation.
    pub fn last_request_id(&self) -> String {
        self.lock().last_id.clone()
    }

    /// Invokes the function with `event` and waits for its answer.
    pub async fn invoke(&self, event: Value, within: Duration) -> Result<Value, String> {
        let id = uuid::Uuid::new_v4().to_string();
        {
            let mut inner = self.lock();
            inner.last_id = id.clone();
            inner.events.push_back((id.clone(), event));
        }
        self.queued.notify_waiters();
        let started = Instant::now();
        loop {
            let answered = {
                let mut inner = self.lock();
                let found = inner.answers.iter().position(|(a, _)| *a == id);
                found.map(|i| inner.answers.swap_remove(i).1)
            };
            if let Some(answer) = answered {
                return Ok(answer);
            }
            if started.elapsed() > within {
                return Err(format!("no answer to invocation {id} within {within:?}"));
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), self.answered.notified()).await;
        }
    }
}

async fn next(State(api): State<RuntimeApi>) -> Response {
    api.lock().first_poll.get_or_insert_with(Instant::now);
    // Long-poll, as the real API does, for a bounded while.
    let started = Instant::now();
    let (id, event) = loop {
        let queued = api.lock().events.pop_front();
        if let Some(found) = queued {
            break found;
        }
        if started.elapsed() > Duration::from_secs(120) {
            return axum::http::StatusCode::NO_CONTENT.into_response();
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), api.queued.notified()).await;
    };
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
        + 60_000;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:composio-read".into(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000".into(),
    );
    (headers, axum::Json(event)).into_response()
}

async fn answer(
    State(api): State<RuntimeApi>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> &'static str {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    api.lock().answers.push((id, value));
    api.answered.notify_waiters();
    "{}"
}

async fn init_error(body: axum::body::Bytes) -> &'static str {
    eprintln!(
        "bench: the bootstrap failed its init: {}",
        String::from_utf8_lossy(&body)
    );
    "{}"
}
