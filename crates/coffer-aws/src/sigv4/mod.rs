//! AWS Signature Version 4 verification of an incoming request.
//!
//! [`verify`] takes the request exactly as received (method, raw path, raw
//! query, headers with duplicates, body), the caller's clock reading and a
//! secret-key lookup, and either returns who signed it for which region and
//! service ([`Verified`]) or a typed [`SigV4Error`] that renders to the error
//! AWS itself would return.
//!
//! Both signature transports are supported:
//!
//! * the `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
//!   Signature=...` header, dated by `X-Amz-Date` (or `Date`), accepted within
//!   15 minutes either side of `now` as AWS does;
//! * presigned query strings (`X-Amz-Algorithm`, `X-Amz-Credential`,
//!   `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Signature`),
//!   valid from 15 minutes before `X-Amz-Date` until `X-Amz-Date +
//!   X-Amz-Expires` (1 to 604800 seconds).
//!
//! The HTTP layer must hand over the `Host` header as received (for HTTP/2,
//! the `:authority` pseudo-header under the name `host`), since it is always
//! signed.
//!
//! ```
//! use coffer_aws::sigv4::{sign_authorization_header, verify, Request, SecretKeyMaterial, VerifyConfig};
//! use time::macros::datetime;
//!
//! let now = datetime!(2026-01-15 12:00:00 UTC);
//! let secret = || SecretKeyMaterial::new(b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_vec());
//! let mut headers = vec![
//!     ("Host".to_string(), "localhost:7878".to_string()),
//!     ("X-Amz-Date".to_string(), "20260115T120000Z".to_string()),
//!     ("X-Amz-Target".to_string(), "secretsmanager.GetSecretValue".to_string()),
//! ];
//! let body = br#"{"SecretId":"prod/db"}"#;
//! let req = Request { method: "POST", path: "/", query: "", headers: &headers, body };
//! let auth = sign_authorization_header(
//!     &req, &["host", "x-amz-date", "x-amz-target"], "AKIDEXAMPLE", &secret(),
//!     "us-east-1", "secretsmanager", now,
//! )?;
//! headers.push(("Authorization".to_string(), auth));
//!
//! let req = Request { method: "POST", path: "/", query: "", headers: &headers, body };
//! let config = VerifyConfig::new(["secretsmanager", "kms"]);
//! let who = verify(&req, now, &config, |id| (id == "AKIDEXAMPLE").then(secret))?;
//! assert_eq!((who.access_key_id.as_str(), who.region.as_str()), ("AKIDEXAMPLE", "us-east-1"));
//! # Ok::<(), coffer_aws::sigv4::SigV4Error>(())
//! ```

mod canonical;
mod checks;
mod client;
mod config;
mod error;
mod key;
mod parse;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

pub use error::{SigV4Error, SIGNATURE_MISMATCH_MESSAGE, UNRECOGNIZED_CLIENT_MESSAGE};
pub use key::SecretKeyMaterial;
pub use parse::ALGORITHM;

pub use client::{presign_query, sign_authorization_header};
pub use config::{AuthKind, Limits, RegionRule, Request, Verified, VerifyConfig};

use canonical::QueryParam;
use checks::{Q_ALGORITHM, Q_CREDENTIAL, Q_SECURITY_TOKEN, Q_SIGNATURE};
use parse::{echo, Credential};

/// The clock-skew window AWS applies to header-signed requests.
pub const MAX_SKEW: Duration = Duration::minutes(15);

/// The longest presigned validity AWS accepts (7 days), in seconds.
pub const MAX_PRESIGNED_EXPIRES: u32 = 604_800;

/// The payload-hash value that tells the server the body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// SHA-256 of the empty string, the payload hash of a request without body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c5113fb92427ae41e4649b934ca495991b7852b855";

/// Verifies the SigV4 signature of `req` as of `now`.
///
/// `lookup` maps an access key id to its secret, returning `None` for
/// unknown or disabled keys. It is called at most once, and only after the
/// request's structure, scope and timing have been checked.
pub fn verify<F>(
    req: &Request<'_>,
    now: OffsetDateTime,
    config: &VerifyConfig,
    lookup: F,
) -> Result<Verified, SigV4Error>
where
    F: Fn(&str) -> Option<SecretKeyMaterial>,
{
    config::check_limits(req, &config.limits)?;
    let params = canonical::parse_query(req.query, config.limits.max_query_params)?;

    let auth_headers: Vec<&str> = header_values(req.headers, "authorization").collect();
    let has_query_auth = params
        .iter()
        .any(|p| [Q_ALGORITHM, Q_CREDENTIAL, Q_SIGNATURE].contains(&p.name.as_slice()));
    let auth = match (auth_headers.as_slice(), has_query_auth) {
        ([], false) => return Err(SigV4Error::MissingAuthentication),
        ([_, ..], true) => return Err(SigV4Error::AmbiguousAuthentication),
        ([value], false) => checks::header_auth(req, value, &config.limits)?,
        ([], true) => checks::presigned_auth(&params, &config.limits)?,
        ([_, _, ..], false) => {
            return Err(SigV4Error::Incomplete(
                "The request carries more than one Authorization header.".to_string(),
            ))
        }
    };

    for required in &config.required_signed_headers {
        if !auth.signed_headers.iter().any(|h| h == required) {
            return Err(SigV4Error::Incomplete(format!(
                "Header '{}' must be signed for this service.",
                echo(required)
            )));
        }
    }
    for name in ["host", "x-amz-date", "x-amz-content-sha256"] {
        if header_values(req.headers, name).nth(1).is_some() {
            return Err(SigV4Error::Incomplete(format!(
                "The request carries more than one '{name}' header."
            )));
        }
    }

    checks::check_scope(&auth, config)?;
    checks::check_time(&auth, now)?;

    let has_token = header_values(req.headers, "x-amz-security-token")
        .next()
        .is_some()
        || params.iter().any(|p| p.name.as_slice() == Q_SECURITY_TOKEN);
    if has_token {
        // Coffer issues no temporary credentials, so no session token can
        // be valid; AWS answers an invalid token exactly like this.
        return Err(SigV4Error::UnrecognizedClient);
    }
    let secret = lookup(&auth.credential.access_key_id).ok_or(SigV4Error::UnrecognizedClient)?;

    let body_hash = hex(&Sha256::digest(req.body));
    let declared = header_values(req.headers, "x-amz-content-sha256").next();
    let payload_hash = match declared {
        None => body_hash.clone(),
        Some(UNSIGNED_PAYLOAD) if config.allow_unsigned_payload => UNSIGNED_PAYLOAD.to_string(),
        Some(UNSIGNED_PAYLOAD) => {
            return Err(SigV4Error::Incomplete(
                "UNSIGNED-PAYLOAD is not accepted by this service; sign the request body."
                    .to_string(),
            ))
        }
        Some(v) if is_lower_hex_sha256(v) => v.to_string(),
        Some(v) => {
            return Err(SigV4Error::Incomplete(format!(
                "x-amz-content-sha256 must be the lower-case hex SHA-256 of the body, not '{}'.",
                echo(v)
            )))
        }
    };

    let exclude = matches!(auth.kind, AuthKind::Presigned { .. }).then_some(Q_SIGNATURE);
    let canonical_request =
        build_canonical_request(req, &params, exclude, &auth.signed_headers, &payload_hash)?;
    let expected = signature_hex(
        &secret,
        &auth.credential,
        &auth.amz_date,
        &canonical_request,
    );
    drop(secret);
    if !bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        return Err(SigV4Error::SignatureMismatch);
    }
    // Checked after the signature: the hash header is signed, so a body
    // swapped under it keeps the signature valid and is caught here, and
    // only a client holding the key learns that its hash was wrong.
    let payload_signed = payload_hash != UNSIGNED_PAYLOAD;
    if payload_signed && payload_hash != body_hash {
        return Err(SigV4Error::ContentSha256Mismatch);
    }

    Ok(Verified {
        access_key_id: auth.credential.access_key_id,
        region: auth.credential.region,
        service: auth.credential.service,
        signed_at: auth.signed_at,
        kind: auth.kind,
        signed_headers: auth.signed_headers,
        payload_signed,
    })
}

/// The canonical request: method, canonical URI, canonical query, canonical
/// headers, signed header list and payload hash, one per line.
pub(crate) fn build_canonical_request(
    req: &Request<'_>,
    params: &[QueryParam],
    exclude: Option<&[u8]>,
    signed: &[String],
    payload_hash: &str,
) -> Result<String, SigV4Error> {
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical::canonical_uri(req.path),
        canonical::canonical_query(params, exclude),
        canonical::canonical_headers(req.headers, signed)?,
        signed.join(";"),
        payload_hash
    ))
}

pub(crate) fn signature_hex(
    secret: &SecretKeyMaterial,
    credential: &Credential,
    amz_date: &str,
    canonical_request: &str,
) -> String {
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{}\n{}",
        credential.scope(),
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let k_signing = key::signing_key(
        secret,
        &credential.date,
        &credential.region,
        &credential.service,
    );
    hex(&*key::hmac(&*k_signing, string_to_sign.as_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

fn is_lower_hex_sha256(v: &str) -> bool {
    v.len() == 64
        && v.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub(crate) fn header_values<'h>(
    headers: &'h [(String, String)],
    name: &'h str,
) -> impl Iterator<Item = &'h str> + 'h {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests;
