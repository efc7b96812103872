//! Several processes at once, processes killed mid-write, and a vault held locked by someone
//! else: every acknowledged write survives, nothing is half-written, and waiting is bounded.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::thread;
use std::time::{Duration, Instant};

use coffer_system_tests::{exit, random_bytes, random_hex, Env};

fn integrity_ok(env: &Env) {
    let check: String = env
        .db()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok", "SQLite integrity check failed");
}

/// `batch-get` of `names`: name -> value (text values only).
fn batch_values(env: &Env, names: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for chunk in names.chunks(40) {
        let run = env.cmd(["secret", "batch-get"]).args(chunk).run().ok();
        let json = run.json();
        assert_eq!(json["errors"], serde_json::json!([]), "{run}");
        for item in json["secret_values"].as_array().unwrap() {
            out.insert(
                item["name"].as_str().unwrap().to_owned(),
                item["value"].as_str().unwrap().to_owned(),
            );
        }
    }
    out
}

#[test]
fn concurrent_writers_all_land() {
    let env = Env::new();
    env.init();
    let failures: Vec<String> = thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|writer| {
                let env = &env;
                scope.spawn(move || {
                    let mut failed = Vec::new();
                    for i in 0..20 {
                        let name = format!("w{writer}/s{i:02}");
                        let run = env.coffer_stdin(
                            &["secret", "create", &name],
                            format!("value-{writer}-{i}").as_bytes(),
                        );
                        if run.code() != exit::OK {
                            failed.push(format!(
                                "{name}: exit {}: {}",
                                run.code(),
                                run.stderr.trim()
                            ));
                        }
                    }
                    failed
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("writer thread"))
            .collect()
    });

    // Whatever was acknowledged is there with the right value...
    let names = env.list_names(&[]);
    let values = batch_values(&env, &names);
    for (name, value) in &values {
        let (writer, i) = name[1..].split_once("/s").unwrap();
        assert_eq!(
            value,
            &format!("value-{writer}-{}", i.parse::<u32>().unwrap())
        );
    }
    integrity_ok(&env);
    env.coffer(&["audit", "verify"]).ok();
    // ...and every one of the 80 concurrent creates was acknowledged.
    assert!(
        failures.is_empty(),
        "{} of 80 concurrent creates failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(names.len(), 80);
    let audit = env.audit();
    let creates = audit
        .iter()
        .filter(|e| e["operation"] == "create_secret" && e["result"] == "ok")
        .count();
    assert_eq!(creates, 80);
}

#[test]
fn sigkill_during_writes_loses_nothing_acknowledged() {
    let env = Env::new();
    env.init();
    env.create("baseline", b"baseline-value");
    let mut acknowledged = BTreeMap::new();
    let mut attempted = BTreeMap::new();
    let mut killed = 0;
    for i in 0..36 {
        let name = format!("k/{i:02}");
        let value = format!("kill-test-{i:02}-{}", random_hex(12));
        attempted.insert(name.clone(), value.clone());
        let mut spawned = env
            .cmd(["secret", "create", &name, "--value-file", "-"])
            .stdin(value.clone())
            .spawn();
        if i % 3 == 0 {
            // Somewhere in the middle of the process's life: start-up, unlock, or commit.
            let delay = 5 + u64::from(random_bytes(1)[0]) % 60;
            thread::sleep(Duration::from_millis(delay));
            spawned.sigkill();
        }
        let status = spawned.wait();
        if i % 3 == 0 {
            // A process killed inside a TPM operation can leave objects loaded in a TPM
            // without a resource manager (tpm_failures::killed_process_leaves_the_tpm_usable
            // covers that); flush them so that this test is about the vault file alone. (Not
            // a TPM restart: a non-orderly TPM reset counts as a failed PIN attempt.)
            env.swtpm
                .tpm2_tool("tpm2_flushcontext", &["--transient-object"]);
            env.swtpm
                .tpm2_tool("tpm2_flushcontext", &["--loaded-session"]);
        }
        if status.success() {
            acknowledged.insert(name, value);
        } else {
            killed += 1;
            assert!(
                status.code().is_none(),
                "{name}: a create that was not killed failed ({status}): {}",
                spawned.stderr()
            );
        }
    }
    assert!(killed > 0, "no process was killed mid-flight");
    assert!(acknowledged.len() >= 24, "{acknowledged:?}");

    integrity_ok(&env);
    // Every acknowledged secret reads back exactly; killed ones are either whole or absent.
    let names = env.list_names(&["--prefix", "k/"]);
    for name in acknowledged.keys() {
        assert!(names.contains(name), "acknowledged {name} is missing");
    }
    let values = batch_values(&env, &names);
    for (name, value) in &values {
        assert_eq!(
            Some(value),
            attempted.get(name),
            "{name} has the wrong value"
        );
    }
    assert_eq!(values.len(), names.len());
    assert_eq!(env.get("baseline", &[]), b"baseline-value");
    env.coffer(&["audit", "verify"]).ok();
    // And the vault keeps working.
    env.create("after-kills", b"after-kills-value");
    assert_eq!(env.get("after-kills", &[]), b"after-kills-value");
}

#[test]
fn held_write_lock_times_out_with_exit_8() {
    let env = Env::new();
    env.init();
    env.create("existing", b"existing-value");
    let changes_before: i64 = env
        .db()
        .query_row("SELECT count(*) FROM changes", [], |r| r.get(0))
        .unwrap();
    let last_seq_before = env.audit()[0]["seq"].as_i64().unwrap();

    let holder = env.db();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = Instant::now();
    let run = env
        .cmd(["secret", "create", "blocked"])
        .var("COFFER_BUSY_TIMEOUT_MS", "300")
        .stdin("blocked-value-123")
        .run()
        .fails_all(exit::BUSY, &["busy", "300 ms", "COFFER_BUSY_TIMEOUT_MS"]);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(8),
        "waited {waited:?}\n{run}"
    );
    env.cmd(["secret", "put", "existing"])
        .var("COFFER_BUSY_TIMEOUT_MS", "300")
        .stdin("existing-value-2")
        .run()
        .fails(exit::BUSY, "busy");
    // A read must be on record before its value is shown, so it waits too, and shows nothing.
    let read = env
        .cmd(["secret", "get", "existing"])
        .var("COFFER_BUSY_TIMEOUT_MS", "300")
        .run()
        .fails(exit::BUSY, "busy");
    assert!(read.stdout.is_empty(), "{read}");
    holder.execute_batch("ROLLBACK").unwrap();

    // Nothing of the refused writes is in the file.
    env.coffer(&["secret", "describe", "blocked"])
        .fails(exit::NOT_FOUND, "blocked");
    assert_eq!(env.get("existing", &[]), b"existing-value");
    assert_eq!(env.versions("existing").len(), 1);
    let changes_after: i64 = env
        .db()
        .query_row("SELECT count(*) FROM changes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(changes_after, changes_before);
    // The refused writes left no trace in the log either (reads since then did).
    let audit = env.audit();
    let newer: Vec<_> = audit
        .iter()
        .filter(|e| e["seq"].as_i64().unwrap() > last_seq_before)
        .collect();
    assert!(
        newer.iter().all(|e| e["operation"] != "create_secret"
            && e["operation"] != "put_secret_value"
            && e["secret_name"] != "blocked"),
        "{newer:#?}"
    );
    integrity_ok(&env);
    env.coffer(&["audit", "verify"]).ok();
}

#[test]
fn writer_waits_for_a_short_lock_and_then_succeeds() {
    let env = Env::new();
    env.init();
    let holder = env.db();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let release = thread::spawn(move || {
        thread::sleep(Duration::from_millis(600));
        holder.execute_batch("ROLLBACK").unwrap();
    });
    let started = Instant::now();
    env.cmd(["secret", "create", "patient-writer"])
        .var("COFFER_BUSY_TIMEOUT_MS", "10000")
        .stdin("patient-writer-value")
        .run()
        .ok();
    assert!(started.elapsed() >= Duration::from_millis(500));
    release.join().unwrap();
    assert_eq!(env.get("patient-writer", &[]), b"patient-writer-value");
}

#[test]
fn opening_a_vault_from_an_older_release_copies_it_first_then_upgrades_it() {
    let env = Env::new();
    env.init();
    env.create("app/token", b"token-before-upgrade");
    // The file as the release before replica regions left it: schema 5, no peers table,
    // nothing of replication (migration 7), no access keys or policies (migration 8), no
    // replication inbox or peer cards (migration 9), no team exposures (migration 10).
    env.db()
        .execute_batch(
            "DROP TABLE secret_exposures;
             DROP TABLE replication_inbox; DROP TABLE replication_peer_cards;
             DROP TABLE access_keys; DROP TABLE secret_policies;
             DROP TABLE key_policies; DROP TABLE key_tags;
             DROP TRIGGER replication_outbox_version;
             DROP TABLE secret_replicas; DROP TABLE replication_outbox;
             DROP TABLE replication_peers; DROP TABLE secret_replica_of;
             DROP TABLE replication_inbound;
             ALTER TABLE secret_versions DROP COLUMN origin_vault;
             DROP TABLE peers; PRAGMA user_version = 5;",
        )
        .unwrap();
    assert_eq!(env.get("app/token", &[]), b"token-before-upgrade");
    let backup = env.vault.with_file_name("vault.db.schema-5.bak");
    let mode = std::fs::metadata(&backup)
        .unwrap_or_else(|e| panic!("no copy at {}: {e}", backup.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let old = rusqlite::Connection::open(&backup).unwrap();
    let version: u32 = old
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 5);
    let upgraded: u32 = env
        .db()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert!(upgraded > 5);
    env.coffer(&["region", "list"]).ok();
}
