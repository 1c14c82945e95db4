//! Extractors: a request that gets past them has valid slugs and only the
//! query parameters its route knows. Their rejections are the API's JSON errors.

use super::ApiError;
use crate::cache::{Slug, ToolSlug};
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// `{toolkit}` in the path, validated.
pub struct ToolkitSlug(pub Slug);

impl<S: Send + Sync> FromRequestParts<S> for ToolkitSlug {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("invalid path: {}", e.body_text())))?;
        toolkit_slug(&raw).map(Self)
    }
}

/// `{toolkit}/{tool}` in the path, validated.
pub struct ToolPath(pub Slug, pub ToolSlug);

impl<S: Send + Sync> FromRequestParts<S> for ToolPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path((toolkit, tool)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("invalid path: {}", e.body_text())))?;
        let tool = ToolSlug::parse(&tool)
            .map_err(|e| ApiError::BadRequest(format!("invalid tool slug: {e}")))?;
        Ok(Self(toolkit_slug(&toolkit)?, tool))
    }
}

/// `{trigger}` in the path, validated (trigger slugs are shaped like tool slugs).
pub struct TriggerPath(pub ToolSlug);

impl<S: Send + Sync> FromRequestParts<S> for TriggerPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("invalid path: {}", e.body_text())))?;
        ToolSlug::parse(&raw)
            .map(Self)
            .map_err(|e| ApiError::BadRequest(format!("invalid trigger slug: {e}")))
    }
}

/// A toolkit slug from a path or a query, validated like every other.
pub fn toolkit_slug(raw: &str) -> Result<Slug, ApiError> {
    Slug::parse(raw).map_err(|e| ApiError::BadRequest(format!("invalid toolkit slug: {e}")))
}

/// A route without query parameters: a typo must not pass silently.
pub struct NoQuery;

impl<S: Send + Sync> FromRequestParts<S> for NoQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match parts.uri.query() {
            None | Some("") => Ok(Self),
            Some(q) => {
                let names: Vec<&str> = q
                    .split('&')
                    .map(|p| p.split('=').next().unwrap_or(""))
                    .collect();
                Err(ApiError::BadRequest(format!(
                    "unknown query parameter(s): {}",
                    names.join(", ").chars().take(200).collect::<String>()
                )))
            }
        }
    }
}

/// Query parameters into `T` (which denies unknown fields), with the API's
/// JSON error on anything else.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(params) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| {
                ApiError::BadRequest(
                    format!("invalid query: {}", e.body_text())
                        .chars()
                        .take(300)
                        .collect(),
                )
            })?;
        Ok(Self(params))
    }
}
