//! Parsing the authentication parameters a client sent: the `Authorization`
//! header components, the credential scope, the signed-headers list and the
//! request timestamp.
//!
//! Parsing is strict on purpose. Every field that feeds the signature check
//! must have exactly one interpretation; anything ambiguous (repeated
//! components, unsorted or upper-case signed headers, unknown components) is
//! rejected as `IncompleteSignatureException` rather than guessed at.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::error::SigV4Error;

/// The only algorithm this verifier accepts.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

const AMZ_DATE: &[FormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");
const HTTP_DATE: &[FormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second]"
);

/// Longest piece of client input echoed back in an error message.
const ECHO_MAX: usize = 128;

/// Client input made safe to echo in a message: bounded, control characters
/// replaced, so a message can neither grow without bound nor break a log line.
pub(crate) fn echo(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(ECHO_MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().count() > ECHO_MAX {
        out.push_str("...");
    }
    out
}

/// The parsed `Credential` value: `<AccessKeyId>/<YYYYMMDD>/<region>/<service>/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credential {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub terminator: String,
}

impl Credential {
    /// The credential scope as it appears in the string to sign.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.date, self.region, self.service, self.terminator
        )
    }
}

fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Parses a credential; only syntax is checked here, the scope's fit to the
/// request is checked by the verifier.
pub(crate) fn parse_credential(raw: &str) -> Result<Credential, SigV4Error> {
    let parts: Vec<&str> = raw.split('/').collect();
    let [akid, date, region, service, terminator] = parts.as_slice() else {
        return Err(SigV4Error::Incomplete(format!(
            "Credential '{}' is malformed: expected '<AccessKeyId>/<YYYYMMDD>/<region>/<service>/aws4_request'.",
            echo(raw)
        )));
    };
    let akid_ok = !akid.is_empty()
        && akid.len() <= 128
        && akid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !akid_ok {
        return Err(SigV4Error::Incomplete(format!(
            "Credential '{}' has a malformed access key id.",
            echo(raw)
        )));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SigV4Error::Incomplete(format!(
            "Credential '{}' has a malformed date: expected YYYYMMDD.",
            echo(raw)
        )));
    }
    if !is_scope_token(region) {
        return Err(SigV4Error::BadScope(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            echo(region)
        )));
    }
    if !is_scope_token(service) {
        return Err(SigV4Error::BadScope(format!(
            "Credential should be scoped to a valid service, not '{}'. ",
            echo(service)
        )));
    }
    Ok(Credential {
        access_key_id: (*akid).to_string(),
        date: (*date).to_string(),
        region: (*region).to_string(),
        service: (*service).to_string(),
        terminator: (*terminator).to_string(),
    })
}

fn is_header_name_char(b: u8) -> bool {
    // RFC 9110 tchar, restricted to lower case.
    b.is_ascii_lowercase()
        || b.is_ascii_digit()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// Parses `SignedHeaders`: `;`-separated lower-case names in strictly
/// ascending order (so sorted and free of duplicates), which must include
/// `host`.
pub(crate) fn parse_signed_headers(raw: &str, max: usize) -> Result<Vec<String>, SigV4Error> {
    let names: Vec<&str> = raw.split(';').collect();
    if names.len() > max {
        return Err(SigV4Error::TooLarge("signed header count"));
    }
    for name in &names {
        if name.is_empty() || name.len() > 256 || !name.bytes().all(is_header_name_char) {
            return Err(SigV4Error::Incomplete(format!(
                "SignedHeaders '{}' contains an invalid header name '{}': names must be non-empty and lower-case.",
                echo(raw),
                echo(name)
            )));
        }
    }
    if !names.windows(2).all(|w| w[0] < w[1]) {
        return Err(SigV4Error::Incomplete(format!(
            "SignedHeaders '{}' must be sorted and free of duplicates.",
            echo(raw)
        )));
    }
    if !names.contains(&"host") {
        return Err(SigV4Error::Incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_string(),
        ));
    }
    Ok(names.into_iter().map(str::to_string).collect())
}

/// The three components of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuthHeader {
    pub credential: String,
    pub signed_headers: String,
    pub signature: String,
}

/// Parses the `Authorization` header value.
pub(crate) fn parse_authorization(value: &str) -> Result<AuthHeader, SigV4Error> {
    let value = value.trim_matches([' ', '\t']);
    let (algorithm, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(SigV4Error::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{}'. Only '{ALGORITHM}' is supported.",
            echo(algorithm)
        )));
    }
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',').map(|p| p.trim_matches([' ', '\t'])) {
        if part.is_empty() {
            continue;
        }
        let Some((key, val)) = part.split_once('=') else {
            return Err(SigV4Error::Incomplete(format!(
                "'{}' not a valid key=value pair (missing equal-sign) in Authorization header: '{}'.",
                echo(part),
                echo(value)
            )));
        };
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            other => {
                return Err(SigV4Error::Incomplete(format!(
                    "Unknown component '{}' in Authorization header.",
                    echo(other)
                )))
            }
        };
        if slot.is_some() {
            return Err(SigV4Error::Incomplete(format!(
                "Authorization header has more than one '{key}' component."
            )));
        }
        *slot = Some(val.to_string());
    }
    let mut missing = String::new();
    for (name, present) in [
        ("Credential", credential.is_some()),
        ("Signature", signature.is_some()),
        ("SignedHeaders", signed_headers.is_some()),
    ] {
        if !present {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    match (credential, signed_headers, signature) {
        (Some(credential), Some(signed_headers), Some(signature)) if missing.is_empty() => {
            Ok(AuthHeader {
                credential,
                signed_headers,
                signature,
            })
        }
        _ => Err(SigV4Error::Incomplete(format!(
            "{}Authorization={}",
            missing,
            echo(value)
        ))),
    }
}

/// Parses an ISO 8601 basic timestamp (`20150830T123600Z`).
pub(crate) fn parse_amz_date(raw: &str) -> Result<OffsetDateTime, SigV4Error> {
    if raw.len() == 16 {
        if let Ok(dt) = PrimitiveDateTime::parse(raw, AMZ_DATE) {
            return Ok(dt.assume_utc());
        }
    }
    Err(SigV4Error::Incomplete(format!(
        "X-Amz-Date '{}' is not an ISO 8601 basic timestamp like 20150830T123600Z.",
        echo(raw)
    )))
}

/// Parses an HTTP `Date` header (`Sun, 06 Nov 1994 08:49:37 GMT`; the
/// numeric zones `+0000`/`-0000` that some signers emit are also UTC).
pub(crate) fn parse_http_date(raw: &str) -> Result<OffsetDateTime, SigV4Error> {
    let bad = || {
        SigV4Error::Incomplete(format!(
            "Date header '{}' is not an HTTP date like 'Sun, 06 Nov 1994 08:49:37 GMT'.",
            echo(raw)
        ))
    };
    let raw_trim = raw.trim();
    if raw_trim.len() > 64 {
        return Err(bad());
    }
    let (stamp, zone) = raw_trim.rsplit_once(' ').ok_or_else(bad)?;
    if !matches!(zone, "GMT" | "UTC" | "UT" | "Z" | "+0000" | "-0000") {
        return Err(bad());
    }
    PrimitiveDateTime::parse(stamp, HTTP_DATE)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|_| bad())
}

/// Formats a timestamp as ISO 8601 basic, as it appears in the string to
/// sign and in AWS's skew messages.
pub(crate) fn format_amz_date(dt: OffsetDateTime) -> String {
    let dt = dt.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

    #[test]
    fn parses_the_documented_header() {
        let a = parse_authorization(GOOD).unwrap();
        assert_eq!(
            a.credential,
            "AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request"
        );
        assert_eq!(a.signed_headers, "content-type;host;x-amz-date");
        assert!(a.signature.starts_with("5d672d"));
    }

    #[test]
    fn tolerates_no_space_after_commas() {
        let h = GOOD.replace(", ", ",");
        assert!(parse_authorization(&h).is_ok());
    }

    fn incomplete(r: Result<AuthHeader, SigV4Error>) -> String {
        match r {
            Err(SigV4Error::Incomplete(m)) => m,
            other => panic!("expected Incomplete, got {other:?}"),
        }
    }

    #[test]
    fn each_malformed_part_is_incomplete() {
        let m = incomplete(parse_authorization("AWS4-HMAC-SHA512 Credential=a"));
        assert!(m.contains("Unsupported AWS 'algorithm'"), "{m}");
        let m = incomplete(parse_authorization("AWS AKID:sig"));
        assert!(m.contains("Unsupported"), "{m}");
        let m = incomplete(parse_authorization(
            &GOOD.replace("Credential=", "Credential "),
        ));
        assert!(m.contains("missing equal-sign"), "{m}");
        let m = incomplete(parse_authorization(&GOOD.replace(", Signature=", ", Foo=")));
        assert!(m.contains("Unknown component 'Foo'"), "{m}");
        let m = incomplete(parse_authorization(&format!("{GOOD}, Signature=00")));
        assert!(m.contains("more than one 'Signature'"), "{m}");
        let m = incomplete(parse_authorization("AWS4-HMAC-SHA256 "));
        assert!(m.contains("requires 'Credential' parameter"), "{m}");
        assert!(m.contains("requires 'Signature' parameter"), "{m}");
        assert!(m.contains("requires 'SignedHeaders' parameter"), "{m}");
        let no_sig = GOOD.split(", Signature").next().unwrap();
        let m = incomplete(parse_authorization(no_sig));
        assert!(m.contains("requires 'Signature' parameter"), "{m}");
        assert!(!m.contains("requires 'Credential'"), "{m}");
    }

    #[test]
    fn credential_shapes() {
        let c = parse_credential("AKID/20150830/us-east-1/iam/aws4_request").unwrap();
        assert_eq!(c.scope(), "20150830/us-east-1/iam/aws4_request");
        for bad in [
            "AKID/20150830/us-east-1/iam",
            "AKID/20150830/us-east-1/iam/aws4_request/x",
            "/20150830/us-east-1/iam/aws4_request",
            "AK ID/20150830/us-east-1/iam/aws4_request",
            "AKID/2015083/us-east-1/iam/aws4_request",
            "AKID/2015083a/us-east-1/iam/aws4_request",
        ] {
            assert!(
                matches!(parse_credential(bad), Err(SigV4Error::Incomplete(_))),
                "{bad}"
            );
        }
        for bad in [
            "AKID/20150830/US-EAST-1/iam/aws4_request",
            "AKID/20150830//iam/aws4_request",
            "AKID/20150830/us-east-1/I AM/aws4_request",
        ] {
            assert!(
                matches!(parse_credential(bad), Err(SigV4Error::BadScope(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn signed_headers_rules() {
        assert_eq!(
            parse_signed_headers("content-type;host;x-amz-date", 64).unwrap(),
            vec!["content-type", "host", "x-amz-date"]
        );
        for bad in [
            "host;content-type",
            "host;host",
            "Host",
            "host;",
            ";host",
            "ho st",
        ] {
            assert!(
                matches!(
                    parse_signed_headers(bad, 64),
                    Err(SigV4Error::Incomplete(_))
                ),
                "{bad}"
            );
        }
        match parse_signed_headers("content-type;x-amz-date", 64) {
            Err(SigV4Error::Incomplete(m)) => assert!(m.contains("'Host'"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_signed_headers("a;b;host", 2),
            Err(SigV4Error::TooLarge("signed header count"))
        );
    }

    #[test]
    fn dates() {
        let d = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(format_amz_date(d), "20150830T123600Z");
        for bad in [
            "20150830T123600",
            "20150830 123600Z",
            "20151330T123600Z",
            "x",
            "",
        ] {
            assert!(parse_amz_date(bad).is_err(), "{bad}");
        }
        for ok in [
            "Sun, 30 Aug 2015 12:36:00 GMT",
            "Sun, 30 Aug 2015 12:36:00 -0000",
        ] {
            assert_eq!(parse_http_date(ok).unwrap(), d, "{ok}");
        }
        assert!(parse_http_date("Sun, 30 Aug 2015 12:36:00 +0200").is_err());
        assert!(parse_http_date("yesterday").is_err());
    }

    #[test]
    fn echo_is_bounded_and_control_free() {
        let long = "a".repeat(1000);
        assert_eq!(echo(&long).len(), ECHO_MAX + 3);
        assert_eq!(echo("a\nb"), "a?b");
    }
}
