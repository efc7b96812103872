//! A headless member: a vault created with `init --unattended` that every later process
//! (commands, `coffer daemon`) unlocks with the TPM alone, with no PIN file and nothing on
//! stdin, on a real swtpm.

use coffer_system_tests::daemon::Daemon;
use coffer_system_tests::{exit, Env, Run};

/// `coffer ARGS` as a service runs it: no COFFER_PIN_FILE, empty stdin.
#[track_caller]
fn headless(env: &Env, args: &[&str]) -> Run {
    env.cmd(args).unset("COFFER_PIN_FILE").run()
}

/// A headless `coffer daemon --listen 127.0.0.1:0` (no PIN file), killed when dropped.
fn headless_daemon(env: &Env) -> (Daemon, u16) {
    Daemon::start_cmd(0, |args| env.cmd(args).unset("COFFER_PIN_FILE"), &[])
}

fn identity(env: &Env, args: &[&str]) -> String {
    let mut all = vec!["region", "identity", "-o", "json"];
    all.extend_from_slice(args);
    let json = env.cmd(all).unset("COFFER_PIN_FILE").run().ok().json();
    json["fingerprint"].as_str().unwrap().to_owned()
}

#[test]
fn an_unattended_vault_serves_commands_and_the_daemon_without_a_pin() {
    let lab = Env::new();
    // A PIN file with --unattended is a contradiction: refused, and nothing is created.
    lab.coffer(&["init", "--unattended"])
        .fails(exit::USAGE, "unset COFFER_PIN_FILE");
    assert!(!lab.vault.exists(), "a refused init left a vault behind");

    let created = headless(&lab, &["init", "--unattended", "--output", "json"]).ok();
    let stderr = created.stderr.clone();
    assert!(
        stderr.contains("anyone with root on this machine"),
        "{created}"
    );
    assert!(stderr.contains("--pcrs"), "{created}");
    let code = created.json()["recovery_code"].as_str().unwrap().to_owned();
    lab.sensitive(&code);

    // Fresh processes, no PIN anywhere: they unlock with the TPM alone.
    let file = lab.file("value", b"s3cret-value-1");
    lab.cmd(["secret", "create", "db/password", "--value-file"])
        .arg(&file)
        .unset("COFFER_PIN_FILE")
        .run()
        .ok();
    assert_eq!(
        headless(&lab, &["secret", "get", "db/password"])
            .ok()
            .stdout,
        b"s3cret-value-1"
    );
    lab.cmd(["secret", "put", "db/password", "--value-file", "-"])
        .unset("COFFER_PIN_FILE")
        .stdin(b"s3cret-value-2".to_vec())
        .run()
        .ok();
    assert_eq!(
        headless(&lab, &["secret", "get", "db/password"])
            .ok()
            .stdout,
        b"s3cret-value-2"
    );

    // status names the policy, in both outputs.
    let shown = headless(&lab, &["status"]).ok().text();
    assert!(shown.contains("unattended (TPM only, no PIN)"), "{shown}");
    let json = headless(&lab, &["status", "-o", "json"]).ok().json();
    assert_eq!(json["unlock_policy"], "unattended", "{json}");

    // A PIN given to it is refused, not tried; change-pin has no PIN to prove.
    lab.coffer(&["secret", "get", "db/password"])
        .fails(exit::AUTH, "unlocks without a PIN");
    headless(&lab, &["change-pin"]).fails(exit::AUTH, "coffer recover");

    // `coffer daemon` starts with no PIN and serves a paired peer.
    let home = Env::new();
    home.init();
    home.coffer(&["region", "rename", "eu-home-1"]).ok();
    headless(&lab, &["region", "rename", "us-lab-1"]).ok();
    let home_fp = home
        .coffer(&["region", "identity", "-o", "json"])
        .ok()
        .json()["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    let lab_fp = identity(&lab, &[]);
    headless(
        &lab,
        &[
            "region",
            "add",
            "eu-home-1",
            "--url",
            "https://127.0.0.1:9",
            "--fingerprint",
            &home_fp,
        ],
    )
    .ok();
    let (daemon, port) = headless_daemon(&lab);
    home.coffer(&[
        "region",
        "add",
        "us-lab-1",
        "--url",
        &format!("https://127.0.0.1:{port}"),
        "--fingerprint",
        &lab_fp,
    ])
    .ok();
    let pinged = home.coffer(&["region", "ping", "us-lab-1"]).ok().text();
    assert!(pinged.contains("TLSv1.3"), "{pinged}");
    drop(daemon);

    // The recovery code gives it a PIN: from then on it is a PIN vault.
    lab.set_new_pin("server-pin-0042");
    let code_file = lab.code_file(&code);
    headless(
        &lab,
        &[
            "recover",
            "--recovery-code-file",
            code_file.to_str().unwrap(),
        ],
    )
    .ok();
    let json = headless(&lab, &["status", "-o", "json"]).ok().json();
    assert_eq!(json["unlock_policy"], "pin", "{json}");
    headless(&lab, &["secret", "get", "db/password"]).fails(exit::AUTH, "COFFER_PIN_FILE");
    lab.set_pin("server-pin-0042");
    assert_eq!(
        lab.get("db/password", &[]),
        b"s3cret-value-2",
        "the recovered vault opens with its new PIN"
    );
}

#[test]
fn a_pin_vault_turns_unattended_only_with_its_pin() {
    let env = Env::new();
    env.init();
    env.create("app/token", b"token-value-1");
    let json = env.coffer(&["status", "-o", "json"]).ok().json();
    assert_eq!(json["unlock_policy"], "pin", "{json}");
    assert!(env.coffer(&["status"]).ok().text().contains("unlock"));

    // A wrong current PIN changes nothing.
    let wrong = env.file("wrong-pin", b"not-the-pin-1");
    env.cmd(["change-pin", "--to-unattended"])
        .var("COFFER_PIN_FILE", &wrong)
        .run()
        .fails(exit::AUTH, "PIN");
    let json = env.coffer(&["status", "-o", "json"]).ok().json();
    assert_eq!(json["unlock_policy"], "pin", "{json}");

    env.coffer(&["change-pin", "--to-unattended"]).ok();
    let json = headless(&env, &["status", "-o", "json"]).ok().json();
    assert_eq!(json["unlock_policy"], "unattended", "{json}");
    assert_eq!(
        headless(&env, &["secret", "get", "app/token"]).ok().stdout,
        b"token-value-1"
    );
    // `coffer daemon --once` unlocks and exits cleanly with no PIN.
    headless(&env, &["daemon", "--once"]).ok();
}
