//! One read answer as HTTP sends it: its bytes in the encoding the client
//! takes, and the validators that make it cacheable (a strong ETag derived
//! from what the sync already hashed, `Last-Modified`, `Cache-Control`), with
//! `If-None-Match` / `If-Modified-Since` answered by a 304 before any body is
//! read or built.

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::io::Write;
use std::sync::OnceLock;
use std::time::SystemTime;

/// A content coding the read API serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

impl Encoding {
    pub fn token(self) -> Option<&'static str> {
        match self {
            Self::Identity => None,
            Self::Gzip => Some("gzip"),
            Self::Brotli => Some("br"),
        }
    }

    /// The client's choice from `Accept-Encoding`: the coding with the highest
    /// q-value; on a tie, br (smaller) before gzip; identity when neither is
    /// acceptable. `*` stands for any coding not named.
    pub fn negotiate(headers: &HeaderMap) -> Self {
        let Some(accept) = headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
        else {
            return Self::Identity;
        };
        let (mut gzip, mut br, mut star) = (None, None, None);
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .filter_map(|q| q.trim().parse::<f32>().ok())
                .next()
                .unwrap_or(1.0);
            match coding.as_str() {
                "gzip" | "x-gzip" => gzip = Some(q),
                "br" => br = Some(q),
                "*" => star = Some(q),
                _ => {}
            }
        }
        let gzip = gzip.or(star).unwrap_or(0.0);
        let br = br.or(star).unwrap_or(0.0);
        if br > 0.0 && br >= gzip {
            Self::Brotli
        } else if gzip > 0.0 {
            Self::Gzip
        } else {
            Self::Identity
        }
    }

    /// The body in this coding. Levels favour size: each answer is
    /// compressed once per version and then served from memory.
    pub fn encode(self, body: &[u8]) -> Bytes {
        match self {
            Self::Identity => Bytes::copy_from_slice(body),
            Self::Gzip => {
                let mut out = flate2::write::GzEncoder::new(
                    Vec::with_capacity(body.len() / 6),
                    flate2::Compression::new(6),
                );
                out.write_all(body).expect("writing to memory");
                Bytes::from(out.finish().expect("writing to memory"))
            }
            Self::Brotli => {
                let mut out = Vec::with_capacity(body.len() / 8);
                let params = brotli::enc::BrotliEncoderParams {
                    quality: 5,
                    lgwin: 22,
                    ..Default::default()
                };
                brotli::BrotliCompress(&mut &body[..], &mut out, &params)
                    .expect("writing to memory");
                Bytes::from(out)
            }
        }
    }
}

/// What makes an answer cacheable, known before its body is read or built.
#[derive(Debug, Clone)]
pub struct Validators {
    /// The identity representation's strong tag, without quotes.
    pub etag: String,
    pub last_modified: Option<SystemTime>,
}

impl Validators {
    /// The tag of one coding of the answer: codings are different
    /// representations, so their strong tags differ.
    pub fn etag_for(&self, encoding: Encoding) -> String {
        match encoding.token() {
            None => format!("\"{}\"", self.etag),
            Some(token) => format!("\"{}-{token}\"", self.etag),
        }
    }

    /// Whether the client's copy is current: `If-None-Match` (any coding of
    /// this version matches), else `If-Modified-Since`.
    pub fn not_modified(&self, request: &HeaderMap) -> bool {
        if let Some(tags) = request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
        {
            return tags.split(',').any(|tag| {
                let tag = tag.trim().trim_start_matches("W/").trim_matches('"');
                tag == "*"
                    || tag == self.etag
                    || tag
                        .strip_prefix(self.etag.as_str())
                        .is_some_and(|rest| rest == "-gzip" || rest == "-br")
            });
        }
        let (Some(modified), Some(since)) = (
            self.last_modified,
            request
                .get(header::IF_MODIFIED_SINCE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v).ok()),
        ) else {
            return false;
        };
        // HTTP dates have whole seconds.
        let modified_secs = modified
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let since_secs = since
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        modified_secs <= since_secs
    }
}

/// How an answer goes out: validators, `Cache-Control`, and whether it is a
/// stale copy served because the store could not be reached.
#[derive(Debug, Clone)]
pub struct Freshness {
    pub cache_control: HeaderValue,
    pub stale: bool,
}

pub const STALE_HEADER: &str = "x-cache-stale";

fn common_headers(
    response: &mut Response,
    validators: &Validators,
    encoding: Encoding,
    freshness: &Freshness,
) {
    let h = response.headers_mut();
    if let Ok(tag) = HeaderValue::from_str(&validators.etag_for(encoding)) {
        h.insert(header::ETAG, tag);
    }
    if let Some(modified) = validators.last_modified {
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(modified)) {
            h.insert(header::LAST_MODIFIED, v);
        }
    }
    h.insert(header::CACHE_CONTROL, freshness.cache_control.clone());
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if freshness.stale {
        h.insert(STALE_HEADER, HeaderValue::from_static("true"));
    }
}

/// A 304: the validators, no body.
pub fn not_modified(
    validators: &Validators,
    encoding: Encoding,
    freshness: &Freshness,
) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    common_headers(&mut response, validators, encoding, freshness);
    response
}

/// A 200 with the body in `encoding` (already encoded).
pub fn ok(
    body: Bytes,
    validators: &Validators,
    encoding: Encoding,
    freshness: &Freshness,
) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(token) = encoding.token() {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static(token));
    }
    common_headers(&mut response, validators, encoding, freshness);
    response
}

/// An answer fixed for the process's life (the OpenAPI document): tagged by
/// its bytes' hash, `Last-Modified` the time the router was built (a new
/// binary starts after the old one, so a client's date never makes a new
/// document look current), each coding compressed once, on first demand.
pub struct FixedAnswer {
    identity: Bytes,
    validators: Validators,
    gzip: OnceLock<Bytes>,
    brotli: OnceLock<Bytes>,
}

impl FixedAnswer {
    pub fn new(body: Bytes, built_at: SystemTime) -> Self {
        Self {
            validators: Validators {
                etag: crate::cache::content_hash(&body)[..32].to_owned(),
                last_modified: Some(built_at),
            },
            identity: body,
            gzip: OnceLock::new(),
            brotli: OnceLock::new(),
        }
    }

    /// A 304 when the client's copy is current, else the body in its coding.
    pub fn respond(&self, request: &HeaderMap, cache_control: &HeaderValue) -> Response {
        let encoding = Encoding::negotiate(request);
        let fresh = Freshness {
            cache_control: cache_control.clone(),
            stale: false,
        };
        if self.validators.not_modified(request) {
            return not_modified(&self.validators, encoding, &fresh);
        }
        let body = match encoding {
            Encoding::Identity => self.identity.clone(),
            Encoding::Gzip => self
                .gzip
                .get_or_init(|| encoding.encode(&self.identity))
                .clone(),
            Encoding::Brotli => self
                .brotli
                .get_or_init(|| encoding.encode(&self.identity))
                .clone(),
        };
        ok(body, &self.validators, encoding, &fresh)
    }
}

/// An answer made for one request and never the same twice (`/sync/status`,
/// whose age changes every second): no validator could ever match, so it
/// has none; compressed when the client asks, like every answer.
pub fn live(body: &[u8], request: &HeaderMap, cache_control: HeaderValue) -> Response {
    let encoding = Encoding::negotiate(request);
    let mut response = encoding.encode(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(token) = encoding.token() {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(token));
    }
    h.insert(header::CACHE_CONTROL, cache_control);
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    response
}

/// The size of a body once a Lambda response wraps it in a JSON string:
/// every `"` and `\` gains a backslash (serde_json already escaped the rest).
pub fn escaped_len(body: &[u8]) -> usize {
    body.len() + body.iter().filter(|b| matches!(b, b'"' | b'\\')).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::time::Duration;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn negotiation_follows_the_clients_preferences() {
        let pick = |v: &str| Encoding::negotiate(&headers(&[("accept-encoding", v)]));
        assert_eq!(Encoding::negotiate(&HeaderMap::new()), Encoding::Identity);
        assert_eq!(pick("gzip"), Encoding::Gzip);
        assert_eq!(pick("gzip, deflate, br"), Encoding::Brotli);
        assert_eq!(pick("br;q=0.5, gzip"), Encoding::Gzip);
        assert_eq!(pick("br;q=0, gzip;q=0"), Encoding::Identity);
        assert_eq!(pick("identity"), Encoding::Identity);
        assert_eq!(pick("*"), Encoding::Brotli);
        assert_eq!(pick("gzip;q=1, *;q=0"), Encoding::Gzip);
    }

    #[test]
    fn both_codings_round_trip() {
        let body = br#"{"toolkits":[{"slug":"github","name":"GitHub"}]}"#.repeat(200);
        let mut gz = String::new();
        flate2::read::GzDecoder::new(&Encoding::Gzip.encode(&body)[..])
            .read_to_string(&mut gz)
            .unwrap();
        assert_eq!(gz.as_bytes(), &body[..]);
        let mut br = Vec::new();
        brotli::BrotliDecompress(&mut &Encoding::Brotli.encode(&body)[..], &mut br).unwrap();
        assert_eq!(br, body);
        assert!(Encoding::Brotli.encode(&body).len() < body.len() / 10);
    }

    #[test]
    fn conditional_requests() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let v = Validators {
            etag: "abc".into(),
            last_modified: Some(at),
        };
        assert_eq!(v.etag_for(Encoding::Gzip), "\"abc-gzip\"");
        assert!(v.not_modified(&headers(&[("if-none-match", "\"abc\"")])));
        assert!(v.not_modified(&headers(&[("if-none-match", "\"x\", W/\"abc-br\"")])));
        assert!(v.not_modified(&headers(&[("if-none-match", "*")])));
        assert!(!v.not_modified(&headers(&[("if-none-match", "\"abcd\"")])));
        assert!(!v.not_modified(&headers(&[("if-none-match", "\"abc-zstd\"")])));
        let date = |t: SystemTime| httpdate::fmt_http_date(t);
        assert!(v.not_modified(&headers(&[("if-modified-since", &date(at))])));
        assert!(!v.not_modified(&headers(&[(
            "if-modified-since",
            &date(at - Duration::from_secs(1))
        )])));
        // If-None-Match wins over If-Modified-Since.
        assert!(!v.not_modified(&headers(&[
            ("if-none-match", "\"old\""),
            ("if-modified-since", &date(at)),
        ])));
    }

    #[test]
    fn the_lambda_escaping_is_counted_exactly() {
        let body = br#"{"a":"x\"y\\z"}"#;
        let wrapped = serde_json::to_string(std::str::from_utf8(body).unwrap()).unwrap();
        assert_eq!(escaped_len(body), wrapped.len() - 2);
    }
}
