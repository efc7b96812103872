//! The canonical request: the exact bytes both sides hash.
//!
//! A signature only means something if the server rebuilds *precisely* the
//! string the client signed, so each rule here follows the SigV4 specification
//! for services other than S3:
//!
//! * **Path**: dot segments and empty segments are removed (RFC 3986 5.2.4,
//!   plus AWS's collapsing of `//`), then the path *as received on the wire*
//!   is URI-encoded once more. Because the wire path is already encoded by
//!   the client, this is the "encode each segment twice" rule of the spec.
//! * **Query**: every `name=value` pair is percent-decoded and re-encoded with
//!   the strict SigV4 encoding (unreserved `A-Za-z0-9-_.~` kept, everything
//!   else `%XX` upper-case), then sorted by encoded name and, for repeated
//!   names, by encoded value. A `+` on the wire decodes to a space, as in
//!   form encoding: botocore sends spaces in query parameters as `+` while
//!   signing them as `%20`, and AWS accepts that.
//! * **Headers**: lower-case names, values trimmed with inner runs of spaces
//!   and tabs folded to one space, repeated headers joined with `,` in the
//!   order received.

use super::error::SigV4Error;

/// URI-encodes `bytes` with the SigV4 rules into `out`; `/` is kept as is
/// when `keep_slash` (paths) and encoded otherwise (query components).
pub(crate) fn uri_encode(bytes: &[u8], keep_slash: bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        if unreserved || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// Removes `.`/`..` and empty segments, keeping a leading and (when anything
/// remains) a trailing slash; an empty path becomes `/`.
pub(crate) fn normalize_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    if path.starts_with('/') {
        out.push('/');
    }
    out.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
    out
}

/// The canonical URI for a non-S3 service from the path as received.
pub(crate) fn canonical_uri(path: &str) -> String {
    let normalized = normalize_path(path);
    let mut out = String::with_capacity(normalized.len() + 8);
    uri_encode(normalized.as_bytes(), true, &mut out);
    out
}

/// One query parameter, percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryParam {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes one query component; `+` is a space (see the module
/// docs), so a literal plus must arrive as `%2B`, which is how every SDK
/// sends it.
fn percent_decode(s: &str) -> Result<Vec<u8>, SigV4Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_val);
            let lo = bytes.get(i + 2).copied().and_then(hex_val);
            match (hi, lo) {
                (Some(hi), Some(lo)) => {
                    out.push((hi << 4) | lo);
                    i += 3;
                }
                _ => {
                    return Err(SigV4Error::MalformedQuery(format!(
                        "invalid percent-encoding at byte {i}"
                    )))
                }
            }
        } else {
            out.push(if b == b'+' { b' ' } else { b });
            i += 1;
        }
    }
    Ok(out)
}

/// Splits and decodes a raw query string (without the leading `?`). Empty
/// segments (`a=1&&b=2`) are skipped; a name without `=` has an empty value.
pub(crate) fn parse_query(raw: &str, max_params: usize) -> Result<Vec<QueryParam>, SigV4Error> {
    let mut params = Vec::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        if params.len() >= max_params {
            return Err(SigV4Error::TooLarge("query parameter count"));
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        params.push(QueryParam {
            name: percent_decode(name)?,
            value: percent_decode(value)?,
        });
    }
    Ok(params)
}

/// The canonical query string over `params`, leaving out any parameter named
/// exactly `exclude` (the presigned `X-Amz-Signature`).
pub(crate) fn canonical_query(params: &[QueryParam], exclude: Option<&[u8]>) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .filter(|p| Some(p.name.as_slice()) != exclude)
        .map(|p| {
            let mut n = String::with_capacity(p.name.len());
            uri_encode(&p.name, false, &mut n);
            let mut v = String::with_capacity(p.value.len());
            uri_encode(&p.value, false, &mut v);
            (n, v)
        })
        .collect();
    encoded.sort();
    let mut out = String::new();
    for (i, (n, v)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(n);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Trims a header value and folds inner runs of spaces/tabs to one space.
pub(crate) fn trim_all(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value.split([' ', '\t']).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The canonical headers block (each line `name:value\n`) for the already
/// validated, sorted, lower-case `signed` names. Every signed header must be
/// present in the request.
pub(crate) fn canonical_headers(
    headers: &[(String, String)],
    signed: &[String],
) -> Result<String, SigV4Error> {
    let mut out = String::new();
    for name in signed {
        let values: Vec<String> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| trim_all(v))
            .collect();
        if values.is_empty() {
            return Err(SigV4Error::Incomplete(format!(
                "Header '{name}' is listed in SignedHeaders but is not present in the request."
            )));
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_normalization_follows_rfc3986_and_aws_slash_collapsing() {
        assert_eq!(normalize_path(""), "/");
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path("/foo/.."), "/");
        assert_eq!(normalize_path("/foo/bar/../baz"), "/foo/baz");
        assert_eq!(normalize_path("/./foo"), "/foo");
        assert_eq!(normalize_path("//foo//"), "/foo/");
        assert_eq!(normalize_path("/../../x"), "/x");
        assert_eq!(normalize_path("/a/b/"), "/a/b/");
    }

    #[test]
    fn path_is_encoded_again_on_top_of_wire_encoding() {
        // A client sent "/a b" as "/a%20b"; the canonical URI double-encodes.
        assert_eq!(canonical_uri("/a%20b"), "/a%2520b");
        assert_eq!(canonical_uri("/-_.~/AZaz09"), "/-_.~/AZaz09");
        assert_eq!(canonical_uri("/é"), "/%C3%A9");
        assert_eq!(canonical_uri("/a:b@c"), "/a%3Ab%40c");
    }

    #[test]
    fn query_is_decoded_reencoded_and_sorted() {
        let p = parse_query("b=2&a=z&a=y&c&%41=1&sp=a%20b&plus=a+b&t=~%7E", 100).unwrap();
        assert_eq!(
            canonical_query(&p, None),
            "A=1&a=y&a=z&b=2&c=&plus=a%20b&sp=a%20b&t=~~"
        );
    }

    #[test]
    fn query_excludes_only_the_named_parameter() {
        let p = parse_query("X-Amz-Signature=abc&X-Amz-Date=1", 100).unwrap();
        assert_eq!(
            canonical_query(&p, Some(b"X-Amz-Signature")),
            "X-Amz-Date=1"
        );
    }

    #[test]
    fn query_rejects_bad_percent_encoding() {
        for q in ["a=%", "a=%4", "a=%zz", "%g0=1"] {
            assert!(
                matches!(parse_query(q, 100), Err(SigV4Error::MalformedQuery(_))),
                "{q}"
            );
        }
    }

    #[test]
    fn query_param_count_is_bounded() {
        assert_eq!(
            parse_query("a&b&c", 2),
            Err(SigV4Error::TooLarge("query parameter count"))
        );
    }

    #[test]
    fn header_values_are_trimmed_folded_and_joined() {
        let h = vec![
            ("X-Test".to_string(), "  a   b\t\tc  ".to_string()),
            ("host".to_string(), "example.com".to_string()),
            ("x-test".to_string(), "d".to_string()),
        ];
        let c = canonical_headers(&h, &["host".to_string(), "x-test".to_string()]).unwrap();
        assert_eq!(c, "host:example.com\nx-test:a b c,d\n");
    }

    #[test]
    fn missing_signed_header_is_incomplete() {
        let h = vec![("host".to_string(), "x".to_string())];
        assert!(matches!(
            canonical_headers(&h, &["host".to_string(), "x-amz-date".to_string()]),
            Err(SigV4Error::Incomplete(_))
        ));
    }
}
