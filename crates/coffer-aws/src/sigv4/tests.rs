//! Error-path tests for [`verify`]. Valid requests here are signed with this
//! crate's own client helpers; that the signing itself agrees with AWS is
//! shown independently by the AWS test-suite vector below and by the botocore
//! and `aws-sigv4` fixtures in `tests/`.

use time::macros::datetime;

use super::parse::format_amz_date;
use super::*;

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const NOW: OffsetDateTime = datetime!(2026-01-15 12:00:00 UTC);
const BODY: &[u8] = br#"{"SecretId":"prod/db"}"#;

fn lookup(id: &str) -> Option<SecretKeyMaterial> {
    (id == AKID).then(|| SecretKeyMaterial::new(SECRET.as_bytes().to_vec()))
}

fn config() -> VerifyConfig {
    VerifyConfig::new(["secretsmanager", "kms"])
}

fn h(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

/// An owned request, so tests can tamper with any part.
#[derive(Clone)]
struct Owned {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Owned {
    fn req(&self) -> Request<'_> {
        Request {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        }
    }

    fn verify_with(
        &self,
        now: OffsetDateTime,
        config: &VerifyConfig,
    ) -> Result<Verified, SigV4Error> {
        verify(&self.req(), now, config, lookup)
    }

    fn verify(&self) -> Result<Verified, SigV4Error> {
        self.verify_with(NOW, &config())
    }

    fn set_header(&mut self, name: &str, value: &str) {
        for (n, v) in &mut self.headers {
            if n.eq_ignore_ascii_case(name) {
                *v = value.to_string();
            }
        }
    }

    fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    fn authorization(&self) -> String {
        header_values(&self.headers, "authorization")
            .next()
            .unwrap()
            .to_string()
    }
}

/// A Secrets Manager GetSecretValue call, unsigned, dated `at`.
fn unsigned(at: OffsetDateTime) -> Owned {
    Owned {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: vec![
            h("Host", "localhost:7878"),
            h("X-Amz-Date", &format_amz_date(at)),
            h("Content-Type", "application/x-amz-json-1.1"),
            h("X-Amz-Target", "secretsmanager.GetSecretValue"),
            h("User-Agent", "test"),
        ],
        body: BODY.to_vec(),
    }
}

const SIGNED: &[&str] = &["content-type", "host", "x-amz-date", "x-amz-target"];

fn sign_as(
    mut o: Owned,
    signed: &[&str],
    region: &str,
    service: &str,
    at: OffsetDateTime,
) -> Owned {
    let secret = SecretKeyMaterial::new(SECRET.as_bytes().to_vec());
    let auth =
        sign_authorization_header(&o.req(), signed, AKID, &secret, region, service, at).unwrap();
    o.headers.push(h("Authorization", &auth));
    o
}

fn signed_at(at: OffsetDateTime) -> Owned {
    sign_as(unsigned(at), SIGNED, "us-east-1", "secretsmanager", at)
}

fn signed() -> Owned {
    signed_at(NOW)
}

fn with_auth(mut o: Owned, f: impl Fn(&str) -> String) -> Owned {
    let new = f(&o.authorization());
    o.set_header("authorization", &new);
    o
}

#[track_caller]
fn expect_code(r: Result<Verified, SigV4Error>, code: &str) -> SigV4Error {
    match r {
        Err(e) => {
            assert_eq!(e.aws_code(), code, "{e:?}");
            e
        }
        Ok(v) => panic!("expected {code}, verified {v:?}"),
    }
}

#[test]
fn aws_test_suite_get_vanilla_verifies() {
    // get-vanilla from the AWS SigV4 test suite.
    let headers = vec![
        h("Host", "example.amazonaws.com"),
        h("X-Amz-Date", "20150830T123600Z"),
        h("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    ];
    let req = Request {
        method: "GET",
        path: "/",
        query: "",
        headers: &headers,
        body: b"",
    };
    let v = verify(
        &req,
        datetime!(2015-08-30 12:40:00 UTC),
        &VerifyConfig::new(["service"]),
        lookup,
    )
    .unwrap();
    assert_eq!(v.access_key_id, AKID);
    assert_eq!(v.region, "us-east-1");
    assert_eq!(v.service, "service");
    assert_eq!(v.kind, AuthKind::Header);
    assert_eq!(v.signed_headers, vec!["host", "x-amz-date"]);
}

#[test]
fn valid_header_request_reports_signer_region_and_service() {
    let v = signed().verify().unwrap();
    assert_eq!(v.access_key_id, AKID);
    assert_eq!(v.region, "us-east-1");
    assert_eq!(v.service, "secretsmanager");
    assert_eq!(v.signed_at, NOW);
    assert!(v.payload_signed);
}

#[test]
fn no_authentication_at_all() {
    let e = expect_code(
        unsigned(NOW).verify(),
        "MissingAuthenticationTokenException",
    );
    assert_eq!(e, SigV4Error::MissingAuthentication);
    assert_eq!(e.to_aws_error().message(), "Missing Authentication Token");
}

#[test]
fn header_and_query_auth_together_are_rejected() {
    let mut o = signed();
    o.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256".into();
    assert_eq!(o.verify(), Err(SigV4Error::AmbiguousAuthentication));
}

#[test]
fn two_authorization_headers_are_rejected() {
    let mut o = signed();
    let a = o.authorization();
    o.headers.push(h("authorization", &a));
    expect_code(o.verify(), "IncompleteSignatureException");
}

#[test]
fn each_malformed_authorization_part_is_incomplete() {
    type Tamper = Box<dyn Fn(&str) -> String>;
    let cases: Vec<(&str, Tamper)> = vec![
        (
            "algorithm",
            Box::new(|a| a.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1")),
        ),
        (
            "no credential",
            Box::new(|a| a.replace("Credential=", "Cred=")),
        ),
        (
            "no signed headers",
            Box::new(|a| {
                let (pre, post) = a.split_once(", SignedHeaders=").unwrap();
                let sig = post.split_once(", ").unwrap().1;
                format!("{pre}, {sig}")
            }),
        ),
        (
            "no signature",
            Box::new(|a| a.split(", Signature=").next().unwrap().to_string()),
        ),
        (
            "missing equal sign",
            Box::new(|a| a.replace("Signature=", "Signature ")),
        ),
        (
            "credential parts",
            Box::new(|a| a.replace("/aws4_request", "")),
        ),
        (
            "credential date",
            Box::new(|a| a.replace("/20260115/", "/2026011/")),
        ),
        (
            "access key",
            Box::new(|a| a.replace("AKIDEXAMPLE", "AKID EXAMPLE")),
        ),
        (
            "unsorted signed headers",
            Box::new(|a| a.replace("content-type;host", "host;content-type")),
        ),
        (
            "upper-case signed header",
            Box::new(|a| a.replace(";host;", ";Host;")),
        ),
        (
            "duplicate signed header",
            Box::new(|a| a.replace(";host;", ";host;host;")),
        ),
        (
            "empty signed headers",
            Box::new(|a| a.replace("content-type;host;x-amz-date;x-amz-target", "")),
        ),
    ];
    for (what, f) in cases {
        let o = with_auth(signed(), f);
        let r = o.verify();
        assert!(
            matches!(r, Err(SigV4Error::Incomplete(_))),
            "{what}: {r:?} for {}",
            o.authorization()
        );
        assert_eq!(r.unwrap_err().aws_code(), "IncompleteSignatureException");
    }
}

#[test]
fn unsigned_host_is_incomplete() {
    let o = sign_as(
        unsigned(NOW),
        &["host", "x-amz-date"],
        "us-east-1",
        "secretsmanager",
        NOW,
    );
    let o = with_auth(o, |a| {
        a.replace("SignedHeaders=host;x-amz-date", "SignedHeaders=x-amz-date")
    });
    let e = expect_code(o.verify(), "IncompleteSignatureException");
    assert!(e.to_string().contains("'Host'"), "{e}");
}

#[test]
fn unsigned_date_header_is_incomplete() {
    let o = sign_as(
        unsigned(NOW),
        &["host", "x-amz-target"],
        "us-east-1",
        "secretsmanager",
        NOW,
    );
    let e = expect_code(o.verify(), "IncompleteSignatureException");
    assert!(e.to_string().contains("x-amz-date"), "{e}");
}

#[test]
fn missing_date_is_incomplete() {
    let mut o = signed();
    o.remove_header("x-amz-date");
    let e = expect_code(o.verify(), "IncompleteSignatureException");
    assert_eq!(
        e.to_string(),
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    );
}

#[test]
fn malformed_x_amz_date_is_incomplete() {
    let mut o = signed();
    o.set_header("x-amz-date", "2026-01-15T12:00:00Z");
    expect_code(o.verify(), "IncompleteSignatureException");
}

#[test]
fn date_header_is_accepted_when_there_is_no_x_amz_date() {
    let mut o = unsigned(NOW);
    o.remove_header("x-amz-date");
    o.headers.push(h("Date", "Thu, 15 Jan 2026 12:00:00 GMT"));
    let o = sign_as(o, &["date", "host"], "us-east-1", "kms", NOW);
    assert_eq!(o.verify().unwrap().service, "kms");
}

#[test]
fn signed_header_missing_from_request_is_incomplete() {
    let mut o = signed();
    o.remove_header("x-amz-target");
    expect_code(o.verify(), "IncompleteSignatureException");
}

#[test]
fn required_signed_header_must_be_signed() {
    let o = sign_as(
        unsigned(NOW),
        &["host", "x-amz-date"],
        "us-east-1",
        "secretsmanager",
        NOW,
    );
    let mut cfg = config();
    assert!(o.verify_with(NOW, &cfg).is_ok());
    cfg.required_signed_headers = vec!["x-amz-target".into()];
    let e = expect_code(o.verify_with(NOW, &cfg), "IncompleteSignatureException");
    assert!(e.to_string().contains("x-amz-target"), "{e}");
}

#[test]
fn duplicate_host_header_is_incomplete() {
    let mut o = signed();
    o.headers.push(h("host", "evil.example"));
    expect_code(o.verify(), "IncompleteSignatureException");
}

#[test]
fn scope_date_must_match_request_day() {
    // A correctly signed request whose X-Amz-Date moved to the next day.
    let o = with_auth(signed(), |a| a.replace("/20260115/", "/20260114/"));
    let e = expect_code(o.verify(), "InvalidSignatureException");
    assert_eq!(
        e.to_string(),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20260114' != '20260115', from '20260115T120000Z'."
    );
}

#[test]
fn scope_region_must_be_allowed() {
    let o = sign_as(unsigned(NOW), SIGNED, "eu-west-1", "secretsmanager", NOW);
    let mut cfg = config();
    assert_eq!(o.verify_with(NOW, &cfg).unwrap().region, "eu-west-1");
    cfg.regions = RegionRule::OneOf(vec!["us-east-1".into()]);
    let e = expect_code(o.verify_with(NOW, &cfg), "InvalidSignatureException");
    assert!(matches!(e, SigV4Error::BadScope(_)), "{e:?}");
    assert!(e.to_string().contains("valid region"), "{e}");
}

#[test]
fn scope_service_must_be_allowed() {
    let o = sign_as(unsigned(NOW), SIGNED, "us-east-1", "s3", NOW);
    let e = expect_code(o.verify(), "InvalidSignatureException");
    assert_eq!(
        e.to_string(),
        "Credential should be scoped to correct service: 'secretsmanager' or 'kms'. "
    );
}

#[test]
fn scope_terminator_must_be_aws4_request() {
    let o = with_auth(signed(), |a| a.replace("/aws4_request", "/aws5_request"));
    let e = expect_code(o.verify(), "InvalidSignatureException");
    assert!(matches!(e, SigV4Error::BadScope(_)), "{e:?}");
}

#[test]
fn modified_body_header_query_path_or_method_breaks_the_signature() {
    let base = signed();
    assert!(base.verify().is_ok());

    let mut o = base.clone();
    o.body = br#"{"SecretId":"prod/dc"}"#.to_vec();
    assert_eq!(o.verify(), Err(SigV4Error::SignatureMismatch));

    let mut o = base.clone();
    o.set_header("x-amz-target", "secretsmanager.DeleteSecret");
    assert_eq!(o.verify(), Err(SigV4Error::SignatureMismatch));

    let mut o = base.clone();
    o.query = "a=b".into();
    assert_eq!(o.verify(), Err(SigV4Error::SignatureMismatch));

    let mut o = base.clone();
    o.path = "/x".into();
    assert_eq!(o.verify(), Err(SigV4Error::SignatureMismatch));

    let mut o = base.clone();
    o.method = "PUT".into();
    assert_eq!(o.verify(), Err(SigV4Error::SignatureMismatch));

    let mut o = base.clone();
    o.headers
        .push(h("X-Amz-Target", "secretsmanager.DeleteSecret"));
    assert_eq!(o.verify(), Err(SigV4Error::SignatureMismatch));

    let o = with_auth(base.clone(), |a| {
        let (pre, sig) = a.rsplit_once('=').unwrap();
        let flipped = if sig.starts_with('0') { "1" } else { "0" };
        format!("{pre}={flipped}{}", &sig[1..])
    });
    let e = expect_code(o.verify(), "InvalidSignatureException");
    assert_eq!(e.to_string(), SIGNATURE_MISMATCH_MESSAGE);

    // Unsigned headers are not covered, by design of SigV4.
    let mut o = base;
    o.set_header("user-agent", "something else");
    assert!(o.verify().is_ok());
}

#[test]
fn equivalent_whitespace_and_header_case_still_verify() {
    let mut o = signed();
    o.set_header("content-type", "  application/x-amz-json-1.1 ");
    for (n, _) in &mut o.headers {
        if n == "Host" {
            *n = "HOST".into();
        }
    }
    assert!(o.verify().is_ok());
}

#[test]
fn clock_skew_window_is_fifteen_minutes_either_side() {
    let o = signed();
    let fifteen = Duration::minutes(15);
    let second = Duration::seconds(1);
    assert!(o.verify_with(NOW + fifteen, &config()).is_ok());
    assert!(o.verify_with(NOW - fifteen, &config()).is_ok());

    let e = expect_code(
        o.verify_with(NOW + fifteen + second, &config()),
        "InvalidSignatureException",
    );
    assert_eq!(
        e.to_string(),
        "Signature expired: 20260115T120000Z is now earlier than 20260115T120001Z (20260115T121501Z - 15 min.)"
    );
    let e = expect_code(
        o.verify_with(NOW - fifteen - second, &config()),
        "InvalidSignatureException",
    );
    assert_eq!(
        e.to_string(),
        "Signature not yet current: 20260115T120000Z is still later than 20260115T115959Z (20260115T114459Z + 15 min.)"
    );
}

#[test]
fn skew_check_never_overflows() {
    let o = signed();
    for now in [
        OffsetDateTime::UNIX_EPOCH,
        datetime!(9999-12-31 23:59:59 UTC),
        datetime!(-9999-01-01 0:00 UTC),
    ] {
        assert!(o.verify_with(now, &config()).is_err());
    }
}

#[test]
fn unknown_key_is_unrecognized_client() {
    let o = with_auth(signed(), |a| a.replace("AKIDEXAMPLE", "AKIDUNKNOWN"));
    let e = expect_code(o.verify(), "UnrecognizedClientException");
    assert_eq!(
        e.to_aws_error().message(),
        "The security token included in the request is invalid."
    );
    assert_eq!(e.http_status(), 400);
}

#[test]
fn wrong_secret_is_signature_mismatch() {
    let o = signed();
    let r = verify(&o.req(), NOW, &config(), |_| {
        Some(SecretKeyMaterial::new(b"not the secret".to_vec()))
    });
    assert_eq!(r, Err(SigV4Error::SignatureMismatch));
}

#[test]
fn session_token_is_rejected() {
    let mut o = unsigned(NOW);
    o.headers.push(h("X-Amz-Security-Token", "FQoGZXIvYXdzE"));
    let o = sign_as(
        o,
        &["host", "x-amz-date", "x-amz-security-token"],
        "us-east-1",
        "kms",
        NOW,
    );
    expect_code(o.verify(), "UnrecognizedClientException");
}

#[test]
fn content_sha256_header_is_checked_against_the_body() {
    let good = hex(&Sha256::digest(BODY));
    let mut o = unsigned(NOW);
    o.headers.push(h("X-Amz-Content-Sha256", &good));
    let o = sign_as(
        o,
        &["host", "x-amz-content-sha256", "x-amz-date"],
        "us-east-1",
        "kms",
        NOW,
    );
    assert!(o.verify().is_ok());

    // The client signed a hash that is not the body's.
    let mut bad = unsigned(NOW);
    bad.headers.push(h("X-Amz-Content-Sha256", EMPTY_SHA256));
    let bad = sign_as(
        bad,
        &["host", "x-amz-content-sha256", "x-amz-date"],
        "us-east-1",
        "kms",
        NOW,
    );
    let e = expect_code(bad.verify(), "XAmzContentSHA256Mismatch");
    assert_eq!(e, SigV4Error::ContentSha256Mismatch);

    // Swapping the body under a signed hash header leaves the signature
    // valid (it covers the header, not the body), so the hash check is what
    // catches it.
    let mut swapped = o.clone();
    swapped.body = b"{}".to_vec();
    assert_eq!(swapped.verify(), Err(SigV4Error::ContentSha256Mismatch));
    // Changing the header as well breaks the signature.
    let mut rehashed = swapped.clone();
    rehashed.set_header("x-amz-content-sha256", &hex(&Sha256::digest(b"{}")));
    assert_eq!(rehashed.verify(), Err(SigV4Error::SignatureMismatch));

    let mut malformed = unsigned(NOW);
    malformed
        .headers
        .push(h("X-Amz-Content-Sha256", &good.to_uppercase()));
    let malformed = sign_as(malformed, &["host", "x-amz-date"], "us-east-1", "kms", NOW);
    expect_code(malformed.verify(), "IncompleteSignatureException");
}

#[test]
fn unsigned_payload_only_where_allowed() {
    let mut o = unsigned(NOW);
    o.headers.push(h("X-Amz-Content-Sha256", UNSIGNED_PAYLOAD));
    let o = sign_as(
        o,
        &["host", "x-amz-content-sha256", "x-amz-date"],
        "us-east-1",
        "kms",
        NOW,
    );
    expect_code(o.verify(), "IncompleteSignatureException");

    let mut cfg = config();
    cfg.allow_unsigned_payload = true;
    let v = o.verify_with(NOW, &cfg).unwrap();
    assert!(!v.payload_signed);
    let mut other_body = o.clone();
    other_body.body = b"anything".to_vec();
    assert!(other_body.verify_with(NOW, &cfg).is_ok());
}

fn presigned(at: OffsetDateTime, expires: u32) -> Owned {
    let mut o = unsigned(at);
    o.method = "GET".into();
    o.body.clear();
    o.remove_header("x-amz-date");
    o.query = "Action=List%20Secrets&Path=%2Fprod%2F%2A".into();
    let secret = SecretKeyMaterial::new(SECRET.as_bytes().to_vec());
    o.query = presign_query(
        &o.req(),
        &["host"],
        AKID,
        &secret,
        "us-east-1",
        "secretsmanager",
        at,
        expires,
    )
    .unwrap();
    o
}

fn replace_query(o: &Owned, from: &str, to: &str) -> Owned {
    let mut o = o.clone();
    assert!(o.query.contains(from), "{} lacks {from}", o.query);
    o.query = o.query.replace(from, to);
    o
}

#[test]
fn presigned_request_verifies_within_its_validity() {
    let o = presigned(NOW, 300);
    let v = o.verify().unwrap();
    assert_eq!(v.kind, AuthKind::Presigned { expires_secs: 300 });
    assert_eq!(v.signed_headers, vec!["host"]);
    assert!(o
        .verify_with(NOW + Duration::seconds(300), &config())
        .is_ok());
    assert!(o
        .verify_with(NOW - Duration::minutes(15), &config())
        .is_ok());
}

#[test]
fn presigned_request_expires() {
    let o = presigned(NOW, 300);
    let e = expect_code(
        o.verify_with(NOW + Duration::seconds(301), &config()),
        "InvalidSignatureException",
    );
    assert!(matches!(e, SigV4Error::PresignedExpired(_)), "{e:?}");
    let e = expect_code(
        o.verify_with(
            NOW - Duration::minutes(15) - Duration::seconds(1),
            &config(),
        ),
        "InvalidSignatureException",
    );
    assert!(
        e.to_string().starts_with("Signature not yet current"),
        "{e}"
    );
}

#[test]
fn presigned_expiry_bounds() {
    assert!(presigned(NOW, 1).verify().is_ok());
    let week = presigned(NOW, MAX_PRESIGNED_EXPIRES);
    assert!(week
        .verify_with(
            NOW + Duration::seconds(i64::from(MAX_PRESIGNED_EXPIRES)),
            &config()
        )
        .is_ok());
    for bad in ["0", "604801", "-1", "+5", "abc", ""] {
        let o = replace_query(
            &presigned(NOW, 300),
            "X-Amz-Expires=300",
            &format!("X-Amz-Expires={bad}"),
        );
        expect_code(o.verify(), "IncompleteSignatureException");
    }
}

#[test]
fn presigned_tampering_and_malformation() {
    let o = presigned(NOW, 300);
    assert_eq!(
        replace_query(&o, "List%20Secrets", "Delete%20Secrets").verify(),
        Err(SigV4Error::SignatureMismatch)
    );
    let mut extra = o.clone();
    extra.query.push_str("&Force=true");
    assert_eq!(extra.verify(), Err(SigV4Error::SignatureMismatch));
    let mut host = o.clone();
    host.set_header("host", "other:7878");
    assert_eq!(host.verify(), Err(SigV4Error::SignatureMismatch));

    for (what, from, to) in [
        ("missing expires", "X-Amz-Expires=300&", ""),
        ("wrong algorithm", "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512"),
        (
            "unsigned host",
            "X-Amz-SignedHeaders=host",
            "X-Amz-SignedHeaders=content-type",
        ),
        (
            "bad date",
            "X-Amz-Date=20260115T120000Z",
            "X-Amz-Date=20260115",
        ),
    ] {
        let e = replace_query(&o, from, to).verify();
        assert!(matches!(e, Err(SigV4Error::Incomplete(_))), "{what}: {e:?}");
    }
    let mut dup = o.clone();
    dup.query.push_str("&X-Amz-Signature=00");
    expect_code(dup.verify(), "IncompleteSignatureException");

    let bad_pct = replace_query(&o, "List%20Secrets", "List%2");
    expect_code(bad_pct.verify(), "InvalidQueryParameter");

    let unknown = replace_query(&o, "AKIDEXAMPLE", "AKIDOTHER");
    expect_code(unknown.verify(), "UnrecognizedClientException");
}

#[test]
fn limits_are_enforced_before_parsing() {
    let mut cfg = config();
    cfg.limits.max_body_bytes = BODY.len() - 1;
    let e = expect_code(signed().verify_with(NOW, &cfg), "RequestEntityTooLarge");
    assert_eq!(e.http_status(), 413);

    let mut o = signed();
    o.path = "/".repeat(10_000);
    assert_eq!(o.verify(), Err(SigV4Error::TooLarge("path")));
    let mut o = signed();
    o.query = "a".repeat(20_000);
    assert_eq!(o.verify(), Err(SigV4Error::TooLarge("query string")));
    let mut o = signed();
    o.headers
        .extend((0..200).map(|i| h(&format!("x-{i}"), "v")));
    assert_eq!(o.verify(), Err(SigV4Error::TooLarge("header count")));
    let mut o = signed();
    o.headers.push(h("x-big", &"v".repeat(70_000)));
    assert_eq!(o.verify(), Err(SigV4Error::TooLarge("headers")));
    let mut o = signed();
    o.method = "M".repeat(17);
    assert_eq!(o.verify(), Err(SigV4Error::TooLarge("method")));
}

#[test]
fn error_mapping_to_aws_codes_and_statuses() {
    let cases = [
        (
            SigV4Error::MissingAuthentication,
            "MissingAuthenticationTokenException",
            400,
        ),
        (
            SigV4Error::AmbiguousAuthentication,
            "IncompleteSignatureException",
            400,
        ),
        (
            SigV4Error::Incomplete("x".into()),
            "IncompleteSignatureException",
            400,
        ),
        (
            SigV4Error::BadScope("x".into()),
            "InvalidSignatureException",
            400,
        ),
        (
            SigV4Error::SignatureExpired("x".into()),
            "InvalidSignatureException",
            400,
        ),
        (
            SigV4Error::PresignedExpired("x".into()),
            "InvalidSignatureException",
            400,
        ),
        (
            SigV4Error::UnrecognizedClient,
            "UnrecognizedClientException",
            400,
        ),
        (
            SigV4Error::SignatureMismatch,
            "InvalidSignatureException",
            400,
        ),
        (
            SigV4Error::ContentSha256Mismatch,
            "XAmzContentSHA256Mismatch",
            400,
        ),
        (
            SigV4Error::MalformedQuery("x".into()),
            "InvalidQueryParameter",
            400,
        ),
        (SigV4Error::TooLarge("body"), "RequestEntityTooLarge", 413),
    ];
    for (e, code, status) in cases {
        let a = e.to_aws_error();
        assert_eq!((a.code(), a.status()), (code, status), "{e:?}");
        assert_eq!(a.message(), e.to_string());
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Arbitrary input never panics and never verifies.
        #[test]
        fn arbitrary_requests_never_panic(
            method in ".{0,20}",
            path in ".{0,64}",
            query in "[A-Za-z0-9%=&+-]{0,64}",
            auth in ".{0,200}",
            date in ".{0,20}",
            body in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let headers = vec![
                h("host", "localhost"),
                h("x-amz-date", &date),
                h("authorization", &auth),
            ];
            let req = Request { method: &method, path: &path, query: &query, headers: &headers, body: &body };
            prop_assert!(verify(&req, NOW, &config(), lookup).is_err());
        }

        /// Mutating any single byte of a presigned query either leaves the
        /// decoded parameters unchanged (e.g. `%2F` to `%2f`) or is rejected.
        #[test]
        fn mutated_presigned_query_is_rejected(pos in 0usize..400, byte in any::<u8>()) {
            let o = presigned(NOW, 300);
            let mut bytes = o.query.clone().into_bytes();
            let pos = pos % bytes.len();
            prop_assume!(bytes[pos] != byte);
            bytes[pos] = byte;
            if let Ok(mutated) = String::from_utf8(bytes) {
                let mut m = o.clone();
                m.query = mutated.clone();
                let same = canonical::parse_query(&mutated, 1000).ok()
                    == canonical::parse_query(&o.query, 1000).ok();
                prop_assert!(m.verify().is_err() || same, "{mutated}");
            }
        }

        /// Mutating any single byte of a valid Authorization header either
        /// still yields an equivalent header or is rejected.
        #[test]
        fn mutated_authorization_is_rejected(pos in 0usize..200, byte in any::<u8>()) {
            let o = signed();
            let auth = o.authorization();
            let mut bytes = auth.clone().into_bytes();
            let pos = pos % bytes.len();
            prop_assume!(bytes[pos] != byte);
            bytes[pos] = byte;
            if let Ok(mutated) = String::from_utf8(bytes) {
                let o = with_auth(o, |_| mutated.clone());
                // Whitespace around separators is insignificant.
                let same = mutated.split_whitespace().collect::<String>() == auth.split_whitespace().collect::<String>();
                prop_assert!(o.verify().is_err() || same, "{mutated}");
            }
        }
    }
}
