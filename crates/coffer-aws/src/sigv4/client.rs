//! The signing side, for Coffer's own tools and tests that talk to the
//! AWS-compatible endpoint. It shares every canonicalisation rule with the
//! verifier, so the two cannot drift apart.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::config::Request;
use super::error::SigV4Error;
use super::key::SecretKeyMaterial;
use super::parse::{self, format_amz_date, Credential};
use super::{build_canonical_request, canonical, header_values, hex, signature_hex, ALGORITHM};

/// Computes the `Authorization` header value for a request, signing exactly
/// the named headers (which must be present in `req`; `host` is required).
///
/// This is the client side of [`verify`], for Coffer's own tools and tests
/// that talk to the AWS-compatible endpoint. The body is always signed.
pub fn sign_authorization_header(
    req: &Request<'_>,
    signed_headers: &[&str],
    access_key_id: &str,
    secret: &SecretKeyMaterial,
    region: &str,
    service: &str,
    signed_at: OffsetDateTime,
) -> Result<String, SigV4Error> {
    let (names, amz_date, credential) =
        scope(signed_headers, access_key_id, region, service, signed_at)?;
    let params = canonical::parse_query(req.query, usize::MAX)?;
    let payload_hash = payload_hash(req);
    let canonical_request = build_canonical_request(req, &params, None, &names, &payload_hash)?;
    let signature = signature_hex(secret, &credential, &amz_date, &canonical_request);
    Ok(format!(
        "{ALGORITHM} Credential={access_key_id}/{}, SignedHeaders={}, Signature={signature}",
        credential.scope(),
        names.join(";")
    ))
}

/// Builds a presigned query string for `req`: its own query followed by the
/// `X-Amz-*` authentication parameters and `X-Amz-Signature`, valid for
/// `expires_secs` after `signed_at`.
///
/// The client side of the presigned transport, for Coffer's own tools and
/// tests. The body (if any) is signed.
#[allow(clippy::too_many_arguments)]
pub fn presign_query(
    req: &Request<'_>,
    signed_headers: &[&str],
    access_key_id: &str,
    secret: &SecretKeyMaterial,
    region: &str,
    service: &str,
    signed_at: OffsetDateTime,
    expires_secs: u32,
) -> Result<String, SigV4Error> {
    let (names, amz_date, credential) =
        scope(signed_headers, access_key_id, region, service, signed_at)?;
    let mut query = String::from(req.query);
    for (name, value) in [
        ("X-Amz-Algorithm", ALGORITHM.to_string()),
        (
            "X-Amz-Credential",
            format!("{access_key_id}/{}", credential.scope()),
        ),
        ("X-Amz-Date", amz_date.clone()),
        ("X-Amz-Expires", expires_secs.to_string()),
        ("X-Amz-SignedHeaders", names.join(";")),
    ] {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(name);
        query.push('=');
        canonical::uri_encode(value.as_bytes(), false, &mut query);
    }
    let params = canonical::parse_query(&query, usize::MAX)?;
    let payload_hash = payload_hash(req);
    let canonical_request = build_canonical_request(req, &params, None, &names, &payload_hash)?;
    let signature = signature_hex(secret, &credential, &amz_date, &canonical_request);
    query.push_str("&X-Amz-Signature=");
    query.push_str(&signature);
    Ok(query)
}

/// Sorted lower-case signed header names, the ISO 8601 signing time and the
/// credential, validated by the same parsers the verifier uses.
fn scope(
    signed_headers: &[&str],
    access_key_id: &str,
    region: &str,
    service: &str,
    signed_at: OffsetDateTime,
) -> Result<(Vec<String>, String, Credential), SigV4Error> {
    let mut names: Vec<String> = signed_headers
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let names = parse::parse_signed_headers(&names.join(";"), usize::MAX)?;
    let amz_date = format_amz_date(signed_at);
    let credential = parse::parse_credential(&format!(
        "{access_key_id}/{}/{region}/{service}/aws4_request",
        amz_date.get(..8).unwrap_or_default()
    ))?;
    Ok((names, amz_date, credential))
}

/// The declared `x-amz-content-sha256`, else the body's SHA-256.
fn payload_hash(req: &Request<'_>) -> String {
    header_values(req.headers, "x-amz-content-sha256")
        .next()
        .map(str::to_string)
        .unwrap_or_else(|| hex(&Sha256::digest(req.body)))
}
