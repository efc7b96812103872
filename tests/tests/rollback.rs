//! Replacing the vault file with an older copy of itself: every MAC in the copy verifies, so
//! only the TPM's monotonic counter can tell. Such a copy must be refused at unlock with a
//! clear message, and only the recovery code may deliberately keep it.

use std::path::{Path, PathBuf};

use coffer_system_tests::{exit, Env};

const NEW_PIN: &str = "new-pin-after-rollback";

fn sidecars(db: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
        .collect()
}

/// Copies the vault file and its WAL files aside, as a backup tool would.
fn snapshot(env: &Env) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    sidecars(&env.vault)
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).ok();
            (path, bytes)
        })
        .collect()
}

fn restore(files: &[(PathBuf, Option<Vec<u8>>)]) {
    for (path, bytes) in files {
        match bytes {
            Some(bytes) => std::fs::write(path, bytes).unwrap(),
            None => {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

fn counter_index(env: &Env) -> u32 {
    let value: Vec<u8> = env
        .db()
        .query_row(
            "SELECT value FROM vault_meta WHERE name = 'rollback_counter'",
            [],
            |r| r.get(0),
        )
        .expect("the vault records its rollback counter");
    u32::from_be_bytes(value[..4].try_into().unwrap())
}

#[test]
fn an_older_copy_is_refused_until_the_recovery_code_accepts_it() {
    let env = Env::new();
    let code = env.init();
    env.create("kept", b"kept-value-1234");
    let old = snapshot(&env);
    // A later session writes, which moves the TPM's counter past the copy's.
    env.create("later", b"later-value-5678");
    restore(&old);

    env.coffer(&["secret", "get", "kept"])
        .fails_all(exit::TAMPERED, &["older", "--accept-rollback"]);
    // Recovering without saying so keeps refusing, and changes nothing.
    env.set_new_pin(NEW_PIN);
    env.cmd(["recover", "--recovery-code-file"])
        .arg(env.code_file(&code))
        .run()
        .fails(exit::TAMPERED, "--accept-rollback");
    env.coffer(&["secret", "get", "kept"])
        .fails(exit::TAMPERED, "older");

    env.cmd(["recover", "--accept-rollback", "--recovery-code-file"])
        .arg(env.code_file(&code))
        .run()
        .ok();
    env.set_pin(NEW_PIN);
    assert_eq!(env.get("kept", &[]), b"kept-value-1234");
    // The copy is now the vault: it keeps working, and moves the counter again.
    env.create("after", b"after-value-9012");
    assert_eq!(env.get("after", &[]), b"after-value-9012");
    env.coffer(&["secret", "get", "later"])
        .fails(exit::NOT_FOUND, "later");
    env.coffer(&["audit", "verify"]).ok();
}

#[test]
fn the_newest_copy_unlocks_across_sessions() {
    let env = Env::new();
    env.init();
    for i in 0..3 {
        env.create(&format!("s{i}"), b"some-value-3456");
    }
    assert_eq!(env.get("s0", &[]), b"some-value-3456");
}

#[test]
fn a_deleted_counter_is_a_clear_error_and_recover_makes_a_new_one() {
    let env = Env::new();
    let code = env.init();
    env.create("kept", b"kept-value-1234");
    let index = format!("{:#x}", counter_index(&env));
    env.swtpm.tpm2_tool("tpm2_nvundefine", &[&index]);

    env.coffer(&["secret", "get", "kept"])
        .fails_all(exit::TAMPERED, &["no rollback counter", "coffer recover"]);
    env.set_new_pin(NEW_PIN);
    env.cmd(["recover", "--recovery-code-file"])
        .arg(env.code_file(&code))
        .run()
        .ok();
    env.set_pin(NEW_PIN);
    assert_eq!(env.get("kept", &[]), b"kept-value-1234");
}

#[test]
fn removing_the_counter_record_from_the_file_is_refused() {
    let env = Env::new();
    env.init();
    env.create("kept", b"kept-value-1234");
    env.db()
        .execute("DELETE FROM vault_meta WHERE name = 'rollback_counter'", [])
        .unwrap();
    env.coffer(&["secret", "get", "kept"])
        .fails_all(exit::TAMPERED, &["rollback counter record was removed"]);
}
