//! Requests signed by the `aws-sigv4` crate (the signer inside the AWS SDK
//! for Rust) must verify, and must stop verifying when tampered with. This
//! is a second, independent client implementation next to botocore.

use std::time::{Duration as StdDuration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use coffer_aws::sigv4::{verify, AuthKind, Request, SecretKeyMaterial, SigV4Error, VerifyConfig};
use time::macros::datetime;
use time::OffsetDateTime;

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const NOW: OffsetDateTime = datetime!(2026-01-15 12:00:00 UTC);

/// A request as it would arrive at Coffer after the Rust SDK signed it.
struct Wire {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Wire {
    fn verify(&self) -> Result<coffer_aws::sigv4::Verified, SigV4Error> {
        let req = Request {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        };
        verify(
            &req,
            NOW,
            &VerifyConfig::new(["secretsmanager", "kms"]),
            |id| (id == AKID).then(|| SecretKeyMaterial::new(SECRET.as_bytes().to_vec())),
        )
    }
}

struct Spec<'a> {
    method: &'a str,
    uri: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: &'a [u8],
    region: &'a str,
    service: &'a str,
    presign: Option<u64>,
    checksum_header: bool,
}

fn signed(spec: &Spec<'_>) -> Wire {
    let identity: Identity = Credentials::new(AKID, SECRET, None, None, "test").into();
    let mut settings = SigningSettings::default();
    if let Some(secs) = spec.presign {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(StdDuration::from_secs(secs));
    }
    if spec.checksum_header {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let at = SystemTime::UNIX_EPOCH + StdDuration::from_secs(NOW.unix_timestamp() as u64);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(spec.region)
        .name(spec.service)
        .time(at)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        spec.method,
        spec.uri,
        spec.headers.iter().copied(),
        SignableBody::Bytes(spec.body),
    )
    .unwrap();
    let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();

    let mut builder = http::Request::builder().method(spec.method).uri(spec.uri);
    for (n, v) in spec.headers {
        builder = builder.header(*n, *v);
    }
    let mut request = builder.body(spec.body.to_vec()).unwrap();
    instructions.apply_to_request_http1x(&mut request);

    let uri = request.uri().clone();
    let mut headers: Vec<(String, String)> =
        vec![("host".to_string(), uri.authority().unwrap().to_string())];
    headers.extend(
        request
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string())),
    );
    Wire {
        method: spec.method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or_default().to_string(),
        headers,
        body: spec.body.to_vec(),
    }
}

const JSON_HEADERS: &[(&str, &str)] = &[
    ("content-type", "application/x-amz-json-1.1"),
    ("x-amz-target", "secretsmanager.GetSecretValue"),
];

fn specs() -> Vec<Spec<'static>> {
    vec![
        Spec {
            method: "POST",
            uri: "https://localhost:7878/",
            headers: JSON_HEADERS,
            body: br#"{"SecretId":"prod/db"}"#,
            region: "us-east-1",
            service: "secretsmanager",
            presign: None,
            checksum_header: false,
        },
        Spec {
            method: "POST",
            uri: "https://localhost:7878/",
            headers: &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "TrentService.Encrypt"),
            ],
            body: br#"{"KeyId":"alias/coffer","Plaintext":"aGVsbG8="}"#,
            region: "eu-central-1",
            service: "kms",
            presign: None,
            checksum_header: true,
        },
        Spec {
            method: "GET",
            uri: "https://localhost:7878/a/./b/../c%20d/?b=2&a=1&z=%2Fx%20y&a=0&e=",
            headers: &[("x-custom", "  spaced   out  ")],
            body: b"",
            region: "us-east-1",
            service: "secretsmanager",
            presign: None,
            checksum_header: false,
        },
        Spec {
            method: "GET",
            uri: "https://localhost:7878/?Action=ListSecrets&Filter=prod%2F%2A",
            headers: &[],
            body: b"",
            region: "us-west-2",
            service: "secretsmanager",
            presign: Some(300),
            checksum_header: false,
        },
    ]
}

#[test]
fn rust_sdk_signatures_verify() {
    for spec in specs() {
        let wire = signed(&spec);
        let v = wire
            .verify()
            .unwrap_or_else(|e| panic!("{} {}: {e:?}", spec.method, spec.uri));
        assert_eq!(v.access_key_id, AKID);
        assert_eq!(v.region, spec.region);
        assert_eq!(v.service, spec.service);
        match spec.presign {
            Some(s) => assert_eq!(
                v.kind,
                AuthKind::Presigned {
                    expires_secs: s as u32
                }
            ),
            None => assert_eq!(v.kind, AuthKind::Header),
        }
    }
}

#[test]
fn rust_sdk_signatures_break_when_tampered() {
    for spec in specs() {
        let what = format!("{} {}", spec.method, spec.uri);
        let mut w = signed(&spec);
        w.body.push(b' ');
        let e = w.verify().unwrap_err();
        let expected = if spec.checksum_header {
            SigV4Error::ContentSha256Mismatch
        } else {
            SigV4Error::SignatureMismatch
        };
        assert_eq!(e, expected, "{what}: body");

        let mut w = signed(&spec);
        w.query = if w.query.is_empty() {
            "x=1".into()
        } else {
            format!("{}&x=1", w.query)
        };
        assert_eq!(
            w.verify().unwrap_err(),
            SigV4Error::SignatureMismatch,
            "{what}: query"
        );

        let mut w = signed(&spec);
        w.headers[0].1 = "localhost:7879".into();
        assert_eq!(
            w.verify().unwrap_err(),
            SigV4Error::SignatureMismatch,
            "{what}: host"
        );
    }
}
