//! Someone with write access to the vault file (but no TPM and no PIN) edits it with SQLite.
//! Every edit must be caught, named, and reported with exit code 6, never answered with
//! wrong data, and never with a panic.

use std::path::Path;

use coffer_system_tests::{exit, random_bytes, Env};
use rusqlite::params;

/// (version id as UUID text, secret name) of every version, with its raw id.
fn version_rows(env: &Env) -> Vec<(Vec<u8>, String, String)> {
    let db = env.db();
    let mut stmt = db
        .prepare(
            "SELECT v.id, s.name, lower(hex(v.id)) FROM secret_versions v
             JOIN secrets s ON s.id = v.secret_id ORDER BY v.created_at",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            let hex: String = r.get(2)?;
            let uuid = format!(
                "{}-{}-{}-{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..]
            );
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?, uuid))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows
}

fn swap_column(env: &Env, column: &str, a: &[u8], b: &[u8]) {
    let mut db = env.db();
    let tx = db.transaction().unwrap();
    let read = |id: &[u8]| -> Vec<u8> {
        tx.query_row(
            &format!("SELECT {column} FROM secret_versions WHERE id = ?1"),
            [id],
            |r| r.get(0),
        )
        .unwrap()
    };
    let (va, vb) = (read(a), read(b));
    assert_ne!(va, vb);
    let sql = format!("UPDATE secret_versions SET {column} = ?2 WHERE id = ?1");
    tx.execute(&sql, params![a, vb]).unwrap();
    tx.execute(&sql, params![b, va]).unwrap();
    tx.commit().unwrap();
}

#[test]
fn ciphertext_swapped_between_secrets_is_detected() {
    let env = Env::new();
    env.init();
    env.create("alpha", b"alpha-value-1234");
    env.create("beta", b"beta-value-56789");
    let rows = version_rows(&env);
    let (alpha, beta) = (&rows[0], &rows[1]);
    assert_eq!((alpha.1.as_str(), beta.1.as_str()), ("alpha", "beta"));
    swap_column(&env, "ciphertext", &alpha.0, &beta.0);
    env.coffer(&["secret", "get", "alpha"])
        .fails_all(exit::TAMPERED, &["\"alpha\"", &alpha.2, "integrity"]);
    env.coffer(&["secret", "get", "beta"])
        .fails_all(exit::TAMPERED, &["\"beta\"", &beta.2]);
    // batch-get reports each one as tampered rather than returning data.
    let batch = env
        .coffer(&["secret", "batch-get", "alpha", "beta"])
        .ok()
        .json();
    assert_eq!(batch["secret_values"], serde_json::json!([]), "{batch:#}");
    let errors = batch["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 2, "{batch:#}");
    for error in errors {
        // The field is "code" (older builds said "error").
        let code = error.get("code").or_else(|| error.get("error"));
        assert_eq!(code, Some(&serde_json::json!("tampered")), "{batch:#}");
    }

    // Swapping data key and ciphertext together (a whole envelope) is caught as well.
    swap_column(&env, "ciphertext", &alpha.0, &beta.0);
    assert_eq!(env.get("alpha", &[]), b"alpha-value-1234");
    swap_column(&env, "ciphertext", &alpha.0, &beta.0);
    swap_column(&env, "wrapped_dek", &alpha.0, &beta.0);
    env.coffer(&["secret", "get", "alpha"])
        .fails_all(exit::TAMPERED, &["alpha", &alpha.2]);
}

#[test]
fn ciphertext_swapped_between_versions_is_detected() {
    let env = Env::new();
    env.init();
    env.create("gamma", b"gamma-value-old1");
    env.put("gamma", b"gamma-value-new2");
    let rows = version_rows(&env);
    let (old, new) = (&rows[0], &rows[1]);
    swap_column(&env, "ciphertext", &old.0, &new.0);
    env.coffer(&["secret", "get", "gamma"])
        .fails_all(exit::TAMPERED, &["gamma", &new.2]);
    env.coffer(&["secret", "get", "gamma", "--label", "PREVIOUS"])
        .fails_all(exit::TAMPERED, &["gamma", &old.2]);
    // The wrapped data keys and ciphertexts moved together (rolling a value back to an
    // older version's content) are caught too.
    swap_column(&env, "wrapped_dek", &old.0, &new.0);
    env.coffer(&["secret", "get", "gamma"])
        .fails_all(exit::TAMPERED, &["gamma", &new.2]);
}

/// Pointing one secret's CURRENT label at another secret's version must not hand out the
/// other secret's value under this secret's name.
#[test]
fn label_pointed_at_another_secrets_version_is_detected() {
    let env = Env::new();
    env.init();
    env.create("prod/db-password", b"the-real-prod-password");
    env.create("test/db-password", b"the-attackers-known-value");
    env.sensitive(b"the-attackers-known-value");
    let rows = version_rows(&env);
    let attacker_version = &rows[1].0;
    env.db()
        .execute(
            "UPDATE staging_labels SET version_id = ?1
             WHERE label = 'CURRENT'
               AND secret_id = (SELECT id FROM secrets WHERE name = 'prod/db-password')",
            [attacker_version],
        )
        .unwrap();
    let run = env.coffer(&["secret", "get", "prod/db-password"]);
    assert!(
        run.stdout != b"the-attackers-known-value",
        "prod/db-password returned test/db-password's value\n{run}"
    );
    run.fails(exit::TAMPERED, "prod/db-password");
}

#[test]
fn flipped_byte_in_wrapped_data_key_is_detected() {
    let env = Env::new();
    env.init();
    env.create("delta", b"delta-value-0000");
    env.put("delta", b"delta-value-1111");
    let rows = version_rows(&env);
    let newest = &rows[1];
    let db = env.db();
    let mut dek: Vec<u8> = db
        .query_row(
            "SELECT wrapped_dek FROM secret_versions WHERE id = ?1",
            [&newest.0],
            |r| r.get(0),
        )
        .unwrap();
    let middle = dek.len() / 2;
    dek[middle] ^= 0x01;
    db.execute(
        "UPDATE secret_versions SET wrapped_dek = ?2 WHERE id = ?1",
        params![newest.0, dek],
    )
    .unwrap();
    drop(db);
    env.coffer(&["secret", "get", "delta"])
        .fails_all(exit::TAMPERED, &["delta", &newest.2]);
    // The untouched version still reads.
    assert_eq!(
        env.get("delta", &["--label", "PREVIOUS"]),
        b"delta-value-0000"
    );

    // A flipped ciphertext byte, too.
    let db = env.db();
    let mut ct: Vec<u8> = db
        .query_row(
            "SELECT ciphertext FROM secret_versions WHERE id = ?1",
            [&rows[0].0],
            |r| r.get(0),
        )
        .unwrap();
    ct[0] ^= 0x80;
    db.execute(
        "UPDATE secret_versions SET ciphertext = ?2 WHERE id = ?1",
        params![rows[0].0, ct],
    )
    .unwrap();
    drop(db);
    env.coffer(&["secret", "get", "delta", "--label", "PREVIOUS"])
        .fails_all(exit::TAMPERED, &["delta", &rows[0].2]);
}

#[test]
fn altered_key_row_is_detected() {
    let env = Env::new();
    env.init();
    env.create("epsilon", b"epsilon-value-42");
    let db = env.db();
    let mut wrapped: Vec<u8> = db
        .query_row("SELECT wrapped_audit_key FROM key_versions", [], |r| {
            r.get(0)
        })
        .unwrap();
    let last = wrapped.len() - 1;
    wrapped[last] ^= 0x01;
    db.execute("UPDATE key_versions SET wrapped_audit_key = ?1", [wrapped])
        .unwrap();
    drop(db);
    env.coffer(&["secret", "get", "epsilon"])
        .fails_all(exit::TAMPERED, &["key", "integrity"]);
}

/// Restores the vault file from `pristine`, applies `sql`, and expects `audit verify` to
/// fail with exit 6 mentioning `needle`.
fn expect_audit_tampered(env: &Env, pristine: &[u8], what: &str, sql: &str, needle: &str) {
    restore(env, pristine);
    env.db()
        .execute_batch(sql)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let run = env.coffer(&["audit", "verify"]);
    assert_eq!(
        run.code(),
        exit::TAMPERED,
        "audit verify did not notice: {what}\n{run}"
    );
    assert!(
        run.stderr.contains("audit log was altered") && run.stderr.contains(needle),
        "{what}: expected a message naming {needle:?}\n{run}"
    );
}

fn restore(env: &Env, pristine: &[u8]) {
    for suffix in ["-wal", "-shm"] {
        let mut path = env.vault.as_os_str().to_owned();
        path.push(suffix);
        let _ = std::fs::remove_file(Path::new(&path));
    }
    std::fs::write(&env.vault, pristine).unwrap();
}

#[test]
fn audit_log_edits_are_detected() {
    let env = Env::new();
    env.init();
    env.create("audited", b"audited-value-01");
    env.put("audited", b"audited-value-02");
    env.get("audited", &[]);
    env.coffer(&["secret", "tag", "audited", "k=v"]).ok();
    env.coffer(&["secret", "delete", "audited"]).ok();
    env.coffer(&["secret", "restore", "audited"]).ok();
    let ok = env.coffer(&["audit", "verify", "-o", "json"]).ok().json();
    let entries = ok["entries"].as_u64().unwrap() as i64;
    assert!(entries >= 7, "{ok:#}");
    assert_eq!(ok["chained"].as_u64().unwrap() as i64, entries);
    let pristine = std::fs::read(&env.vault).unwrap();
    let middle = entries / 2;

    expect_audit_tampered(
        &env,
        &pristine,
        "operation of a middle entry edited",
        &format!("UPDATE audit_log SET operation = 'list_secrets' WHERE seq = {middle}"),
        &format!("entry {middle}"),
    );
    expect_audit_tampered(
        &env,
        &pristine,
        "result of a middle entry edited",
        &format!("UPDATE audit_log SET result = 'secret_not_found' WHERE seq = {middle}"),
        &format!("entry {middle}"),
    );
    expect_audit_tampered(
        &env,
        &pristine,
        "secret name of an entry edited",
        "UPDATE audit_log SET secret_name = 'other' WHERE secret_name = 'audited' AND seq = 3",
        "entry 3",
    );
    expect_audit_tampered(
        &env,
        &pristine,
        "a middle entry deleted",
        &format!("DELETE FROM audit_log WHERE seq = {middle}"),
        &format!("entries {middle} to {middle} are missing"),
    );
    expect_audit_tampered(
        &env,
        &pristine,
        "a middle entry deleted and the rest renumbered",
        &format!(
            "DELETE FROM audit_log WHERE seq = {middle};
             UPDATE audit_log SET seq = seq - 1 WHERE seq > {middle};"
        ),
        &format!("entry {middle}"),
    );
    expect_audit_tampered(
        &env,
        &pristine,
        "the last entry deleted",
        &format!("DELETE FROM audit_log WHERE seq = {entries}"),
        "deleted",
    );
    expect_audit_tampered(
        &env,
        &pristine,
        "the last two entries deleted",
        &format!("DELETE FROM audit_log WHERE seq >= {}", entries - 1),
        "deleted",
    );
    expect_audit_tampered(
        &env,
        &pristine,
        "every entry deleted",
        "DELETE FROM audit_log",
        "head",
    );
    expect_audit_tampered(
        &env,
        &pristine,
        "the chain head removed",
        "DELETE FROM vault_meta WHERE name = 'audit_head'",
        "head",
    );
    expect_audit_tampered(
        &env,
        &pristine,
        "a MAC removed from a chained entry",
        &format!("UPDATE audit_log SET mac = NULL WHERE seq = {middle}"),
        "entry",
    );

    // And the untouched file still verifies (so the failures above are about the edits).
    restore(&env, &pristine);
    env.coffer(&["audit", "verify"]).ok();
}

/// Entries written while the vault is locked (failed unlocks) carry no MAC until a later
/// write chains them in. Someone with write access to the file can insert such an entry;
/// the next write must not launder it into an authentic-looking chained entry.
#[test]
fn forged_unchained_audit_entry_is_not_laundered() {
    let env = Env::new();
    env.init();
    env.create("target", b"target-value-xyz");
    let db = env.db();
    let next: i64 = db
        .query_row("SELECT max(seq) + 1 FROM audit_log", [], |r| r.get(0))
        .unwrap();
    db.execute(
        "INSERT INTO audit_log (seq, at, uid, pid, process, operation, secret_name, result, detail, mac)
         VALUES (?1, 0, 1000, 4242, 'intruder', 'delete_secret', 'target', 'ok', '', NULL)",
        [next],
    )
    .unwrap();
    drop(db);
    // A normal write chains pending entries.
    env.put("target", b"target-value-2ab");
    let verify = env.coffer(&["audit", "verify"]);
    let audit = env.audit();
    let forged = audit
        .iter()
        .find(|e| e["process"] == "intruder")
        .expect("the forged row is listed");
    assert!(
        verify.code() == exit::TAMPERED || forged["chained"] == false,
        "a forged entry ({forged}) was chained in as authentic and the log verifies\n{verify}"
    );
}

/// Failed unlocks are recorded while the vault is locked, without a MAC. An attacker who
/// guessed PINs through Coffer and then deleted those entries must not get a clean log:
/// the TPM counted the attempts, and the next unlock says so in the chain for good.
#[test]
fn deleted_failed_unlocks_are_reported_by_verify() {
    let env = Env::new();
    env.init();
    env.create("guarded", b"guarded-value-123");
    let wrong = "wrong-pin-Zz9q";
    env.sensitive(wrong);
    for _ in 0..2 {
        env.coffer_with_pin(wrong, &["secret", "get", "guarded"])
            .fails(exit::AUTH, "wrong PIN");
    }
    let db = env.db();
    let deleted = db
        .execute("DELETE FROM audit_log WHERE mac IS NULL", [])
        .unwrap();
    assert_eq!(deleted, 2, "two failed unlocks were waiting to be chained");
    drop(db);
    let verify = env.coffer(&["audit", "verify"]).ok().text();
    assert!(
        verify.contains("WARNING")
            && verify.contains("2 failed unlock(s) the TPM counted have no entry in the log"),
        "{verify}"
    );
    let json = env.coffer(&["audit", "verify", "-o", "json"]).ok().json();
    assert_eq!(
        json["findings"].as_array().map(Vec::len),
        Some(1),
        "{json:#}"
    );
}

#[test]
fn truncated_vault_is_reported_as_damaged() {
    let env = Env::new();
    env.init();
    for i in 0..20 {
        env.create(&format!("filler/{i:02}"), &random_bytes(3000));
    }
    let full = std::fs::read(&env.vault).unwrap();
    std::fs::write(&env.vault, &full[..full.len() / 2]).unwrap();
    for args in [
        vec!["secret", "get", "filler/19"],
        vec!["secret", "list", "--all"],
        vec!["audit", "verify"],
    ] {
        env.coffer(&args).fails(exit::TAMPERED, "damaged");
    }
    env.coffer_stdin(&["secret", "put", "filler/00"], b"x-value-x")
        .fails(exit::TAMPERED, "damaged");

    // Garbage is "damaged or not a Coffer vault" too.
    std::fs::write(&env.vault, random_bytes(8192)).unwrap();
    env.coffer(&["secret", "get", "filler/00"])
        .fails(exit::TAMPERED, "damaged");
    env.coffer(&["status"]).fails(exit::TAMPERED, "damaged");
}

/// A vault file cut to zero bytes is damaged. It must be reported as such (exit 6) and left
/// alone, not silently turned into an empty database.
#[test]
fn empty_vault_file_is_damaged_and_left_alone() {
    let env = Env::new();
    env.init();
    env.create("was-here", b"was-here-value");
    std::fs::write(&env.vault, b"").unwrap();
    let run = env.coffer(&["secret", "get", "was-here"]);
    let len = std::fs::metadata(&env.vault).unwrap().len();
    assert_eq!(
        len, 0,
        "opening a damaged (empty) vault wrote {len} bytes into it\n{run}"
    );
    run.fails(exit::TAMPERED, "damaged");
}

/// A vault whose required settings are gone is damaged data: exit 6.
#[test]
fn vault_missing_its_settings_is_damaged() {
    let env = Env::new();
    env.init();
    env.create("settled", b"settled-value");
    env.db()
        .execute("DELETE FROM vault_meta WHERE name = 'vault_id'", [])
        .unwrap();
    env.coffer(&["secret", "get", "settled"])
        .fails(exit::TAMPERED, "damaged");
}

/// A sealed-key blob cut short in the database is damaged data (exit 6), like any other
/// damaged row, not an unexplained failure.
#[test]
fn truncated_sealed_key_is_damaged() {
    let env = Env::new();
    env.init();
    env.create("sealed", b"sealed-value-123");
    env.db()
        .execute(
            "UPDATE key_versions SET sealed = substr(sealed, 1, length(sealed) / 2)",
            [],
        )
        .unwrap();
    env.coffer(&["secret", "get", "sealed"])
        .fails(exit::TAMPERED, "damaged");
}

/// The attack from the integrity review: exchange two secrets' names in the file, so that
/// `get dev/db` (or `coffer run` with a `coffer://dev/db` reference) would hand out
/// production credentials. Both names must now fail, naming the secret.
#[test]
fn swapped_secret_names_are_refused_not_answered() {
    let env = Env::new();
    env.init();
    env.create("prod/db", b"prod-password-1");
    env.create("dev/db", b"dev-password-22");
    env.db()
        .execute_batch(
            "UPDATE secrets SET name = 'tmp' WHERE name = 'prod/db';
             UPDATE secrets SET name = 'prod/db' WHERE name = 'dev/db';
             UPDATE secrets SET name = 'dev/db' WHERE name = 'tmp';",
        )
        .unwrap();
    let run = env
        .coffer(&["secret", "get", "dev/db"])
        .fails_all(exit::TAMPERED, &["\"dev/db\"", "integrity"]);
    assert!(!run.stdout.windows(4).any(|w| w == b"prod"), "{run}");
    env.coffer(&["secret", "get", "prod/db"])
        .fails_all(exit::TAMPERED, &["\"prod/db\"", "integrity"]);
    let run = env
        .cmd(["run", "--", "sh", "-c", "printf %s \"$DB\""])
        .var("DB", "coffer://dev/db")
        .run();
    assert_eq!(run.code(), exit::TAMPERED, "{run}");
    assert!(run.stdout.is_empty(), "{run}");
}

#[test]
fn current_moved_back_to_an_old_version_is_refused() {
    let env = Env::new();
    env.init();
    env.create("rotated", b"old-password-111");
    env.cmd(["secret", "put", "rotated", "--value-file", "-"])
        .stdin("new-password-222")
        .run()
        .ok();
    env.db()
        .execute_batch(
            "UPDATE staging_labels SET version_id =
                 (SELECT version_id FROM staging_labels WHERE label = 'PREVIOUS')
             WHERE label = 'CURRENT';",
        )
        .unwrap();
    let run = env
        .coffer(&["secret", "get", "rotated"])
        .fails_all(exit::TAMPERED, &["\"rotated\"", "labels"]);
    assert!(run.stdout.is_empty(), "{run}");
}

#[test]
fn redirected_recovery_key_is_refused() {
    let env = Env::new();
    env.init();
    env.db()
        .execute(
            "UPDATE vault_meta SET value = zeroblob(32) WHERE name = 'recovery_public_key'",
            [],
        )
        .unwrap();
    env.coffer(&["key", "create", "--alias", "alias/after-edit"])
        .fails_all(
            exit::TAMPERED,
            &["key-protection settings", "coffer recover"],
        );
    env.coffer(&["key", "rotate", "alias/after-edit"])
        .fails(exit::NOT_FOUND, "alias/after-edit");
}
