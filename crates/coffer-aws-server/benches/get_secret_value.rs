//! GetSecretValue through the AWS-compatible API on loopback, on a real swtpm and a real
//! vault file: one keep-alive client (latency percentiles), then 8 concurrent keep-alive
//! clients (throughput). Every request is SigV4-signed by the client as an SDK would,
//! fully verified by the server, authorized by the key's policy and its read committed
//! to the audit log before its value is returned: once with `audit.reads durable` (an
//! fsync per read), then with the default `batched` (fsynced within 100 ms).
//!
//! `cargo bench -p coffer-aws-server --bench get_secret_value` (COFFER_BENCH_REQUESTS
//! changes the number of requests per measurement; default 2000). Prints a Markdown table
//! for docs/benchmarks.md.
//!
//! With `COFFER_BENCH_ENDPOINT=HOST:PORT` the same client and workload run against
//! another Secrets Manager endpoint instead (`tests/aws/bench-moto.sh` starts
//! `moto_server` for it): the 100 secrets are made there with CreateSecret first.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coffer_aws::sigv4::{sign_authorization_header, Request, SecretKeyMaterial};
use coffer_aws_server::AwsListener;
use coffer_core::tpm::PcrBinding;
use coffer_core::vault::CreateSecret;
use coffer_core::{SecretValue, Vault};

const PIN: &str = "bench-pin-1234";
const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;

/// One keep-alive HTTP/1.1 connection that signs each request afresh.
struct Client {
    stream: BufReader<TcpStream>,
    addr: SocketAddr,
    id: String,
    secret: SecretKeyMaterial,
}

impl Client {
    fn connect(addr: SocketAddr, id: &str, secret: &str) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream: BufReader::new(stream),
            addr,
            id: id.to_owned(),
            secret: SecretKeyMaterial::new(secret.as_bytes().to_vec()),
        }
    }

    fn get(&mut self, name: &str) -> Vec<u8> {
        self.call(
            "secretsmanager.GetSecretValue",
            &format!(r#"{{"SecretId":"{name}"}}"#),
        )
    }

    fn call(&mut self, target: &str, body: &str) -> Vec<u8> {
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
            ("host".to_owned(), self.addr.to_string()),
            ("x-amz-date".to_owned(), amz_date),
            ("x-amz-target".to_owned(), target.to_owned()),
            (
                "content-type".to_owned(),
                "application/x-amz-json-1.1".to_owned(),
            ),
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
            &["content-type", "host", "x-amz-date", "x-amz-target"],
            &self.id,
            &self.secret,
            "us-east-1",
            "secretsmanager",
            now,
        )
        .unwrap();
        headers.push(("authorization".to_owned(), auth));
        let mut raw = String::from("POST / HTTP/1.1\r\n");
        for (name, value) in &headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        raw.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
        self.stream.get_mut().write_all(raw.as_bytes()).unwrap();
        // Status line and headers, then exactly Content-Length bytes.
        let mut length = 0usize;
        let mut close = false;
        let mut status = String::new();
        self.stream.read_line(&mut status).unwrap();
        assert!(status.contains(" 200 "), "{status}");
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if lower.starts_with("connection:") && lower.contains("close") {
                close = true;
            }
        }
        let mut out = vec![0u8; length];
        self.stream.read_exact(&mut out).unwrap();
        // A server without keep-alive (moto's Werkzeug) closes after each response.
        if close {
            let stream = TcpStream::connect(self.addr).unwrap();
            stream.set_nodelay(true).unwrap();
            self.stream = BufReader::new(stream);
        }
        out
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let requests: usize = std::env::var("COFFER_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let (addr, id, secret, keep) = match std::env::var("COFFER_BENCH_ENDPOINT") {
        Ok(endpoint) => {
            let addr: SocketAddr = endpoint.parse().expect("COFFER_BENCH_ENDPOINT=HOST:PORT");
            let (id, secret) = (
                "AKIAIOSFODNN7EXAMPLE",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            );
            let mut client = Client::connect(addr, id, secret);
            for i in 0..100 {
                client.call(
                    "secretsmanager.CreateSecret",
                    &format!(
                        r#"{{"Name":"bench/secret-{i:03}","SecretString":"value-{i:03}-0123456789abcdef"}}"#
                    ),
                );
            }
            (addr, id.to_owned(), secret.to_owned(), None)
        }
        Err(_) => {
            let (addr, id, secret, keep) = coffer_server();
            (addr, id, secret, Some(keep))
        }
    };
    let mut rows = Vec::new();
    // Coffer is measured with each way of auditing reads (`audit.reads`), default last.
    let modes: &[Option<&str>] = match keep {
        Some(_) => &[Some("durable"), Some("batched")],
        None => &[None],
    };
    for mode in modes {
        if let (Some(mode), Some((_, _, _, vault))) = (mode, &keep) {
            vault
                .lock()
                .unwrap()
                .set_setting("audit.reads", mode)
                .unwrap();
        }
        let label = mode
            .map(|m| format!(", audit.reads {m}"))
            .unwrap_or_default();
        measure(addr, &id, &secret, requests, &label, &mut rows);
    }
    println!("| measurement | figure |\n|---|---|");
    for (what, figure) in rows {
        println!("| {what} | {figure} |");
    }
}

fn measure(
    addr: SocketAddr,
    id: &str,
    secret: &str,
    requests: usize,
    label: &str,
    rows: &mut Vec<(String, String)>,
) {
    let mut client = Client::connect(addr, id, secret);
    for i in 0..100 {
        client.get(&format!("bench/secret-{:03}", i % 100));
    }
    let mut samples = Vec::with_capacity(requests);
    for i in 0..requests {
        let start = Instant::now();
        let body = client.get(&format!("bench/secret-{:03}", i % 100));
        samples.push(start.elapsed());
        assert!(body.windows(6).any(|w| w == b"value-"));
    }
    let p50 = percentile(&mut samples, 0.5);
    let p99 = percentile(&mut samples, 0.99);
    rows.push((
        format!(
            "GetSecretValue, one keep-alive client, round trip (p50 / p99 of {requests}){label}"
        ),
        format!("{} / {}", us(p50), us(p99)),
    ));

    let clients = 8;
    let per_client = requests / clients;
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (id, secret) = (id.to_owned(), secret.to_owned());
            std::thread::spawn(move || {
                let mut client = Client::connect(addr, &id, &secret);
                for i in 0..per_client {
                    client.get(&format!("bench/secret-{:03}", (i + c * 7) % 100));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let elapsed = start.elapsed();
    rows.push((
        format!(
            "GetSecretValue, {clients} concurrent keep-alive clients ({} requests){label}",
            per_client * clients
        ),
        format!(
            "{:.0} requests/s",
            (per_client * clients) as f64 / elapsed.as_secs_f64()
        ),
    ));
}

/// What keeps the in-process server alive: the swtpm, the vault's directory, the listener.
type Running = (
    coffer_testkit::Swtpm,
    tempfile::TempDir,
    AwsListener,
    Arc<Mutex<Vault>>,
);

/// A vault on swtpm with 100 secrets and an access key, served on loopback.
fn coffer_server() -> (SocketAddr, String, String, Running) {
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
    for i in 0..100 {
        vault
            .create_secret(CreateSecret {
                name: format!("bench/secret-{i:03}"),
                value: Some(SecretValue::text(format!("value-{i:03}-0123456789abcdef"))),
                ..Default::default()
            })
            .unwrap();
    }
    let (key, secret) = vault.create_access_key("bench", Some(POLICY)).unwrap();
    let vault = Arc::new(Mutex::new(vault));
    let listener = AwsListener::start("127.0.0.1:0", Arc::clone(&vault), Arc::new(|_| {})).unwrap();
    let addr = listener.local_addr();
    (
        addr,
        key.id,
        secret.to_string(),
        (swtpm, dir, listener, vault),
    )
}
