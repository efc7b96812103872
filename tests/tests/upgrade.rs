//! A new Coffer opening an older vault file: the schema migrates forward after a copy of
//! the file is written beside it, and a migration that fails leaves the vault as it was
//! and says where the copy is (what an update from a package relies on).

use coffer_system_tests::{exit, Env};

/// The vault's schema version, read from the file.
fn schema_version(env: &Env) -> u32 {
    env.db()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap()
}

#[test]
fn a_failed_upgrade_leaves_the_vault_as_it_was_and_names_the_copy() {
    let env = Env::new();
    env.init();
    env.create("kept/secret", b"kept-value-4410");
    let current = schema_version(&env);
    // Pretend the file is one schema older than it is: the last migration then runs again
    // on a file that already has what it creates, and fails, as a broken upgrade would.
    env.db()
        .pragma_update(None, "user_version", current - 1)
        .unwrap();
    let before = env
        .db()
        .query_row("SELECT COUNT(*) FROM secrets", [], |row| {
            row.get::<_, i64>(0)
        })
        .unwrap();

    let copy = format!("vault.db.schema-{}.bak", current - 1);
    let run = env
        .coffer(&["secret", "get", "kept/secret"])
        .fails_any(exit::FAILURE, &["the file is unchanged"]);
    let said = run.stderr.clone();
    assert!(
        said.contains(&format!("from schema {} to {current}", current - 1)) && said.contains(&copy),
        "{said}"
    );
    // Nothing of the failed attempt stayed, and the copy is there and opens.
    assert_eq!(schema_version(&env), current - 1);
    assert_eq!(
        env.db()
            .query_row("SELECT COUNT(*) FROM secrets", [], |row| row
                .get::<_, i64>(0))
            .unwrap(),
        before
    );
    let backup = env.vault.with_file_name(&copy);
    let kept: u32 = rusqlite::Connection::open(&backup)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(kept, current - 1);

    // Put right, the vault opens with its secret.
    env.db()
        .pragma_update(None, "user_version", current)
        .unwrap();
    assert_eq!(env.get("kept/secret", &[]), b"kept-value-4410");
}
