use super::{
    validate_prefix, ETag, ListedObject, ObjectKey, PutCondition, Store, StoreError, StoredObject,
};
use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

/// An S3 bucket (or any S3-compatible server): `s3://{bucket}/{prefix}{name}`.
/// Conditional writes use S3's own `If-None-Match: *` and `If-Match`.
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl S3Store {
    pub fn new(
        client: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        prefix: &str,
    ) -> Result<Self, StoreError> {
        validate_prefix(prefix).map_err(|e| StoreError::backend("open", prefix, e))?;
        Ok(Self {
            client,
            bucket: bucket.into(),
            prefix: prefix.to_owned(),
        })
    }

    /// A client from the standard AWS environment (region, credentials,
    /// `AWS_ENDPOINT_URL[_S3]`); path-style addressing for local servers.
    pub async fn client_from_env(force_path_style: bool) -> aws_sdk_s3::Client {
        let shared = aws_environment().await;
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(force_path_style)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    fn key(&self, key: &ObjectKey) -> String {
        format!("{}{}", self.prefix, key.file_name())
    }
}

/// The HTTPS client of every AWS call: rustls with ring.
pub fn https_client() -> aws_sdk_s3::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// The standard AWS environment (region, credentials, endpoints), over [`https_client`].
pub async fn aws_environment() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https_client())
        .load()
        .await
}

fn status<E, R>(err: &SdkError<E, R>) -> Option<u16>
where
    R: HttpStatus,
{
    err.raw_response().map(|r| r.status_code())
}

trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// A short message: the service's code and message, or the transport failure.
fn backend<E>(
    op: &'static str,
    key: &str,
    err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
{
    let detail = match err {
        SdkError::ServiceError(service) => format!(
            "HTTP {}: {}: {}",
            service.raw().status().as_u16(),
            err.code().unwrap_or("error"),
            err.message().unwrap_or("no message")
        ),
        other => DisplayErrorContext(other).to_string(),
    };
    StoreError::backend(op, key, detail)
}

#[async_trait]
impl Store for S3Store {
    async fn get(&self, key: &ObjectKey) -> Result<Option<StoredObject>, StoreError> {
        let name = self.key(key);
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&name)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if status(&e) == Some(404) => return Ok(None),
            Err(e) => return Err(backend("get", &name, &e)),
        };
        let etag = ETag(out.e_tag().unwrap_or_default().to_owned());
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::backend("get", &name, e))?
            .into_bytes();
        Ok(Some(StoredObject { body, etag }))
    }

    async fn etag(&self, key: &ObjectKey) -> Result<Option<ETag>, StoreError> {
        let name = self.key(key);
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&name)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ETag(out.e_tag().unwrap_or_default().to_owned()))),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(backend("head", &name, &e)),
        }
    }

    async fn put(
        &self,
        key: &ObjectKey,
        body: Bytes,
        condition: PutCondition,
    ) -> Result<ETag, StoreError> {
        let name = self.key(key);
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&name)
            .content_type("application/json")
            .body(ByteStream::from(body));
        let if_match = matches!(condition, PutCondition::IfMatch(_));
        request = match condition {
            PutCondition::Overwrite => request,
            PutCondition::IfAbsent => request.if_none_match("*"),
            PutCondition::IfMatch(etag) => request.if_match(etag.0),
        };
        match request.send().await {
            // Conditional writes and the lease stand on tags: a server without them can't serve.
            Ok(out) => out
                .e_tag()
                .map(|t| ETag(t.to_owned()))
                .ok_or_else(|| StoreError::backend("put", &name, "the S3 server returned no ETag")),
            // 404: If-Match on a missing key.
            Err(e) if status(&e) == Some(412) || (if_match && status(&e) == Some(404)) => {
                Err(StoreError::PreconditionFailed { key: name })
            }
            // 409 ConditionalRequestConflict: another conditional write was in flight.
            Err(e) if status(&e) == Some(409) => Err(StoreError::Conflict { key: name }),
            Err(e) => Err(backend("put", &name, &e)),
        }
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        let name = self.key(key);
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&name)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(404) => Ok(()),
            Err(e) => Err(backend("delete", &name, &e)),
        }
    }

    async fn delete_if_match(&self, key: &ObjectKey, etag: &ETag) -> Result<(), StoreError> {
        let name = self.key(key);
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&name)
            .if_match(&etag.0)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(404) => Ok(()),
            Err(e) if status(&e) == Some(412) => Err(StoreError::PreconditionFailed { key: name }),
            Err(e) if status(&e) == Some(409) => Err(StoreError::Conflict { key: name }),
            Err(e) => Err(backend("delete", &name, &e)),
        }
    }

    async fn list(&self) -> Result<Vec<ListedObject>, StoreError> {
        self.list_under(&self.prefix).await
    }

    async fn list_changes(&self) -> Result<Vec<ListedObject>, StoreError> {
        self.list_under(&format!("{}{}/", self.prefix, super::CHANGES_DIR))
            .await
    }

    async fn list_snapshots(&self) -> Result<Vec<ListedObject>, StoreError> {
        self.list_under(&format!("{}{}/", self.prefix, super::SNAPSHOTS_DIR))
            .await
    }

    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}

impl S3Store {
    /// Our objects directly under `under` (one level: the delimiter stops there).
    async fn list_under(&self, under: &str) -> Result<Vec<ListedObject>, StoreError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(under)
            .delimiter("/")
            .into_paginator()
            .send();
        let mut listed = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| backend("list", &self.prefix, &e))?;
            for object in page.contents() {
                let Some(name) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) else {
                    continue;
                };
                if let Some(key) = ObjectKey::from_file_name(name) {
                    listed.push(ListedObject {
                        key,
                        size: object.size().unwrap_or(0).max(0) as u64,
                        etag: ETag(object.e_tag().unwrap_or_default().to_owned()),
                    });
                }
            }
        }
        self.fill_missing_etags(&mut listed).await?;
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listed)
    }

    /// Some S3-compatible servers (s3s-fs) list objects without ETags: an
    /// empty tag would read as "changed" and make every sync rewrite every
    /// object. Each one missing is asked of a HEAD instead (a few at once).
    async fn fill_missing_etags(&self, listed: &mut [ListedObject]) -> Result<(), StoreError> {
        use futures::StreamExt;
        let missing: Vec<usize> = (0..listed.len())
            .filter(|&i| listed[i].etag.0.is_empty())
            .collect();
        let heads = futures::stream::iter(missing)
            .map(|i| {
                let key = listed[i].key.clone();
                async move { (i, self.etag(&key).await) }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        for (i, etag) in heads {
            // Gone since the listing: left with no tag, as if missing.
            if let Some(etag) = etag? {
                listed[i].etag = etag;
            }
        }
        Ok(())
    }
}
