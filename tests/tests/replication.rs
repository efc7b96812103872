//! Replica regions: secrets replicated between two vaults, each with its own swtpm and a
//! real `coffer daemon` on loopback.

use std::time::{Duration, Instant};

use coffer_system_tests::daemon::{fingerprint, Daemon};
use coffer_system_tests::{exit, Env};
use serde_json::Value;

/// Locks the agent when a test ends, however it ends, so no agent outlives its test.
struct Unlocked<'a>(&'a Env);

impl Drop for Unlocked<'_> {
    fn drop(&mut self) {
        let _ = self.0.cmd(["lock"]).run();
    }
}

/// Two regions paired both ways: `home` (eu-home-1, the primary) and `lab` (us-lab-1)
/// whose daemon listens at the returned port.
fn pair() -> (Env, Env, Daemon, u16) {
    let (home, lab) = (Env::new(), Env::new());
    home.init_with(&["--region", "eu-home-1"]);
    lab.init_with(&["--region", "us-lab-1"]);
    let (home_fp, lab_fp) = (fingerprint(&home), fingerprint(&lab));
    let (daemon, port) = Daemon::start(&lab);
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
    (home, lab, daemon, port)
}

/// Polls `check` until it holds (30 s at most), with what was seen last on failure.
#[track_caller]
fn eventually(what: &str, check: impl FnMut() -> Result<(), String>) {
    coffer_system_tests::daemon::eventually(what, Duration::from_secs(30), check)
}

fn value_on(env: &Env, name: &str, extra: &[&str]) -> Result<String, String> {
    let mut args = vec!["secret", "get", name];
    args.extend_from_slice(extra);
    let run = env.coffer(&args);
    if run.code() == 0 {
        Ok(String::from_utf8_lossy(&run.stdout).into_owned())
    } else {
        Err(run.text())
    }
}

#[track_caller]
fn wait_value(env: &Env, name: &str, extra: &[&str], expected: &str) {
    eventually(
        &format!("{name} {extra:?} = {expected} on the replica"),
        || match value_on(env, name, extra) {
            Ok(value) if value == expected => Ok(()),
            Ok(value) => Err(format!("value {value:?}")),
            Err(error) => Err(error),
        },
    );
}

fn region_status(describe: &Value, region: &str) -> Value {
    describe["replication"]["regions"]
        .as_array()
        .and_then(|regions| regions.iter().find(|r| r["region"] == region).cloned())
        .unwrap_or(Value::Null)
}

/// Versions (id and labels) and deletion state, as `describe` shows them: what must be
/// the same on both sides.
fn shape(describe: &Value) -> Value {
    let mut versions: Vec<Value> = describe["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| serde_json::json!([v["version_id"], v["labels"]]))
        .collect();
    versions.sort_by_key(|v| v.to_string());
    serde_json::json!({
        "versions": versions,
        "tags": describe["tags"],
        "description": describe["description"],
        "purge_at": describe["purge_at"],
    })
}

#[test]
fn a_replicated_secret_follows_its_primary_and_is_read_only_there() {
    let (home, lab, lab_daemon, lab_port) = pair();
    let home_daemon = Daemon(home.cmd(["daemon", "--max-sleep", "1h"]).spawn());
    home.sensitive("first-value-1234");
    home.create("db/password", b"first-value-1234");
    home.coffer(&["secret", "replicate", "db/password", "--region", "us-lab-1"])
        .ok();
    // Bad input changes nothing.
    home.coffer(&["secret", "replicate", "db/password", "--region", "us-lab-1"])
        .fails(exit::CONFLICT, "already replicated to region us-lab-1");
    home.coffer(&[
        "secret",
        "replicate",
        "db/password",
        "--region",
        "nowhere-1",
    ])
    .fails(exit::NOT_FOUND, "no region named \"nowhere-1\"");
    home.coffer(&["secret", "replicate", "nothing", "--region", "us-lab-1"])
        .fails(exit::NOT_FOUND, "no secret named");
    home.coffer(&[
        "secret",
        "replicate",
        "db/password",
        "--region",
        "Bad_Region",
    ])
    .fails(exit::USAGE, "lowercase letters");
    home.coffer(&[
        "secret",
        "replicate",
        "db/password",
        "--region",
        "us-lab-1",
        "--key",
        "no key",
    ])
    .fails(exit::USAGE, "replica key");
    home.coffer(&[
        "secret",
        "remove-region",
        "db/password",
        "--region",
        "ap-x-1",
    ])
    .fails(exit::NOT_FOUND, "not replicated to region ap-x-1");

    wait_value(&lab, "db/password", &[], "first-value-1234");
    eventually("InSync on the primary", || {
        let status = region_status(&home.describe("db/password"), "us-lab-1");
        if status["status"] == "InSync" && status["last_synced"].is_string() {
            Ok(())
        } else {
            Err(status.to_string())
        }
    });
    eventually("no backlog in `region list`", || {
        let peers = home.coffer(&["region", "list", "-o", "json"]).ok().json();
        if peers[0]["backlog"] == 0 && peers[0]["last_error"].is_null() {
            Ok(())
        } else {
            Err(peers.to_string())
        }
    });
    let replica = lab.describe("db/password");
    assert_eq!(replica["replication"]["primary_region"], "eu-home-1");
    assert!(
        replica["replication"]["last_applied"].is_string(),
        "{replica}"
    );
    let shown = lab
        .coffer(&["secret", "describe", "db/password"])
        .ok()
        .text();
    assert!(shown.contains("replica of: region eu-home-1"), "{shown}");
    let shown = home
        .coffer(&["secret", "describe", "db/password"])
        .ok()
        .text();
    assert!(
        shown.contains("us-lab-1") && shown.contains("status=InSync"),
        "{shown}"
    );
    assert_eq!(
        replica["id"],
        home.describe("db/password")["id"],
        "the replica keeps the secret's id"
    );
    // No plaintext value in the replica's file.
    let raw = std::fs::read(&lab.vault).unwrap();
    assert!(!raw.windows(16).any(|w| w == b"first-value-1234"));

    // Writes on the replica are refused, naming the primary region.
    let refused = lab
        .coffer_stdin(
            &["secret", "put", "db/password", "--value-file", "-"],
            b"local-write-123",
        )
        .fails(exit::CONFLICT, "read-only replica of region eu-home-1");
    drop(refused);
    lab.coffer(&["secret", "tag", "db/password", "team=lab"])
        .fails(exit::CONFLICT, "eu-home-1");
    lab.coffer(&["secret", "delete", "db/password"])
        .fails(exit::CONFLICT, "eu-home-1");
    lab.coffer(&[
        "secret",
        "replicate",
        "db/password",
        "--region",
        "eu-home-1",
    ])
    .fails(exit::CONFLICT, "eu-home-1");

    // New version, label move, tags, description, delete and restore all follow.
    let v1 = home.describe("db/password")["versions"][0]["version_id"]
        .as_str()
        .unwrap()
        .to_owned();
    home.sensitive("second-value-5678");
    let v2 = home.put("db/password", b"second-value-5678");
    wait_value(&lab, "db/password", &[], "second-value-5678");
    wait_value(
        &lab,
        "db/password",
        &["--label", "PREVIOUS"],
        "first-value-1234",
    );
    home.coffer(&[
        "secret",
        "update-version-stage",
        "db/password",
        "--label",
        "STAGED",
        "--move-to",
        &v1,
    ])
    .ok();
    home.coffer(&["secret", "tag", "db/password", "team=payments"])
        .ok();
    home.coffer(&[
        "secret",
        "update",
        "db/password",
        "--description",
        "the database",
    ])
    .ok();
    wait_value(
        &lab,
        "db/password",
        &["--label", "STAGED"],
        "first-value-1234",
    );
    eventually("tags and description on the replica", || {
        let (a, b) = (
            shape(&home.describe("db/password")),
            shape(&lab.describe("db/password")),
        );
        if a == b {
            Ok(())
        } else {
            Err(format!("{a} vs {b}"))
        }
    });
    let _ = v2;
    home.coffer(&["secret", "delete", "db/password"]).ok();
    eventually("deletion on the replica", || {
        let d = lab.describe("db/password");
        if d["purge_at"].is_string() {
            Ok(())
        } else {
            Err(d.to_string())
        }
    });
    home.coffer(&["secret", "restore", "db/password"]).ok();
    wait_value(&lab, "db/password", &[], "second-value-5678");

    // The replica answers reads with the primary's daemon gone.
    drop(home_daemon);
    assert_eq!(
        value_on(&lab, "db/password", &[]).unwrap(),
        "second-value-5678"
    );
    drop(lab_daemon);
    assert_eq!(
        value_on(&lab, "db/password", &[]).unwrap(),
        "second-value-5678"
    );

    // A change the region cannot be reached for: Failed, with the reason.
    home.coffer(&["secret", "tag", "db/password", "stage=2"])
        .ok();
    let home_daemon = Daemon(home.cmd(["daemon", "--max-sleep", "1h"]).spawn());
    eventually("a Failed status saying the region is unreachable", || {
        let status = region_status(&home.describe("db/password"), "us-lab-1");
        let message = status["message"].as_str().unwrap_or("");
        if status["status"] == "Failed" && message.contains("cannot reach region") {
            Ok(())
        } else {
            Err(status.to_string())
        }
    });
    // The replica's vault unlocked again (its daemon back): what waited arrives.
    let lab_daemon = Daemon::start_on(&lab, lab_port);
    eventually("the queued change on the replica, and InSync", || {
        let tags = lab.describe("db/password")["tags"].clone();
        let status = region_status(&home.describe("db/password"), "us-lab-1");
        if tags["stage"] == "2" && status["status"] == "InSync" {
            Ok(())
        } else {
            Err(format!("{tags} {status}"))
        }
    });
    drop(home_daemon);
    drop(lab_daemon);

    // The replica's audit log records what it applied.
    let audit = lab.coffer(&["audit", "list", "-o", "json"]).ok().text();
    assert!(audit.contains("replication_apply"), "{audit}");
}

#[test]
fn promote_remove_region_and_a_restart_mid_transfer_lose_nothing() {
    let (home, lab, lab_daemon, port) = pair();
    home.create("app/token", b"token-value-0001");
    home.create("app/other", b"other-value-0001");
    for name in ["app/token", "app/other"] {
        home.coffer(&["secret", "replicate", name, "--region", "us-lab-1"])
            .ok();
    }
    // Many secrets, so that the replica can be killed in the middle of the transfer
    // (created through an unlocked agent, to be quick).
    home.coffer(&["unlock", "--timeout", "5m"]).ok();
    let _unlocked = Unlocked(&home);
    let many = 200;
    // 30 KB values: a batch holds at most 4 MiB, so the transfer takes several batches
    // (each one transaction on the replica) and can be cut between two.
    let bulk = |i: usize| format!("bulk-value-{i:05}-{}", "x".repeat(30_000));
    for i in 0..many {
        let name = format!("bulk/s{i:03}");
        home.create(&name, bulk(i).as_bytes());
        home.coffer(&["secret", "replicate", &name, "--region", "us-lab-1"])
            .ok();
    }
    let position = |env: &Env| -> i64 {
        env.db()
            .query_row(
                "SELECT coalesce(max(applied_upto), 0) FROM replication_inbound",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    let home_daemon = Daemon(home.cmd(["daemon", "--max-sleep", "1h"]).spawn());
    // Kill the replica as soon as its first batch is committed, then start it again at
    // the same port.
    let start = Instant::now();
    while position(&lab) == 0 {
        assert!(start.elapsed() < Duration::from_secs(60), "nothing arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(lab_daemon);
    let applied_at_kill = position(&lab);
    let lab_daemon = Daemon::start_on(&lab, port);
    for i in 0..many {
        wait_value(&lab, &format!("bulk/s{i:03}"), &[], &bulk(i));
    }
    let applied_at_end = position(&lab);
    assert!(
        applied_at_kill < applied_at_end,
        "the replica was killed after the transfer ({applied_at_kill} of {applied_at_end})"
    );
    eprintln!("the replica was killed at position {applied_at_kill} of {applied_at_end}");
    // Kill the primary's daemon with changes queued, restart it: they still arrive.
    drop(home_daemon);
    home.put("bulk/s000", b"bulk-after-crash-0");
    let home_daemon = Daemon(home.cmd(["daemon", "--max-sleep", "1h"]).spawn());
    wait_value(&lab, "bulk/s000", &[], "bulk-after-crash-0");
    // Nothing lost or duplicated: every secret has exactly the primary's versions/labels.
    for i in 0..many {
        let name = format!("bulk/s{i:03}");
        assert_eq!(
            shape(&home.describe(&name)),
            shape(&lab.describe(&name)),
            "{name}"
        );
    }

    // Promote on the replica: it becomes the lab's own secret and takes writes...
    lab.coffer(&["secret", "promote", "app/token"]).ok();
    lab.coffer(&["secret", "promote", "app/token"])
        .fails(exit::CONFLICT, "not a replica");
    lab.coffer_stdin(
        &["secret", "put", "app/token", "--value-file", "-"],
        b"lab-own-value-01",
    )
    .ok();
    assert_eq!(
        value_on(&lab, "app/token", &[]).unwrap(),
        "lab-own-value-01"
    );
    assert_eq!(
        value_on(&lab, "app/token", &["--label", "PREVIOUS"]).unwrap(),
        "token-value-0001",
        "the primary's versions stay readable after promotion"
    );
    // ...and no longer follows: the primary says why.
    home.put("app/token", b"token-value-0002");
    eventually("a Failed status naming the promotion", || {
        let status = region_status(&home.describe("app/token"), "us-lab-1");
        if status["status"] == "Failed"
            && status["message"]
                .as_str()
                .unwrap_or("")
                .contains("promoted")
        {
            Ok(())
        } else {
            Err(status.to_string())
        }
    });
    assert_eq!(
        value_on(&lab, "app/token", &[]).unwrap(),
        "lab-own-value-01"
    );

    // Remove a region: the replica deletes its copy when reached.
    home.coffer(&[
        "secret",
        "remove-region",
        "app/other",
        "--region",
        "us-lab-1",
    ])
    .ok();
    eventually("the copy deleted on the replica", || {
        let run = lab.coffer(&["secret", "describe", "app/other"]);
        if run.code() == exit::NOT_FOUND {
            Ok(())
        } else {
            Err(run.text())
        }
    });
    assert!(home.describe("app/other")["replication"].is_null());
    drop(home_daemon);
    drop(lab_daemon);
}

#[test]
fn an_edited_replica_row_is_refused_not_followed() {
    let (home, lab, lab_daemon, port) = pair();
    home.create("edit/me", b"edit-value-00001");
    home.coffer(&["secret", "replicate", "edit/me", "--region", "us-lab-1"])
        .ok();
    let home_daemon = Daemon(home.cmd(["daemon", "--max-sleep", "1h"]).spawn());
    wait_value(&lab, "edit/me", &[], "edit-value-00001");
    drop(home_daemon);
    drop(lab_daemon);
    // Turning the replica into a writable secret by deleting its marker is detected.
    lab.db()
        .execute("DELETE FROM secret_replica_of", [])
        .unwrap();
    lab.coffer(&["secret", "get", "edit/me"])
        .fails(exit::TAMPERED, "altered outside Coffer");
    // On the primary, pointing a replication at another region is detected too.
    home.db()
        .execute("UPDATE secret_replicas SET replica_key = 'alias/other'", [])
        .unwrap();
    home.put("edit/me", b"edit-value-00002");
    let _lab_daemon = Daemon::start_on(&lab, port);
    let _home_daemon = Daemon(home.cmd(["daemon", "--max-sleep", "1h"]).spawn());
    eventually("the primary refusing the edited row", || {
        let log = _home_daemon.log();
        if log.contains("failed its integrity check") {
            Ok(())
        } else {
            Err(log)
        }
    });
}

/// Counts rows of a table in a vault file, read directly (the vault stays locked).
fn rows_in(env: &Env, table: &str) -> i64 {
    let conn = rusqlite::Connection::open_with_flags(
        &env.vault,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// Whether `needle` is anywhere in the vault's files (the database and its WAL).
fn on_disk(env: &Env, needle: &[u8]) -> bool {
    let dir = env.vault.parent().unwrap();
    std::fs::read_dir(dir).unwrap().any(|entry| {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        bytes.windows(needle.len()).any(|w| w == needle)
    })
}

#[test]
fn a_replica_held_locked_keeps_what_it_receives_sealed_until_unlocked() {
    let (home, lab, lab_daemon, lab_port) = pair();
    drop(lab_daemon);
    // The lab's daemon unlocks once to read its TLS identity and pins, then locks.
    let lab_daemon = Daemon::start_at(&lab, lab_port, &["--stay-locked"]).0;
    let home_daemon = Daemon(home.cmd(["daemon", "--max-sleep", "1h"]).spawn());
    eventually("the lab daemon to lock", || {
        let log = lab_daemon.log();
        if log.contains("vault locked") {
            Ok(())
        } else {
            Err(log)
        }
    });
    home.sensitive("locked-replica-value-1");
    home.create("db/password", b"locked-replica-value-1");
    home.coffer(&["secret", "replicate", "db/password", "--region", "us-lab-1"])
        .ok();
    eventually("the locked lab to acknowledge", || {
        let status = region_status(&home.describe("db/password"), "us-lab-1");
        if status["status"] == "InSync" {
            Ok(())
        } else {
            Err(format!("{status}; lab: {}", lab_daemon.log()))
        }
    });
    // Kept, not applied: no secret yet, the entries sealed in the inbox, no plaintext.
    assert_eq!(rows_in(&lab, "secrets"), 0);
    assert!(rows_in(&lab, "replication_inbox") > 0);
    assert!(!on_disk(&lab, b"locked-replica-value-1"));

    // The next unlock (here a command run with the PIN) applies them and audits it.
    assert_eq!(
        value_on(&lab, "db/password", &[]).unwrap(),
        "locked-replica-value-1"
    );
    assert_eq!(rows_in(&lab, "replication_inbox"), 0);
    let audit = lab.coffer(&["audit", "list", "-o", "json"]).ok().text();
    assert!(
        audit.lines().any(|line| {
            let entry: Value = serde_json::from_str(line).unwrap();
            entry["operation"] == "replication_apply"
                && entry["detail"].as_str().unwrap_or("").contains("via=inbox")
        }),
        "{audit}"
    );

    // The locked daemon goes on receiving; the replica stays read-only.
    home.sensitive("locked-replica-value-2");
    home.coffer_stdin(
        &["secret", "put", "db/password", "--value-file", "-"],
        b"locked-replica-value-2",
    )
    .ok();
    eventually("the second value to be acknowledged", || {
        let status = region_status(&home.describe("db/password"), "us-lab-1");
        match (status["status"].as_str(), status["pending"].as_u64()) {
            (Some("InSync"), Some(0)) => Ok(()),
            _ => Err(status.to_string()),
        }
    });
    assert!(!on_disk(&lab, b"locked-replica-value-2"));
    wait_value(&lab, "db/password", &[], "locked-replica-value-2");
    assert_eq!(
        value_on(&lab, "db/password", &["--label", "PREVIOUS"]).unwrap(),
        "locked-replica-value-1"
    );
    let shape_home = shape(&home.describe("db/password"));
    assert_eq!(shape(&lab.describe("db/password")), shape_home);
    drop(home_daemon);
    drop(lab_daemon);
}
