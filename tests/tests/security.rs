//! What an observer of the disk or of the terminal can learn: no plaintext value in the vault
//! file or its WAL, no PIN or value in any error, private file modes, and no way to pass a
//! secret as a (world-readable) command-line argument.

use std::os::unix::fs::PermissionsExt;

use coffer_system_tests::{contains, exit, random_bytes, random_hex, Env, PIN};

#[test]
fn values_never_reach_the_disk_in_plaintext() {
    let env = Env::new();
    let code = env.init();
    // Keep a connection open so the WAL survives the coffer processes and can be inspected.
    let observer = env.db();
    let _: i64 = observer
        .query_row("SELECT count(*) FROM secrets", [], |r| r.get(0))
        .unwrap();

    let text = random_hex(48);
    let second = random_hex(48);
    let binary = random_bytes(64);
    env.sensitive(&text);
    env.sensitive(&second);
    env.create("disk/text", text.as_bytes());
    env.put("disk/text", second.as_bytes());
    env.create("disk/binary", &binary);
    let kms_plain = format!("kms-{}", random_hex(40));
    env.cmd(["kms", "encrypt", "--key", "alias/none"])
        .stdin(kms_plain.clone())
        .run();
    let generated = env
        .coffer(&[
            "kms",
            "generate-data-key-without-plaintext",
            "--key",
            "alias/none",
        ])
        .code();
    assert_eq!(generated, exit::NOT_FOUND);
    assert_eq!(env.get("disk/text", &[]), second.as_bytes());

    let files = env.raw_files();
    let wal = files
        .iter()
        .find(|(p, _)| p.to_string_lossy().ends_with("-wal"))
        .expect("the WAL is still there while a connection is open");
    assert!(
        !wal.1.is_empty(),
        "the WAL is empty; the test would prove nothing"
    );
    // Positive control: what is stored in the clear (names) is found by this search.
    assert!(
        files
            .iter()
            .any(|(_, bytes)| contains(bytes, b"disk/binary")),
        "the search cannot even find a secret name"
    );
    for (path, bytes) in &files {
        for (what, needle) in [
            ("a text value", text.as_bytes()),
            ("a second text value", second.as_bytes()),
            ("a binary value", &binary[..]),
            ("the PIN", PIN.as_bytes()),
            ("the recovery code", code.as_bytes()),
            ("a KMS plaintext", kms_plain.as_bytes()),
        ] {
            assert!(
                !contains(bytes, needle),
                "{what} is in {} in plaintext",
                path.display()
            );
        }
        // Nor the value upper-cased or without its first character (a shifted copy).
        assert!(!contains(bytes, text.to_uppercase().as_bytes()));
        assert!(!contains(bytes, &text.as_bytes()[1..]));
    }
    drop(observer);
}

#[test]
fn force_deleted_ciphertext_is_erased_from_the_file() {
    let env = Env::new();
    env.init();
    env.create("erase/me", &random_bytes(2000));
    env.put("erase/me", &random_bytes(2000));
    env.create("erase/keep", b"keep-this-value");
    let (cts, deks): (Vec<Vec<u8>>, Vec<Vec<u8>>) = {
        let db = env.db();
        let mut stmt = db
            .prepare(
                "SELECT v.ciphertext, v.wrapped_dek FROM secret_versions v
                 JOIN secrets s ON s.id = v.secret_id WHERE s.name = 'erase/me'",
            )
            .unwrap();
        let rows: Vec<(Vec<u8>, Vec<u8>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows.into_iter().unzip()
    };
    assert_eq!(cts.len(), 2);
    // Positive control: before the deletion, the search finds them.
    let before: Vec<u8> = env.raw_files().into_iter().flat_map(|(_, b)| b).collect();
    for ct in &cts {
        assert!(
            contains(&before, &ct[..64]),
            "the search cannot find a live ciphertext"
        );
    }
    env.coffer(&[
        "secret",
        "delete",
        "erase/me",
        "--force-delete-without-recovery",
    ])
    .ok();
    for (path, bytes) in env.raw_files() {
        for ct in &cts {
            assert!(
                !contains(&bytes, &ct[..64]),
                "a deleted ciphertext is still in {}",
                path.display()
            );
        }
        for dek in &deks {
            assert!(
                !contains(&bytes, dek),
                "a destroyed data key is still in {}",
                path.display()
            );
        }
    }
    assert_eq!(env.get("erase/keep", &[]), b"keep-this-value");
}

/// The harness already checks every failing command's output for the PIN and for every
/// registered value; this test makes sure many kinds of failure carry them.
#[test]
fn failing_commands_never_echo_the_pin_or_the_value() {
    let env = Env::new();
    env.init();
    let value = format!("v-{}", random_hex(46));
    env.sensitive(&value);
    let token = random_hex(16);
    env.coffer_stdin(
        &["secret", "create", "echo/secret", "--client-token", &token],
        value.as_bytes(),
    )
    .ok();
    let other = format!("o-{}", random_hex(46));
    env.sensitive(&other);

    let mut failures = vec![
        env.coffer_stdin(&["secret", "put", "echo/missing"], value.as_bytes()),
        env.coffer_stdin(&["secret", "create", "bad name"], value.as_bytes()),
        env.coffer_stdin(&["secret", "create", "echo/secret"], value.as_bytes()),
        env.coffer_stdin(
            &["secret", "create", "echo/secret", "--client-token", &token],
            other.as_bytes(),
        ),
        env.coffer_stdin(
            &["secret", "put", "echo/secret", "--client-token", &token],
            other.as_bytes(),
        ),
    ];
    let mut huge = value.clone().into_bytes();
    huge.resize(70_000, b'x');
    failures.push(env.coffer_stdin(&["secret", "put", "echo/secret"], &huge));
    failures.push(env.coffer_with_pin("wrong-pin-Wq2", &["secret", "get", "echo/secret"]));
    let value_file = env.file("value-as-pin", value.as_bytes());
    failures.push(
        env.cmd(["secret", "get", "echo/secret"])
            .var("COFFER_PIN_FILE", &value_file)
            .run(),
    );
    let kms_plain = format!("p-{}", random_hex(46));
    env.sensitive(&kms_plain);
    env.coffer(&["key", "create", "--alias", "alias/echo"]).ok();
    let blob = env
        .cmd(["kms", "encrypt", "--key", "alias/echo", "--context", "a=b"])
        .stdin(kms_plain.clone())
        .run()
        .ok()
        .text();
    failures.push(env.cmd(["kms", "decrypt"]).stdin(blob).run());
    env.coffer(&["secret", "delete", "echo/secret"]).ok();
    failures.push(env.coffer_stdin(&["secret", "put", "echo/secret"], other.as_bytes()));
    failures.push(env.coffer(&["secret", "get", "echo/secret"]));

    for run in &failures {
        assert_ne!(run.code(), exit::OK, "{run}");
        for secret in [value.as_str(), other.as_str(), kms_plain.as_str(), PIN] {
            assert!(!run.stderr.contains(secret), "{run}");
            assert!(!contains(&run.stdout, secret.as_bytes()), "{run}");
        }
        // One sentence on stderr, prefixed, nothing on stdout.
        assert!(
            run.stderr.starts_with("coffer: ") || run.stderr.starts_with("error: "),
            "{run}"
        );
        assert!(run.stdout.is_empty(), "{run}");
    }
}

#[test]
fn vault_directory_and_files_are_private() {
    let env = Env::new();
    // A permissive umask must not matter.
    env.cmd(["init"]).umask(0o000).run().ok();
    let dir = env.vault.parent().unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir), 0o700, "vault directory");
    assert_eq!(mode(&env.vault), 0o600, "vault file");
    // The WAL and shared-memory files, while they exist, too.
    let observer = env.db();
    let _: i64 = observer
        .query_row("SELECT count(*) FROM secrets", [], |r| r.get(0))
        .unwrap();
    env.cmd(["secret", "create", "private"])
        .umask(0o000)
        .stdin("private-value")
        .run()
        .ok();
    let files = env.raw_files();
    assert!(
        files.len() >= 2,
        "no WAL to check: {:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (path, _) in &files {
        assert_eq!(mode(path), 0o600, "{}", path.display());
    }
    drop(observer);
}

#[test]
fn secrets_cannot_be_passed_as_arguments() {
    let env = Env::new();
    env.init();
    for args in [
        vec!["secret", "create", "arg", "--value", "x-value-x"],
        vec!["secret", "create", "arg", "--secret-string", "x-value-x"],
        vec!["secret", "put", "arg", "--value", "x-value-x"],
        vec!["secret", "get", "arg", "--pin", "1234"],
        vec!["init", "--pin", "1234"],
        vec!["recover", "--recovery-code", "AAAA"],
    ] {
        let run = env.coffer(&args);
        assert_eq!(run.code(), exit::USAGE, "{run}");
    }
    env.coffer(&["secret", "describe", "arg"])
        .fails(exit::NOT_FOUND, "arg");
}
