//! What the read routes and the agent routes answer with, in the one module
//! both use (neither route module imports the other): their shared state,
//! the conditional answer (validators, 304, coding) and provider bundles.

use super::reader::{MetaView, ReadError};
use super::representation::{self, Encoding, FixedAnswer, Freshness, Validators};
use super::{ApiError, CacheReader};
use crate::agent::{bundle_within, Bundle, BundleLimits, Format, ToolSource};
use crate::cache::CachedToolSchema;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

#[derive(Clone)]
pub struct ReadState {
    pub reader: Arc<CacheReader>,
    pub cache_control: HeaderValue,
    /// The OpenAPI document (`src/http/openapi.json`), as served.
    pub doc: Arc<FixedAnswer>,
}

/// Every read answer's shape: validators known before any body, a 304 when
/// the client's copy is current, else the body `build` makes in the coding
/// the client takes. `build` may replace the tag (an object that is not the
/// one the index describes is tagged by its own bytes).
pub async fn conditional<F, Fut>(
    s: &ReadState,
    headers: &HeaderMap,
    stale: bool,
    mut validators: Validators,
    build: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(Encoding) -> Fut,
    Fut: std::future::Future<Output = Result<(Bytes, Option<String>), ApiError>>,
{
    let encoding = Encoding::negotiate(headers);
    let fresh = Freshness {
        cache_control: s.cache_control.clone(),
        stale,
    };
    if validators.not_modified(headers) {
        return Ok(representation::not_modified(&validators, encoding, &fresh));
    }
    let (body, etag) = build(encoding).await?;
    if let Some(etag) = etag {
        validators.etag = etag;
    }
    Ok(representation::ok(body, &validators, encoding, &fresh))
}

/// The tag of an answer read from an object the index does not describe (a
/// sync is between its writes and its publish, or one died): the bytes' own,
/// never the index's, which names other bytes.
pub fn unindexed_etag(body: &[u8]) -> String {
    format!("u{}", &crate::cache::content_hash(body)[..32])
}

/// Answers from the meta have the meta's version in their tag.
pub fn meta_validators(view: &MetaView, what: &str) -> Validators {
    Validators {
        etag: crate::cache::content_hash(format!("{}|{what}", view.version).as_bytes())[..32]
            .to_owned(),
        last_modified: view.last_synced,
    }
}

pub async fn answer_from_meta<F>(
    s: &ReadState,
    headers: &HeaderMap,
    view: &MetaView,
    stale: bool,
    what: &str,
    build: F,
) -> Result<Response, ApiError>
where
    F: std::future::Future<Output = Result<(Vec<u8>, bool), ReadError>>,
{
    let validators = meta_validators(view, what);
    conditional(s, headers, stale, validators, |encoding| async move {
        let (body, kept) = s.reader.from_meta(view, what, encoding, build).await?;
        let etag = (!kept).then(|| unindexed_etag(&body));
        Ok((body, etag))
    })
    .await
}

/// The provider format asked for, strict mode (OpenAI's only) and deferred
/// loading (Anthropic's and OpenAI Responses').
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FormatParams {
    /// Answer a bundle in this provider's format: `openai`, `openai-responses`,
    /// `anthropic`, `gemini` or `mcp`.
    pub format: Option<String>,
    /// With `openai` or `openai-responses`: OpenAI strict mode.
    pub strict: Option<bool>,
    /// With `anthropic` or `openai-responses`: every tool marked
    /// `defer_loading: true`, for the provider's tool search.
    pub defer: Option<bool>,
}

impl FormatParams {
    pub fn requested(&self) -> Result<Option<Requested>, ApiError> {
        requested(self.format.as_deref(), self.strict, self.defer)
    }
}

/// A format, strict mode and deferred loading, validated.
#[derive(Debug, Clone, Copy)]
pub struct Requested {
    pub format: Format,
    pub strict: bool,
    pub defer: bool,
}

impl Requested {
    /// Names this variant of an answer in cache keys and ETags.
    pub fn tag(&self) -> String {
        format!(
            "{}{}{}",
            self.format.as_str(),
            if self.strict { "-strict" } else { "" },
            if self.defer { "-defer" } else { "" }
        )
    }
}

/// The formats whose tools take `defer_loading` (checked against the
/// providers' SDK types in tests/provider_sdks.py).
fn supports_defer(format: Format) -> bool {
    matches!(format, Format::Anthropic | Format::OpenAiResponses)
}

pub fn requested(
    format: Option<&str>,
    strict: Option<bool>,
    defer: Option<bool>,
) -> Result<Option<Requested>, ApiError> {
    let Some(format) = format else {
        if strict.is_some() {
            return Err(ApiError::BadRequest(
                "strict needs format=openai or format=openai-responses".into(),
            ));
        }
        if defer.is_some() {
            return Err(ApiError::BadRequest(
                "defer needs format=anthropic or format=openai-responses".into(),
            ));
        }
        return Ok(None);
    };
    let format: Format = format
        .parse()
        .map_err(|e: crate::agent::UnknownFormat| ApiError::BadRequest(e.to_string()))?;
    let strict = strict.unwrap_or(false);
    if strict && !format.supports_strict() {
        return Err(ApiError::BadRequest(format!(
            "strict is OpenAI's: use it with format=openai or format=openai-responses, not {}",
            format.as_str()
        )));
    }
    let defer = defer.unwrap_or(false);
    if defer && !supports_defer(format) {
        return Err(ApiError::BadRequest(format!(
            "defer (defer_loading) is for format=anthropic or format=openai-responses, not {}",
            format.as_str()
        )));
    }
    Ok(Some(Requested {
        format,
        strict,
        defer,
    }))
}

/// A provider bundle, plus the slugs a batch did not find.
#[derive(Serialize)]
struct BundleWithUnknown<'a> {
    #[serde(flatten)]
    bundle: &'a Bundle,
    #[serde(skip_serializing_if = "Option::is_none")]
    unknown: Option<&'a [String]>,
}

/// A provider bundle of `tools`, deferred if asked, given up when `limits` say so.
pub fn bundle_of(
    tools: &[CachedToolSchema],
    requested: Requested,
    limits: &BundleLimits,
) -> Result<Bundle, ReadError> {
    let sources: Vec<ToolSource<'_>> = tools.iter().map(ToolSource::from).collect();
    let mut bundle = bundle_within(&sources, requested.format, requested.strict, limits)?;
    if requested.defer {
        for tool in &mut bundle.tools {
            if let Some(tool) = tool.as_object_mut() {
                tool.insert("defer_loading".into(), serde_json::Value::Bool(true));
            }
        }
    }
    Ok(bundle)
}

/// A provider bundle of `tools`, serialized.
pub fn bundle_bytes(
    tools: &[CachedToolSchema],
    requested: Requested,
    unknown: Option<&[String]>,
    limits: &BundleLimits,
) -> Result<Vec<u8>, ReadError> {
    let bundle = bundle_of(tools, requested, limits)?;
    Ok(serde_json::to_vec(&BundleWithUnknown {
        bundle: &bundle,
        unknown,
    })
    .expect("a bundle serializes"))
}

/// Documents a bundle answer (the body is a provider's own shapes).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundleAnswer {
    /// The format asked for.
    pub format: String,
    /// Exactly the provider's tool shapes, nothing extra.
    #[schema(value_type = Vec<Object>)]
    pub tools: Vec<serde_json::Value>,
    /// The name sent to the model → the tool slug.
    #[schema(value_type = Object)]
    pub name_map: serde_json::Value,
    /// What maps a model's arguments back to the original property names.
    #[schema(value_type = Object)]
    pub argument_map: serde_json::Value,
    /// What was altered to fit the format: `[{tool, path, reason}]` (absent when nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub changes: Option<Vec<serde_json::Value>>,
    /// Batch only: slugs not in the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<Vec<String>>,
}
