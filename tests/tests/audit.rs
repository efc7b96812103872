//! The audit log through the real binary: who did what to which secret, in order, chained,
//! and never with a value in it.

use coffer_system_tests::{contains, exit, random_hex, version_id_of, Env, Value};

fn ops(entries: &[Value]) -> Vec<(String, String, String)> {
    entries
        .iter()
        .map(|e| {
            (
                e["operation"].as_str().unwrap_or_default().to_owned(),
                e["secret_name"].as_str().unwrap_or_default().to_owned(),
                e["result"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn audit_records_who_did_what_without_values() {
    let env = Env::new();
    env.init();
    let first = format!("first-{}", random_hex(40));
    let second = format!("second-{}", random_hex(40));
    env.sensitive(&first);
    env.sensitive(&second);
    let v1 = env.create("audited/secret", first.as_bytes());
    let put = env
        .coffer_stdin(
            &[
                "secret",
                "put",
                "audited/secret",
                "--value-file",
                "-",
                "-o",
                "json",
            ],
            second.as_bytes(),
        )
        .ok();
    let v2 = version_id_of(&put);
    env.get("audited/secret", &[]);
    env.describe("audited/secret");
    env.coffer(&["secret", "get", "audited/missing"])
        .fails(exit::NOT_FOUND, "audited/missing");
    env.create("audited/other", b"other-value-1234");
    env.coffer(&["secret", "delete", "audited/other"]).ok();
    env.coffer(&["secret", "restore", "audited/other"]).ok();

    let entries = env.audit();
    // Newest first, numbered without gaps, all chained.
    let seqs: Vec<i64> = entries.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    let mut expected_seqs: Vec<i64> = (1..=seqs.len() as i64).collect();
    expected_seqs.reverse();
    assert_eq!(seqs, expected_seqs);
    assert!(entries.iter().all(|e| e["chained"] == true), "{entries:#?}");

    let mut oldest_first = ops(&entries);
    oldest_first.reverse();
    let wanted = [
        ("init", "", "ok"),
        ("create_secret", "audited/secret", "ok"),
        ("put_secret_value", "audited/secret", "ok"),
        ("get_secret_value", "audited/secret", "ok"),
        ("describe_secret", "audited/secret", "ok"),
        ("get_secret_value", "audited/missing", "secret_not_found"),
        ("create_secret", "audited/other", "ok"),
        ("delete_secret", "audited/other", "ok"),
        ("restore_secret", "audited/other", "ok"),
    ];
    let wanted: Vec<(String, String, String)> = wanted
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(oldest_first, wanted, "{entries:#?}");

    // Entries name the versions and the acting process.
    let create = &entries[entries.len() - 2];
    assert_eq!(create["version_id"], v1.as_str());
    let put = &entries[entries.len() - 3];
    assert_eq!(put["version_id"], v2.as_str());
    assert!(put["key_id"].is_string(), "{put:#}");
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    for entry in &entries {
        assert_eq!(entry["uid"], uid, "{entry:#}");
        // `coffer`, or `coffer-tpm` for the commands that unsealed keys themselves.
        assert!(
            entry["process"] == "coffer" || entry["process"] == "coffer-tpm",
            "{entry:#}"
        );
    }
    assert_ne!(create["pid"], put["pid"]);

    // Filter by secret, limit.
    let only = env
        .coffer(&["audit", "list", "--secret", "audited/other", "-o", "json"])
        .ok()
        .json_lines();
    assert_eq!(
        ops(&only)
            .iter()
            .map(|(op, _, _)| op.as_str())
            .collect::<Vec<_>>(),
        ["restore_secret", "delete_secret", "create_secret"]
    );
    let two = env
        .coffer(&["audit", "list", "--limit", "2", "-o", "json"])
        .ok()
        .json_lines();
    assert_eq!(two.len(), 2);
    env.coffer(&["audit", "list", "--limit", "0"])
        .fails(exit::USAGE, "limit");

    // No value anywhere in the log: not in its output, not in its rows.
    let listing = env
        .coffer(&["audit", "list", "--limit", "10000"])
        .ok()
        .stdout;
    let json_listing = env
        .coffer(&["audit", "list", "--limit", "10000", "-o", "json"])
        .ok()
        .stdout;
    let rows: Vec<String> = {
        let db = env.db();
        let mut stmt = db
            .prepare(
                "SELECT coalesce(operation,'') || coalesce(secret_name,'') || coalesce(result,'')
                        || coalesce(detail,'') || coalesce(process,'') FROM audit_log",
            )
            .unwrap();
        let rows = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows
    };
    for value in [&first, &second] {
        assert!(!contains(&listing, value.as_bytes()));
        assert!(!contains(&json_listing, value.as_bytes()));
        assert!(rows.iter().all(|r| !r.contains(value.as_str())));
    }

    let verified = env.coffer(&["audit", "verify", "-o", "json"]).ok().json();
    // The list commands above read the log; they do not add to it.
    assert_eq!(verified["entries"], entries.len());
    assert_eq!(verified["chained"], entries.len());
    assert_eq!(verified["pending"], 0);
}

#[test]
fn reads_are_on_record() {
    let env = Env::new();
    env.init();
    env.create("read/me", b"read-me-value-1");
    env.create("read/too", b"read-me-value-2");
    env.coffer(&["secret", "batch-get", "read/me", "read/too"])
        .ok();
    let blob = env
        .cmd(["kms", "encrypt", "--key", "alias/none"])
        .stdin("kms-plaintext")
        .run()
        .fails(exit::NOT_FOUND, "alias/none");
    drop(blob);
    let entries = env.audit();
    let reads: Vec<&str> = entries
        .iter()
        .filter(|e| e["operation"] == "get_secret_value")
        .map(|e| e["secret_name"].as_str().unwrap())
        .collect();
    assert_eq!(reads, ["read/too", "read/me"], "{entries:#?}");
    assert!(
        entries
            .iter()
            .any(|e| e["operation"] == "encrypt" && e["result"] == "key_not_found"),
        "{entries:#?}"
    );
    // describe reports the day of the last access.
    let described = env.describe("read/me");
    assert!(described["last_accessed"].is_string(), "{described:#}");
}

#[test]
fn failed_unlocks_are_recorded_and_chained_by_the_next_unlock() {
    let env = Env::new();
    env.init();
    env.create("unlockable", b"unlockable-value");
    let wrong = "wrong-pin-Ab3d";
    env.sensitive(wrong);
    env.coffer_with_pin(wrong, &["secret", "get", "unlockable"])
        .fails(exit::AUTH, "wrong PIN");

    let first = env.coffer(&["audit", "verify", "-o", "json"]).ok().json();
    let entries = env.audit();
    let failed = entries
        .iter()
        .find(|e| e["operation"] == "unlock" && e["result"] != "ok")
        .unwrap_or_else(|| panic!("the failed unlock is not in the log: {entries:#?}"));
    assert_ne!(failed["result"], "ok");
    assert!(failed["secret_name"].is_null());
    // `audit verify` said the next unlock chains pending entries; the runs above unlocked.
    let second = env.coffer(&["audit", "verify", "-o", "json"]).ok();
    assert_eq!(
        second.json()["pending"],
        0,
        "after two more unlocks the failed unlock is still unchained (first verify: {first})\n{second}"
    );
}
