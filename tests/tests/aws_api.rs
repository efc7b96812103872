//! The AWS-compatible API with real clients: boto3, botocore's signer and the AWS CLI
//! (from PyPI, in a venv `tests/aws/make-venv.sh` makes) against `coffer daemon
//! --aws-listen` on loopback, on a vault with its own swtpm. The Python side
//! (`tests/aws/clients.py`) drives the API; this side makes the access keys, checks
//! that refusals changed nothing and were audited, and that KMS blobs cross between the
//! API and `coffer kms`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use coffer_system_tests::{Env, Spawned};

/// A `coffer daemon --aws-listen 127.0.0.1:0`, killed when dropped.
struct Daemon(Spawned);

impl Daemon {
    fn start(env: &Env) -> (Daemon, u16) {
        Daemon::start_with(env, &[])
    }

    /// A daemon serving the API, with more options.
    fn start_with(env: &Env, extra: &[&str]) -> (Daemon, u16) {
        let mut args = vec!["daemon", "--aws-listen", "127.0.0.1:0", "--max-sleep", "1h"];
        args.extend_from_slice(extra);
        let daemon = Daemon(env.cmd(args).spawn());
        let port = daemon.port("listening on http://127.0.0.1:");
        (daemon, port)
    }

    /// The port printed after `marker` on the daemon's stderr (waits for it).
    fn port(&self, marker: &str) -> u16 {
        let start = Instant::now();
        loop {
            let stderr = self.0.stderr();
            if let Some(rest) = stderr.split(marker).nth(1) {
                let port = rest
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                return port;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the daemon did not start listening: {stderr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.0.sigkill();
        self.0.wait();
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The venv's python (made on first use).
fn python() -> String {
    let out = Command::new(repo().join("tests/aws/make-venv.sh"))
        .output()
        .expect("run tests/aws/make-venv.sh");
    assert!(
        out.status.success(),
        "tests/aws/make-venv.sh failed (it needs python3-venv and access to PyPI): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn create_key(env: &Env, name: &str, policy: Option<&str>) -> (String, String) {
    let mut args = vec!["access-key", "create", "--name", name, "-o", "json"];
    let file;
    if let Some(policy) = policy {
        file = env.file(&format!("{name}.json"), policy.as_bytes());
        args.extend(["--policy-file", file.to_str().unwrap()]);
    }
    let json = env.coffer(&args).ok().json();
    let secret = json["secret_access_key"].as_str().unwrap().to_owned();
    env.sensitive(&secret);
    (json["access_key_id"].as_str().unwrap().to_owned(), secret)
}

const ADMIN: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:*","kms:*"],"Resource":"*"}]}"#;
const READER: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:*:*:secret:app/*"},
  {"Effect":"Deny","Action":"kms:*","Resource":"*"}]}"#;

#[test]
fn real_aws_clients_work_unchanged_and_every_refusal_changes_nothing() {
    let python = python();
    let env = Env::new();
    env.init();
    let (admin_id, admin_secret) = create_key(&env, "admin", Some(ADMIN));
    let (reader_id, reader_secret) = create_key(&env, "reader", Some(READER));
    let (disabled_id, disabled_secret) = create_key(&env, "disabled", Some(ADMIN));
    env.coffer(&["access-key", "disable", "disabled"]).ok();
    env.coffer_stdin(&["secret", "create", "app/rotating"], b"before-rotation")
        .ok();
    env.coffer(&[
        "secret",
        "rotate",
        "app/rotating",
        "--rotator",
        "generate",
        "--no-rotate-immediately",
    ])
    .ok();
    let plain = env.file("plain", b"made-by-coffer-cli");
    let from_cli = env
        .coffer(&[
            "kms",
            "encrypt",
            "--key",
            "alias/default",
            "--plaintext-file",
            plain.to_str().unwrap(),
        ])
        .ok()
        .text();
    let out = tempfile::tempdir().unwrap();

    let (daemon, port) = Daemon::start(&env);
    let run = Command::new(&python)
        .arg(repo().join("tests/aws/clients.py"))
        .env("COFFER_AWS_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .env("COFFER_AWS_ADMIN_ID", &admin_id)
        .env("COFFER_AWS_ADMIN_SECRET", &admin_secret)
        .env("COFFER_AWS_READER_ID", &reader_id)
        .env("COFFER_AWS_READER_SECRET", &reader_secret)
        .env("COFFER_AWS_DISABLED_ID", &disabled_id)
        .env("COFFER_AWS_DISABLED_SECRET", &disabled_secret)
        .env("COFFER_KMS_CLI_CIPHERTEXT", from_cli.trim())
        .env("COFFER_AWS_OUT", out.path())
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "the AWS clients failed:\n{stdout}\n{stderr}\ndaemon:\n{}",
        daemon.0.stderr()
    );
    assert!(stdout.contains("\"passed\""), "{stdout}");
    drop(daemon);

    // A blob made through the API opens with the CLI.
    let blob = std::fs::read(out.path().join("from-api.b64")).unwrap();
    let blob_file = env.file("from-api.b64", &blob);
    let opened = env
        .coffer(&[
            "kms",
            "decrypt",
            "--ciphertext-file",
            blob_file.to_str().unwrap(),
        ])
        .ok();
    assert_eq!(opened.stdout, b"made-by-boto3");

    // Refusals changed nothing, and the policy denials are on record with the key id.
    assert_eq!(env.get("app/db", &[]), b"second-value-2");
    let audit = env
        .coffer(&["audit", "list", "--limit", "1000", "-o", "json"])
        .ok()
        .text();
    assert!(
        audit.contains("aws_access_denied") && audit.contains(&reader_id),
        "{audit}"
    );
    assert!(audit.contains(&format!("aws-api {admin_id}")), "{audit}");
    // Last use is shown per key.
    let keys = env
        .coffer(&["access-key", "list", "-o", "json"])
        .ok()
        .json();
    let admin = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == admin_id.as_str())
        .unwrap();
    assert!(admin["last_used_at"].is_string(), "{admin}");
}

#[test]
fn a_non_loopback_address_is_refused_without_tls() {
    let env = Env::new();
    env.init();
    env.coffer(&["daemon", "--aws-listen", "0.0.0.0:0", "--once"])
        .fails_any(2, &["loopback", "--aws-tls"]);
    // A key file without its certificate, and unreadable files, are refused clearly.
    env.coffer(&[
        "daemon",
        "--aws-listen",
        "0.0.0.0:0",
        "--aws-tls-key",
        "k.pem",
    ])
    .fails_any(2, &["--aws-tls-cert"]);
    let empty = env.file("empty.pem", b"");
    let empty = empty.to_str().unwrap();
    env.coffer(&[
        "daemon",
        "--aws-listen",
        "0.0.0.0:0",
        "--aws-tls-cert",
        empty,
        "--aws-tls-key",
        empty,
        "--once",
    ])
    .fails_any(2, &["holds no certificate"]);
}

/// The daemon's TLS line: the CA fingerprint it printed.
fn tls_fingerprint(daemon: &Daemon) -> String {
    let stderr = daemon.0.stderr();
    stderr
        .split("fingerprint of the CA clients pin: ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_else(|| panic!("no fingerprint printed: {stderr}"))
        .to_owned()
}

/// `--aws-tls`: boto3 over HTTPS with the CA Coffer made pinned; the certificate is the
/// same after a restart, so a pinned client keeps working.
#[test]
fn the_api_serves_https_with_a_certificate_coffer_makes_and_keeps() {
    let python = python();
    let env = Env::new();
    env.init();
    let (id, secret) = create_key(&env, "admin", Some(ADMIN));
    // (Made empty here; the daemon writes the CA into it.)
    let ca = env.file("api-ca.pem", b"");
    let ca_arg = ca.to_str().unwrap().to_owned();
    let tls = ["--aws-tls", "--aws-tls-ca-out", ca_arg.as_str()];
    let first = Daemon(
        env.cmd(
            ["daemon", "--aws-listen", "127.0.0.1:0", "--max-sleep", "1h"]
                .into_iter()
                .chain(tls),
        )
        .spawn(),
    );
    let port = first.port("listening on https://127.0.0.1:");
    let fingerprint = tls_fingerprint(&first);
    let pem = std::fs::read(&ca).unwrap();
    assert!(pem.starts_with(b"-----BEGIN CERTIFICATE-----"));
    let run = Command::new(&python)
        .arg(repo().join("tests/aws/tls.py"))
        .env("COFFER_AWS_ENDPOINT", format!("https://127.0.0.1:{port}"))
        .env("COFFER_AWS_CA", &ca)
        .env("COFFER_AWS_ADMIN_ID", &id)
        .env("COFFER_AWS_ADMIN_SECRET", &secret)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_CA_BUNDLE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "boto3 over TLS failed:\n{stdout}\n{}\ndaemon:\n{}",
        String::from_utf8_lossy(&run.stderr),
        first.0.stderr()
    );
    drop(first);
    let again = Daemon(
        env.cmd(
            ["daemon", "--aws-listen", "127.0.0.1:0", "--max-sleep", "1h"]
                .into_iter()
                .chain(tls),
        )
        .spawn(),
    );
    again.port("listening on https://127.0.0.1:");
    assert_eq!(tls_fingerprint(&again), fingerprint);
    assert_eq!(std::fs::read(&ca).unwrap(), pem);
    // No private key was written next to the vault or the CA file.
    let stored = std::fs::read_dir(ca.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    assert!(!stored.iter().any(|n| n.contains("key")), "{stored:?}");
    assert_eq!(env.get("tls/db", &[]), b"over-tls-value");
}

fn fingerprint(env: &Env) -> String {
    env.coffer(&["region", "identity", "-o", "json"])
        .ok()
        .json()["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// ReplicateSecretToRegions, RemoveRegionsFromReplication and StopReplicationToReplica
/// with boto3 against two real daemons: a primary region whose daemon serves the API and
/// pushes, and a paired replica region whose daemon listens for it and serves the API too.
#[test]
fn replica_regions_through_the_api_behave_as_aws_multi_region_secrets() {
    let python = python();
    let (home, lab) = (Env::new(), Env::new());
    home.init_with(&["--region", "eu-home-1"]);
    lab.init_with(&["--region", "us-lab-1"]);
    let (home_fp, lab_fp) = (fingerprint(&home), fingerprint(&lab));
    let (home_id, home_secret) = create_key(&home, "admin", Some(ADMIN));
    let (lab_id, lab_secret) = create_key(&lab, "admin", Some(ADMIN));
    let (lab_daemon, lab_api) = Daemon::start_with(&lab, &["--listen", "127.0.0.1:0"]);
    let lab_peers = lab_daemon.port("listening for peers on 127.0.0.1:");
    home.coffer(&[
        "region",
        "add",
        "us-lab-1",
        "--url",
        &format!("https://127.0.0.1:{lab_peers}"),
        "--fingerprint",
        &lab_fp,
    ])
    .ok();
    lab.coffer(&[
        "region",
        "add",
        "eu-home-1",
        "--url",
        "https://127.0.0.1:9",
        "--fingerprint",
        &home_fp,
    ])
    .ok();
    let (home_daemon, home_api) = Daemon::start(&home);
    let run = Command::new(&python)
        .arg(repo().join("tests/aws/replication.py"))
        .env("COFFER_AWS_PRIMARY", format!("http://127.0.0.1:{home_api}"))
        .env("COFFER_AWS_PRIMARY_ID", &home_id)
        .env("COFFER_AWS_PRIMARY_SECRET", &home_secret)
        .env("COFFER_AWS_REPLICA", format!("http://127.0.0.1:{lab_api}"))
        .env("COFFER_AWS_REPLICA_ID", &lab_id)
        .env("COFFER_AWS_REPLICA_SECRET", &lab_secret)
        .env("COFFER_PRIMARY_REGION", "eu-home-1")
        .env("COFFER_REPLICA_REGION", "us-lab-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "the replication checks failed:\n{stdout}\n{stderr}\nprimary daemon:\n{}\nreplica daemon:\n{}",
        home_daemon.0.stderr(),
        lab_daemon.0.stderr()
    );
    assert!(stdout.contains("\"passed\""), "{stdout}");
    drop(home_daemon);
    drop(lab_daemon);
    // The refused writes on the replica changed nothing there, and the promoted copy is
    // the replica's own now; the primary still holds its own value.
    assert_eq!(lab.get("app/repl", &[]), b"own-value-on-lab");
    assert_eq!(home.get("app/repl", &[]), b"replicated-value-1");
}
