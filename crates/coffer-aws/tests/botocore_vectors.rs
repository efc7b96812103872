//! Requests signed by botocore (the AWS SDK for Python) must verify, and must
//! stop verifying once any signed byte changes.
//!
//! The fixture `vectors/botocore.json` is produced by `vectors/generate.py`
//! (see its header for how to regenerate) and committed, so this test needs
//! no Python.

use base64::Engine as _;
use coffer_aws::sigv4::{
    verify, AuthKind, Request, SecretKeyMaterial, SigV4Error, Verified, VerifyConfig,
};
use serde::Deserialize;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

#[derive(Deserialize)]
struct Fixture {
    botocore_version: String,
    access_key_id: String,
    secret_access_key: String,
    signed_at: String,
    vectors: Vec<Vector>,
}

#[derive(Deserialize, Clone)]
struct Vector {
    name: String,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body_base64: String,
    service: String,
    region: String,
    kind: String,
    expires: Option<u32>,
}

struct Case {
    v: Vector,
    body: Vec<u8>,
}

impl Case {
    fn verify(&self, fx: &Fixture, now: OffsetDateTime) -> Result<Verified, SigV4Error> {
        let req = Request {
            method: &self.v.method,
            path: &self.v.path,
            query: &self.v.query,
            headers: &self.v.headers,
            body: &self.body,
        };
        let config = VerifyConfig::new(["secretsmanager", "kms"]);
        verify(&req, now, &config, |id| {
            (id == fx.access_key_id)
                .then(|| SecretKeyMaterial::new(fx.secret_access_key.as_bytes().to_vec()))
        })
    }

    fn signed_header_names(&self) -> Vec<String> {
        if let Some((_, auth)) = self
            .v
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        {
            let list = auth.split("SignedHeaders=").nth(1).unwrap();
            let list = list.split(',').next().unwrap();
            list.split(';').map(str::to_string).collect()
        } else {
            let list = self.v.query.split("X-Amz-SignedHeaders=").nth(1).unwrap();
            let list = list.split('&').next().unwrap();
            list.split("%3B").map(str::to_string).collect()
        }
    }
}

fn load() -> (Fixture, Vec<Case>) {
    let fx: Fixture = serde_json::from_str(include_str!("vectors/botocore.json")).unwrap();
    let cases = fx
        .vectors
        .iter()
        .map(|v| Case {
            v: v.clone(),
            body: base64::engine::general_purpose::STANDARD
                .decode(&v.body_base64)
                .unwrap(),
        })
        .collect();
    (fx, cases)
}

fn signed_at(fx: &Fixture) -> OffsetDateTime {
    PrimitiveDateTime::parse(
        &fx.signed_at,
        format_description!("[year][month][day]T[hour][minute][second]Z"),
    )
    .unwrap()
    .assume_utc()
}

/// Changes the last ASCII letter or digit of `s` to another of its class.
fn bump_last_alnum(s: &str) -> String {
    let mut b = s.as_bytes().to_vec();
    let i = b
        .iter()
        .rposition(u8::is_ascii_alphanumeric)
        .expect("value has an alphanumeric character");
    b[i] = match b[i] {
        b'9' => b'0',
        b'z' => b'a',
        b'Z' => b'A',
        c => c + 1,
    };
    String::from_utf8(b).unwrap()
}

#[test]
fn fixture_records_its_generator() {
    let (fx, cases) = load();
    assert!(!fx.botocore_version.is_empty());
    assert!(cases.len() >= 10, "expected a full set of vectors");
    for kind in ["header", "presigned"] {
        assert!(cases.iter().any(|c| c.v.kind == kind), "no {kind} vector");
    }
}

#[test]
fn every_botocore_vector_verifies() {
    let (fx, cases) = load();
    let at = signed_at(&fx);
    for c in &cases {
        for now in [at, at + Duration::minutes(14), at - Duration::minutes(14)] {
            let v = c
                .verify(&fx, now)
                .unwrap_or_else(|e| panic!("{}: {e:?}", c.v.name));
            assert_eq!(v.access_key_id, fx.access_key_id, "{}", c.v.name);
            assert_eq!(v.region, c.v.region, "{}", c.v.name);
            assert_eq!(v.service, c.v.service, "{}", c.v.name);
            assert_eq!(v.signed_at, at, "{}", c.v.name);
            assert_eq!(v.signed_headers, c.signed_header_names(), "{}", c.v.name);
            let expected_kind = match (c.v.kind.as_str(), c.v.expires) {
                ("header", None) => AuthKind::Header,
                ("presigned", Some(e)) => AuthKind::Presigned { expires_secs: e },
                other => panic!("{}: bad kind {other:?}", c.v.name),
            };
            assert_eq!(v.kind, expected_kind, "{}", c.v.name);
        }
    }
}

#[test]
fn flipped_signature_is_invalid_signature() {
    let (fx, cases) = load();
    let at = signed_at(&fx);
    for c in &cases {
        let mut t = Case {
            v: c.v.clone(),
            body: c.body.clone(),
        };
        if let Some((_, auth)) =
            t.v.headers
                .iter_mut()
                .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        {
            *auth = bump_last_alnum(auth);
        } else {
            t.v.query = bump_last_alnum(&t.v.query);
            assert!(t.v.query.contains("X-Amz-Signature="), "{}", c.v.name);
        }
        let e = t.verify(&fx, at).unwrap_err();
        assert_eq!(e, SigV4Error::SignatureMismatch, "{}", c.v.name);
        assert_eq!(e.aws_code(), "InvalidSignatureException");
    }
}

#[test]
fn changed_body_is_rejected() {
    let (fx, cases) = load();
    let at = signed_at(&fx);
    for c in &cases {
        let mut body = c.body.clone();
        match body.first_mut() {
            Some(b) => *b ^= 0x01,
            None => body.push(b'x'),
        }
        let t = Case {
            v: c.v.clone(),
            body,
        };
        let e = t.verify(&fx, at).unwrap_err();
        // With a signed x-amz-content-sha256 the signature still holds and
        // the hash check catches the swap.
        let has_hash_header =
            c.v.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("x-amz-content-sha256"));
        let expected = if has_hash_header {
            SigV4Error::ContentSha256Mismatch
        } else {
            SigV4Error::SignatureMismatch
        };
        assert_eq!(e, expected, "{}", c.v.name);
    }
}

#[test]
fn changed_signed_header_is_rejected() {
    let (fx, cases) = load();
    let at = signed_at(&fx);
    let mut checked = 0;
    for c in &cases {
        for name in c.signed_header_names() {
            let mut t = Case {
                v: c.v.clone(),
                body: c.body.clone(),
            };
            let (_, value) =
                t.v.headers
                    .iter_mut()
                    .find(|(n, _)| n.eq_ignore_ascii_case(&name))
                    .unwrap();
            *value = match name.as_str() {
                // Move the timestamp by one second, keeping it well-formed.
                "x-amz-date" => value.replacen("00Z", "01Z", 1),
                "date" => value.replacen(":00 ", ":01 ", 1),
                _ => bump_last_alnum(value),
            };
            let e = t.verify(&fx, at).unwrap_err();
            assert_eq!(e, SigV4Error::SignatureMismatch, "{} / {name}", c.v.name);
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} signed headers exercised");
}

#[test]
fn changed_query_or_path_is_rejected() {
    let (fx, cases) = load();
    let at = signed_at(&fx);
    for c in &cases {
        let mut t = Case {
            v: c.v.clone(),
            body: c.body.clone(),
        };
        t.v.query = if t.v.query.is_empty() {
            "x=1".to_string()
        } else {
            format!("a=1&{}", t.v.query)
        };
        assert_eq!(
            t.verify(&fx, at).unwrap_err(),
            SigV4Error::SignatureMismatch,
            "{}",
            c.v.name
        );
        let mut t = Case {
            v: c.v.clone(),
            body: c.body.clone(),
        };
        t.v.path = format!("{}x", t.v.path);
        assert_eq!(
            t.verify(&fx, at).unwrap_err(),
            SigV4Error::SignatureMismatch,
            "{}",
            c.v.name
        );
    }
}

#[test]
fn encoded_query_parameter_change_is_rejected() {
    let (fx, cases) = load();
    let at = signed_at(&fx);
    let c = cases
        .iter()
        .find(|c| c.v.name == "query-needs-encoding")
        .unwrap();
    // '+' and '%20' are both a space, so this is the same request...
    let mut same = Case {
        v: c.v.clone(),
        body: c.body.clone(),
    };
    same.v.query = same.v.query.replacen("Name=a+b", "Name=a%20b", 1);
    assert_ne!(same.v.query, c.v.query);
    assert!(same.verify(&fx, at).is_ok());
    // ...but an encoded plus is a different value.
    let mut other = Case {
        v: c.v.clone(),
        body: c.body.clone(),
    };
    other.v.query = other.v.query.replacen("Name=a+b", "Name=a%2Bb", 1);
    assert_eq!(
        other.verify(&fx, at).unwrap_err(),
        SigV4Error::SignatureMismatch
    );
}

#[test]
fn vectors_expire_as_aws_says() {
    let (fx, cases) = load();
    let at = signed_at(&fx);
    for c in &cases {
        let late = match c.v.expires {
            None => at + Duration::minutes(15) + Duration::seconds(1),
            Some(e) => at + Duration::seconds(i64::from(e) + 1),
        };
        let e = c.verify(&fx, late).unwrap_err();
        assert_eq!(e.aws_code(), "InvalidSignatureException", "{}", c.v.name);
        assert!(
            e.to_string()
                .starts_with("Signature expired: 20260115T120000Z is now earlier than"),
            "{}: {e}",
            c.v.name
        );
        let early = at - Duration::minutes(15) - Duration::seconds(1);
        let e = c.verify(&fx, early).unwrap_err();
        assert!(
            e.to_string().starts_with("Signature not yet current"),
            "{}: {e}",
            c.v.name
        );
    }
}

#[test]
fn unsigned_header_changes_do_not_matter() {
    let (fx, cases) = load();
    let at = signed_at(&fx);
    let c = cases
        .iter()
        .find(|c| c.v.name == "sm-get-secret-value")
        .unwrap();
    let mut t = Case {
        v: c.v.clone(),
        body: c.body.clone(),
    };
    for (n, v) in &mut t.v.headers {
        if n.eq_ignore_ascii_case("user-agent") || n.eq_ignore_ascii_case("amz-sdk-request") {
            *v = "changed".to_string();
        }
    }
    assert!(t.verify(&fx, at).is_ok());
}

#[test]
fn wrong_key_is_rejected() {
    let (fx, cases) = load();
    let at = signed_at(&fx);
    for c in &cases {
        let req = Request {
            method: &c.v.method,
            path: &c.v.path,
            query: &c.v.query,
            headers: &c.v.headers,
            body: &c.body,
        };
        let config = VerifyConfig::new(["secretsmanager", "kms"]);
        let mut secret = fx.secret_access_key.clone().into_bytes();
        secret[0] ^= 1;
        let r = verify(&req, at, &config, |_| {
            Some(SecretKeyMaterial::new(secret.clone()))
        });
        assert_eq!(
            r.unwrap_err(),
            SigV4Error::SignatureMismatch,
            "{}",
            c.v.name
        );
        let r = verify(&req, at, &config, |_| None);
        assert_eq!(
            r.unwrap_err(),
            SigV4Error::UnrecognizedClient,
            "{}",
            c.v.name
        );
    }
}
