//! The server's own answers, with requests signed by `coffer-aws`'s signer over a real
//! loopback connection to a vault on swtpm: a locked vault, unknown operations, a scope
//! for the wrong service, a key without a policy.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coffer_aws::sigv4::{sign_authorization_header, Request, SecretKeyMaterial};
use coffer_aws_server::AwsListener;
use coffer_core::tpm::PcrBinding;
use coffer_core::Vault;

const PIN: &str = "server-test-pin-1";

/// Sends one signed request and returns (status, error type header, JSON body).
fn call(
    addr: SocketAddr,
    id: &str,
    secret: &str,
    service: &str,
    target: &str,
    body: &str,
) -> (u16, Option<String>, serde_json::Value) {
    let now = time::OffsetDateTime::now_utc();
    let amz_date = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let mut headers = vec![
        ("host".to_owned(), addr.to_string()),
        ("x-amz-date".to_owned(), amz_date),
        ("x-amz-target".to_owned(), target.to_owned()),
    ];
    let request = Request {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: body.as_bytes(),
    };
    let auth = sign_authorization_header(
        &request,
        &["host", "x-amz-date", "x-amz-target"],
        id,
        &SecretKeyMaterial::new(secret.as_bytes().to_vec()),
        "us-east-1",
        service,
        now,
    )
    .unwrap();
    headers.push(("authorization".to_owned(), auth));
    let mut raw = String::from("POST / HTTP/1.1\r\nconnection: close\r\n");
    for (name, value) in &headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut reader = BufReader::new(stream);
    reader.get_mut().write_all(raw.as_bytes()).unwrap();
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let code: u16 = status.split(' ').nth(1).unwrap().parse().unwrap();
    let mut error_type = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("x-amzn-errortype") {
                error_type = Some(value.trim().to_owned());
            }
        }
    }
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    (code, error_type, serde_json::from_slice(&rest).unwrap())
}

#[test]
fn the_server_answers_in_aws_terms_and_a_locked_vault_at_once() {
    let swtpm = coffer_testkit::Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let mut vault = Vault::init(
        &dir.path().join("v/vault.db"),
        &swtpm.tcti(),
        PIN,
        PcrBinding::default(),
    )
    .unwrap()
    .vault;
    let all =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    let (key, secret) = vault.create_access_key("all", Some(all)).unwrap();
    let (bare, bare_secret) = vault.create_access_key("bare", None).unwrap();
    let shared = Arc::new(Mutex::new(vault));
    let listener =
        AwsListener::start("127.0.0.1:0", Arc::clone(&shared), Arc::new(|_| {})).unwrap();
    let addr = listener.local_addr();

    let (status, code, _) = call(
        addr,
        &key.id,
        &secret,
        "secretsmanager",
        "secretsmanager.ListSecrets",
        "{}",
    );
    assert_eq!((status, code), (200, None));
    // A key without a policy may do nothing.
    let (status, code, body) = call(
        addr,
        &bare.id,
        &bare_secret,
        "secretsmanager",
        "secretsmanager.ListSecrets",
        "{}",
    );
    assert_eq!(
        (status, code.as_deref()),
        (400, Some("AccessDeniedException")),
        "{body}"
    );
    // Unknown operation, unknown service, scope signed for the other service.
    let (_, code, _) = call(
        addr,
        &key.id,
        &secret,
        "secretsmanager",
        "secretsmanager.NoSuchThing",
        "{}",
    );
    assert_eq!(code.as_deref(), Some("UnknownOperationException"));
    let (_, code, _) = call(
        addr,
        &key.id,
        &secret,
        "secretsmanager",
        "Nope.ListSecrets",
        "{}",
    );
    assert_eq!(code.as_deref(), Some("UnknownOperationException"));
    let (_, code, body) = call(
        addr,
        &key.id,
        &secret,
        "kms",
        "secretsmanager.ListSecrets",
        "{}",
    );
    assert_eq!(code.as_deref(), Some("InvalidSignatureException"), "{body}");
    // Not JSON, and a member of the wrong type.
    let (_, code, _) = call(
        addr,
        &key.id,
        &secret,
        "secretsmanager",
        "secretsmanager.ListSecrets",
        "[1]",
    );
    assert_eq!(code.as_deref(), Some("SerializationException"));
    let (_, code, _) = call(
        addr,
        &key.id,
        &secret,
        "secretsmanager",
        "secretsmanager.ListSecrets",
        r#"{"MaxResults":"ten"}"#,
    );
    assert_eq!(code.as_deref(), Some("SerializationException"));
    let (_, code, _) = call(
        addr,
        &key.id,
        &secret,
        "secretsmanager",
        "secretsmanager.ListSecrets",
        r#"{"MaxResults":101}"#,
    );
    assert_eq!(code.as_deref(), Some("InvalidParameterException"));
    let (_, code, _) = call(
        addr,
        &key.id,
        &secret,
        "kms",
        "TrentService.GenerateRandom",
        r#"{"NumberOfBytes":0}"#,
    );
    assert_eq!(code.as_deref(), Some("ValidationException"));

    // Locked: every call answers at once, in each service's terms.
    shared.lock().unwrap().lock().unwrap();
    let start = Instant::now();
    let (status, code, body) = call(
        addr,
        &key.id,
        &secret,
        "secretsmanager",
        "secretsmanager.GetSecretValue",
        r#"{"SecretId":"x"}"#,
    );
    assert_eq!(
        (status, code.as_deref()),
        (400, Some("InvalidRequestException"))
    );
    assert!(
        body["message"].as_str().unwrap().contains("locked"),
        "{body}"
    );
    let (_, code, _) = call(addr, &key.id, &secret, "kms", "TrentService.ListKeys", "{}");
    assert_eq!(code.as_deref(), Some("KMSInvalidStateException"));
    assert!(start.elapsed() < Duration::from_secs(5));

    // Unlocked again, it serves again.
    shared.lock().unwrap().unlock(&swtpm.tcti(), PIN).unwrap();
    let (status, _, _) = call(addr, &key.id, &secret, "kms", "TrentService.ListKeys", "{}");
    assert_eq!(status, 200);
    drop(listener);
}
