//! The request as handed to the verifier, what the verifier accepts, and what
//! it reports back.

use time::OffsetDateTime;

use super::error::SigV4Error;

/// An incoming HTTP request, exactly as received.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// HTTP method (`POST`).
    pub method: &'a str,
    /// Request-target path as received, still percent-encoded, without the
    /// query (`/`).
    pub path: &'a str,
    /// Raw query string without the leading `?` (empty if none).
    pub query: &'a str,
    /// Header (name, value) pairs in the order received; repeated headers
    /// appear once per occurrence.
    pub headers: &'a [(String, String)],
    /// The complete request body.
    pub body: &'a [u8],
}

/// Which regions a credential scope may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionRule {
    /// Any syntactically valid region: a local vault has no real regions, so
    /// whatever region the SDK is configured with is accepted and reported.
    Any,
    /// Only these regions.
    OneOf(Vec<String>),
}

/// Upper bounds on every part of a request, checked before any parsing or
/// hashing so that hostile input costs bounded work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest method name.
    pub max_method_bytes: usize,
    /// Longest raw path.
    pub max_path_bytes: usize,
    /// Longest raw query string.
    pub max_query_bytes: usize,
    /// Most query parameters.
    pub max_query_params: usize,
    /// Most header lines.
    pub max_headers: usize,
    /// Most bytes over all header names and values.
    pub max_header_bytes: usize,
    /// Most names in `SignedHeaders`.
    pub max_signed_headers: usize,
    /// Largest body.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_method_bytes: 16,
            max_path_bytes: 8 * 1024,
            max_query_bytes: 16 * 1024,
            max_query_params: 256,
            max_headers: 128,
            max_header_bytes: 64 * 1024,
            max_signed_headers: 64,
            // Secrets Manager secrets are at most 64 KiB; leave room for JSON
            // framing and base64 of binary secrets.
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// What the verifier accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyConfig {
    /// Service names a credential scope may name (`secretsmanager`, `kms`).
    pub services: Vec<String>,
    /// Regions a credential scope may name.
    pub regions: RegionRule,
    /// Whether `x-amz-content-sha256: UNSIGNED-PAYLOAD` is accepted. Off by
    /// default: the JSON services sign their bodies, and an unsigned body
    /// would let anyone who sees a request replay its headers with another
    /// operation payload.
    pub allow_unsigned_payload: bool,
    /// Headers that must be signed besides `host` (lower-case), e.g.
    /// `x-amz-target` so that the operation cannot be swapped.
    pub required_signed_headers: Vec<String>,
    /// Size bounds.
    pub limits: Limits,
}

impl VerifyConfig {
    /// Accept the given services in any region, with default limits.
    pub fn new<S: Into<String>>(services: impl IntoIterator<Item = S>) -> Self {
        Self {
            services: services.into_iter().map(Into::into).collect(),
            regions: RegionRule::Any,
            allow_unsigned_payload: false,
            required_signed_headers: Vec::new(),
            limits: Limits::default(),
        }
    }
}

/// How the request carried its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// `Authorization` header.
    Header,
    /// Presigned query string, valid for `expires_secs` after signing.
    Presigned {
        /// The `X-Amz-Expires` value.
        expires_secs: u32,
    },
}

/// A successfully verified request: who signed it, for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The access key id whose secret produced the signature.
    pub access_key_id: String,
    /// The region named in the credential scope.
    pub region: String,
    /// The service named in the credential scope.
    pub service: String,
    /// The signing time (`X-Amz-Date`).
    pub signed_at: OffsetDateTime,
    /// Header or presigned.
    pub kind: AuthKind,
    /// The signed header names, lower-case and sorted.
    pub signed_headers: Vec<String>,
    /// False only when the client sent `UNSIGNED-PAYLOAD` (and the config
    /// allowed it): then the body is not covered by the signature.
    pub payload_signed: bool,
}

pub(crate) fn check_limits(req: &Request<'_>, limits: &Limits) -> Result<(), SigV4Error> {
    if req.method.len() > limits.max_method_bytes {
        return Err(SigV4Error::TooLarge("method"));
    }
    if req.path.len() > limits.max_path_bytes {
        return Err(SigV4Error::TooLarge("path"));
    }
    if req.query.len() > limits.max_query_bytes {
        return Err(SigV4Error::TooLarge("query string"));
    }
    if req.headers.len() > limits.max_headers {
        return Err(SigV4Error::TooLarge("header count"));
    }
    let header_bytes = req.headers.iter().fold(0usize, |acc, (n, v)| {
        acc.saturating_add(n.len()).saturating_add(v.len())
    });
    if header_bytes > limits.max_header_bytes {
        return Err(SigV4Error::TooLarge("headers"));
    }
    if req.body.len() > limits.max_body_bytes {
        return Err(SigV4Error::TooLarge("body"));
    }
    Ok(())
}
