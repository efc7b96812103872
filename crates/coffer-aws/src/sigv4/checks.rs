//! Extracting the authentication parameters from either transport and
//! checking their scope and timing against the request and the clock.

use time::{Duration, OffsetDateTime};

use super::canonical::QueryParam;
use super::config::{AuthKind, Limits, RegionRule, Request, VerifyConfig};
use super::error::SigV4Error;
use super::parse::{self, echo, format_amz_date, Credential};
use super::{header_values, ALGORITHM, MAX_PRESIGNED_EXPIRES, MAX_SKEW};

/// Authentication parameters common to both transports.
pub(crate) struct AuthParams {
    pub(crate) credential: Credential,
    pub(crate) signed_headers: Vec<String>,
    pub(crate) signature: String,
    pub(crate) signed_at: OffsetDateTime,
    pub(crate) amz_date: String,
    pub(crate) kind: AuthKind,
}

pub(crate) const Q_ALGORITHM: &[u8] = b"X-Amz-Algorithm";
pub(crate) const Q_CREDENTIAL: &[u8] = b"X-Amz-Credential";
pub(crate) const Q_DATE: &[u8] = b"X-Amz-Date";
pub(crate) const Q_EXPIRES: &[u8] = b"X-Amz-Expires";
pub(crate) const Q_SIGNED_HEADERS: &[u8] = b"X-Amz-SignedHeaders";
pub(crate) const Q_SIGNATURE: &[u8] = b"X-Amz-Signature";
pub(crate) const Q_SECURITY_TOKEN: &[u8] = b"X-Amz-Security-Token";

pub(crate) fn header_auth(
    req: &Request<'_>,
    value: &str,
    limits: &Limits,
) -> Result<AuthParams, SigV4Error> {
    let header = parse::parse_authorization(value)?;
    let credential = parse::parse_credential(&header.credential)?;
    let signed_headers =
        parse::parse_signed_headers(&header.signed_headers, limits.max_signed_headers)?;
    // X-Amz-Date takes precedence over Date, as in AWS's signers.
    let (date_header, signed_at) = if let Some(v) = header_values(req.headers, "x-amz-date").next()
    {
        ("x-amz-date", parse::parse_amz_date(v.trim())?)
    } else if let Some(v) = header_values(req.headers, "date").next() {
        if header_values(req.headers, "date").nth(1).is_some() {
            return Err(SigV4Error::Incomplete(
                "The request carries more than one 'date' header.".to_string(),
            ));
        }
        ("date", parse::parse_http_date(v)?)
    } else {
        return Err(SigV4Error::Incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                .to_string(),
        ));
    };
    if !signed_headers.iter().any(|h| h == date_header) {
        return Err(SigV4Error::Incomplete(format!(
            "The '{date_header}' header dates the signature and must be a 'SignedHeader'."
        )));
    }
    Ok(AuthParams {
        credential,
        signed_headers,
        signature: header.signature,
        amz_date: format_amz_date(signed_at),
        signed_at,
        kind: AuthKind::Header,
    })
}

pub(crate) fn presigned_auth(
    params: &[QueryParam],
    limits: &Limits,
) -> Result<AuthParams, SigV4Error> {
    const REQUIRED: [&[u8]; 6] = [
        Q_ALGORITHM,
        Q_CREDENTIAL,
        Q_SIGNATURE,
        Q_DATE,
        Q_SIGNED_HEADERS,
        Q_EXPIRES,
    ];
    let mut values: [Option<&str>; 6] = [None; 6];
    for (slot, name) in values.iter_mut().zip(REQUIRED) {
        let mut found = params.iter().filter(|p| p.name.as_slice() == name);
        let first = found.next();
        if found.next().is_some() {
            return Err(SigV4Error::Incomplete(format!(
                "Query parameter '{}' appears more than once.",
                String::from_utf8_lossy(name)
            )));
        }
        if let Some(p) = first {
            *slot = Some(std::str::from_utf8(&p.value).map_err(|_| {
                SigV4Error::Incomplete(format!(
                    "Query parameter '{}' is not valid UTF-8.",
                    String::from_utf8_lossy(name)
                ))
            })?);
        }
    }
    let [Some(algorithm), Some(credential), Some(signature), Some(date), Some(signed_headers), Some(expires)] =
        values
    else {
        return Err(SigV4Error::Incomplete(
            "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders', and 'X-Amz-Expires'. Re-examine the query-string parameters.".to_string(),
        ));
    };
    if algorithm != ALGORITHM {
        return Err(SigV4Error::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{}'. Only '{ALGORITHM}' is supported.",
            echo(algorithm)
        )));
    }
    let expires_secs = match expires.parse::<u32>() {
        Ok(e) if (1..=MAX_PRESIGNED_EXPIRES).contains(&e) && expires.bytes().all(|b| b.is_ascii_digit()) => e,
        _ => {
            return Err(SigV4Error::Incomplete(format!(
                "X-Amz-Expires must be a whole number of seconds from 1 to {MAX_PRESIGNED_EXPIRES}, not '{}'.",
                echo(expires)
            )))
        }
    };
    let signed_at = parse::parse_amz_date(date)?;
    Ok(AuthParams {
        credential: parse::parse_credential(credential)?,
        signed_headers: parse::parse_signed_headers(signed_headers, limits.max_signed_headers)?,
        signature: signature.to_string(),
        amz_date: format_amz_date(signed_at),
        signed_at,
        kind: AuthKind::Presigned { expires_secs },
    })
}

pub(crate) fn check_scope(auth: &AuthParams, config: &VerifyConfig) -> Result<(), SigV4Error> {
    let c = &auth.credential;
    let day = auth.amz_date.get(..8).unwrap_or_default();
    if c.date != day {
        return Err(SigV4Error::BadScope(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{day}', from '{}'.",
            c.date, auth.amz_date
        )));
    }
    if !config.services.contains(&c.service) {
        return Err(SigV4Error::BadScope(format!(
            "Credential should be scoped to correct service: '{}'. ",
            config.services.join("' or '")
        )));
    }
    if let RegionRule::OneOf(regions) = &config.regions {
        if !regions.contains(&c.region) {
            return Err(SigV4Error::BadScope(format!(
                "Credential should be scoped to a valid region, not '{}'. ",
                c.region
            )));
        }
    }
    if c.terminator != "aws4_request" {
        return Err(SigV4Error::BadScope(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'. ",
            echo(&c.terminator)
        )));
    }
    Ok(())
}

pub(crate) fn check_time(auth: &AuthParams, now: OffsetDateTime) -> Result<(), SigV4Error> {
    let signed = auth.signed_at;
    let fmt = format_amz_date;
    // Checked arithmetic throughout: `now` comes from the caller and the
    // signing date from the client, and neither may make this panic.
    if let Some(latest) = now.checked_add(MAX_SKEW) {
        if signed > latest {
            return Err(SigV4Error::SignatureExpired(format!(
                "Signature not yet current: {} is still later than {} ({} + 15 min.)",
                auth.amz_date,
                fmt(latest),
                fmt(now)
            )));
        }
    }
    match auth.kind {
        AuthKind::Header => {
            if let Some(earliest) = now.checked_sub(MAX_SKEW) {
                if signed < earliest {
                    return Err(SigV4Error::SignatureExpired(format!(
                        "Signature expired: {} is now earlier than {} ({} - 15 min.)",
                        auth.amz_date,
                        fmt(earliest),
                        fmt(now)
                    )));
                }
            }
        }
        AuthKind::Presigned { expires_secs } => {
            let validity = Duration::seconds(i64::from(expires_secs));
            if let Some(earliest) = now.checked_sub(validity) {
                if signed < earliest {
                    return Err(SigV4Error::PresignedExpired(format!(
                        "Signature expired: {} is now earlier than {} ({} - {expires_secs} sec.)",
                        auth.amz_date,
                        fmt(earliest),
                        fmt(now)
                    )));
                }
            }
        }
    }
    Ok(())
}
