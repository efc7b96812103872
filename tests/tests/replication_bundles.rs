//! Air-gapped regions: two vaults (each with its own swtpm) that never connect, kept in
//! sync by bundles and acknowledgements carried as files.

use std::path::{Path, PathBuf};

use coffer_system_tests::{exit, Env};
use serde_json::Value;

fn fingerprint(env: &Env) -> String {
    env.coffer(&["region", "identity", "-o", "json"])
        .ok()
        .json()["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn pair(a: &Env, a_region: &str, b: &Env, b_region: &str) {
    let (fa, fb) = (fingerprint(a), fingerprint(b));
    let url = "https://127.0.0.1:9";
    a.coffer(&[
        "region",
        "add",
        b_region,
        "--url",
        url,
        "--fingerprint",
        &fb,
    ])
    .ok();
    b.coffer(&[
        "region",
        "add",
        a_region,
        "--url",
        url,
        "--fingerprint",
        &fa,
    ])
    .ok();
}

fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn export(env: &Env, region: &str, out: &Path) -> Value {
    env.coffer(&["region", "export", region, "--out", arg(out), "-o", "json"])
        .ok()
        .json()
}

fn import(env: &Env, bundle: &Path) -> Value {
    env.coffer(&["region", "import", arg(bundle), "-o", "json"])
        .ok()
        .json()
}

/// The same file with one character of its signed body changed (still valid base64).
fn tampered(bundle: &Path, out: &Path) {
    let mut file: Value = serde_json::from_slice(&std::fs::read(bundle).unwrap()).unwrap();
    let body = file["body"].as_str().unwrap().to_owned();
    let at = body.len() / 2;
    let mut bytes = body.into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    file["body"] = Value::String(String::from_utf8(bytes).unwrap());
    std::fs::write(out, serde_json::to_vec(&file).unwrap()).unwrap();
}

fn value(env: &Env, name: &str) -> String {
    String::from_utf8(env.coffer(&["secret", "get", name]).ok().stdout).unwrap()
}

/// Versions and labels as `describe` shows them: what must match on both sides.
fn shape(describe: &Value) -> Value {
    let mut versions: Vec<Value> = describe["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| serde_json::json!([v["version_id"], v["labels"]]))
        .collect();
    versions.sort_by_key(|v| v.to_string());
    serde_json::json!({ "versions": versions, "tags": describe["tags"] })
}

#[test]
fn bundles_carry_a_secret_between_vaults_that_never_connect() {
    let (home, lab) = (Env::new(), Env::new());
    home.init_with(&["--region", "eu-home-1"]);
    lab.init_with(&["--region", "us-lab-1"]);
    pair(&home, "eu-home-1", &lab, "us-lab-1");
    let usb = tempfile::tempdir().unwrap();
    let usb = usb.path();

    home.sensitive("air-gapped-value-0001");
    home.create("db/password", b"air-gapped-value-0001");
    home.coffer(&["secret", "replicate", "db/password", "--region", "us-lab-1"])
        .ok();

    // The primary cannot seal to a region it has no acknowledgement (no keys) from.
    home.coffer(&[
        "region",
        "export",
        "us-lab-1",
        "--out",
        arg(&path(usb, "b0")),
    ])
    .fails(exit::USAGE, "coffer region ack eu-home-1");
    home.coffer(&[
        "region",
        "export",
        "nowhere-1",
        "--out",
        arg(&path(usb, "b0")),
    ])
    .fails(exit::NOT_FOUND, "nowhere-1");
    assert!(!path(usb, "b0").exists());
    // The replica introduces itself with a first acknowledgement.
    lab.coffer(&[
        "region",
        "ack",
        "eu-home-1",
        "--out",
        arg(&path(usb, "ack0")),
    ])
    .ok();
    let taken = home
        .coffer(&[
            "region",
            "import-ack",
            arg(&path(usb, "ack0")),
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(taken["acked"], 0);

    let first = export(&home, "us-lab-1", &path(usb, "b1"));
    assert_eq!(first["entries"], 1, "{first}");
    let raw = std::fs::read(path(usb, "b1")).unwrap();
    assert!(!raw.windows(21).any(|w| w == b"air-gapped-value-0001"));
    let mode = std::fs::metadata(path(usb, "b1")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );

    // Bad bundles are refused, with nothing applied.
    tampered(&path(usb, "b1"), &path(usb, "b1-tampered"));
    lab.coffer(&["region", "import", arg(&path(usb, "b1-tampered"))])
        .fails(exit::TAMPERED, "the file was altered");
    let whole = std::fs::read(path(usb, "b1")).unwrap();
    std::fs::write(path(usb, "b1-short"), &whole[..whole.len() / 2]).unwrap();
    lab.coffer(&["region", "import", arg(&path(usb, "b1-short"))])
        .fails(exit::USAGE, "truncated");
    home.coffer(&["region", "import", arg(&path(usb, "b1"))])
        .fails(exit::USAGE, "import it on that vault");
    lab.coffer(&["secret", "get", "db/password"])
        .fails(exit::NOT_FOUND, "db/password");
    assert!(!path(usb, "b1-tampered.ack").exists());

    // The genuine bundle applies, once; the copy is read-only.
    let applied = import(&lab, &path(usb, "b1"));
    assert_eq!(applied["applied"], 1, "{applied}");
    assert_eq!(value(&lab, "db/password"), "air-gapped-value-0001");
    lab.coffer(&["secret", "delete", "db/password"])
        .fails(exit::CONFLICT, "eu-home-1");
    lab.coffer(&["region", "import", arg(&path(usb, "b1"))])
        .fails(exit::USAGE, "already applied");
    let audit = lab.coffer(&["audit", "list", "-o", "json"]).ok().text();
    assert!(audit.contains("via=bundle"), "{audit}");

    // Updates follow the same way; the outbox moves on only with the acknowledgement.
    home.sensitive("air-gapped-value-0002");
    home.put("db/password", b"air-gapped-value-0002");
    home.coffer(&["secret", "tag", "db/password", "team=lab"])
        .ok();
    let again = export(&home, "us-lab-1", &path(usb, "b2-early"));
    assert_eq!(again["after"], 0, "not acknowledged yet: {again}");
    home.coffer(&["region", "import-ack", arg(&path(usb, "b1.ack"))])
        .ok();
    let second = export(&home, "us-lab-1", &path(usb, "b2"));
    assert_eq!(second["after"], first["last_seq"], "{second}");
    // The early bundle overlaps what was applied: its new changes apply, the rest skip.
    let overlap = import(&lab, &path(usb, "b2-early"));
    assert_eq!(overlap["skipped"], 1, "{overlap}");
    assert_eq!(value(&lab, "db/password"), "air-gapped-value-0002");
    // b2 carries nothing new now: a replay.
    lab.coffer(&["region", "import", arg(&path(usb, "b2"))])
        .fails(exit::USAGE, "already applied");
    let done = home
        .coffer(&[
            "region",
            "import-ack",
            arg(&path(usb, "b2-early.ack")),
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(done["backlog"], 0, "{done}");
    // An older acknowledgement is refused and changes nothing.
    home.coffer(&["region", "import-ack", arg(&path(usb, "ack0"))])
        .fails(exit::USAGE, "older acknowledgement");
    let status = &home.describe("db/password")["replication"]["regions"][0];
    assert_eq!(status["status"], "InSync", "{status}");
    assert_eq!(
        shape(&lab.describe("db/password")),
        shape(&home.describe("db/password"))
    );

    // A vault posing as eu-home-1 (same region name, its own identity) is refused by
    // the fingerprint the lab pinned, and an acknowledgement for another vault too.
    let fake = Env::new();
    fake.init_with(&["--region", "eu-home-1"]);
    let lab_fp = fingerprint(&lab);
    fake.coffer(&[
        "region",
        "add",
        "us-lab-1",
        "--url",
        "https://127.0.0.1:9",
        "--fingerprint",
        &lab_fp,
    ])
    .ok();
    fake.coffer(&["region", "import-ack", arg(&path(usb, "ack0"))])
        .ok();
    fake.create("db/password", b"forged-value-000001");
    fake.coffer(&["secret", "replicate", "db/password", "--region", "us-lab-1"])
        .ok();
    export(&fake, "us-lab-1", &path(usb, "forged"));
    lab.coffer(&["region", "import", arg(&path(usb, "forged"))])
        .fails(exit::TAMPERED, "is pinned as");
    fake.coffer(&["region", "import-ack", arg(&path(usb, "b2-early.ack"))])
        .fails(exit::USAGE, "import it on that vault");
    assert_eq!(value(&lab, "db/password"), "air-gapped-value-0002");
}
