//! Keys (create, alias, rotate, enable/disable, deletion) and the KMS-style envelope
//! commands, through the real binary.

use coffer_system_tests::{base64_decode, base64_encode, exit, random_bytes, Env, Value};

/// `key create --alias ALIAS -o json`; returns the key id.
fn create_key(env: &Env, alias: &str) -> String {
    let run = env
        .coffer(&[
            "key",
            "create",
            "--alias",
            alias,
            "--description",
            "test key",
            "-o",
            "json",
        ])
        .ok();
    let json = run.json();
    assert_eq!(json["aliases"], serde_json::json!([alias]), "{run}");
    assert_eq!(json["state"], "enabled", "{run}");
    assert_eq!(json["is_default"], false, "{run}");
    json["id"].as_str().expect("key id").to_owned()
}

fn describe_key(env: &Env, key: &str) -> Value {
    env.coffer(&["key", "describe", key, "-o", "json"])
        .ok()
        .json()
}

#[test]
fn secret_under_aliased_key_survives_rotation() {
    let env = Env::new();
    env.init();
    let key = create_key(&env, "alias/team-db");
    env.cmd(["secret", "create", "team/db", "--key", "alias/team-db"])
        .stdin("rotated-value-1")
        .run()
        .ok();
    let description = env.describe("team/db");
    assert_eq!(description["key_id"], key.as_str());
    assert_eq!(
        description["key_aliases"],
        serde_json::json!(["alias/team-db"])
    );
    assert_eq!(description["versions"][0]["key_version"], 1);
    assert_eq!(description["versions"][0]["key_id"], key.as_str());

    let rotated = env
        .coffer(&["key", "rotate", "alias/team-db", "-o", "json"])
        .ok()
        .json();
    let numbers: Vec<u64> = rotated["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2]);
    assert_eq!(
        describe_key(&env, &key)["versions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Old data stays readable; new data is wrapped under version 2.
    assert_eq!(env.get("team/db", &[]), b"rotated-value-1");
    env.put("team/db", b"rotated-value-2");
    let versions = env.versions("team/db");
    assert_eq!(versions[0]["key_version"], 2, "{versions:#?}");
    assert_eq!(versions[1]["key_version"], 1, "{versions:#?}");
    assert_eq!(env.get("team/db", &[]), b"rotated-value-2");
    assert_eq!(
        env.get("team/db", &["--label", "PREVIOUS"]),
        b"rotated-value-1"
    );
    // Rotating by id works as well, and the key id resolves like the alias.
    env.coffer(&["key", "rotate", &key]).ok();
    env.put("team/db", b"rotated-value-3");
    assert_eq!(env.versions("team/db")[0]["key_version"], 3);
    assert_eq!(
        env.get(
            "team/db",
            &["--version-id", versions[1]["version_id"].as_str().unwrap()]
        ),
        b"rotated-value-1"
    );

    // The default key is untouched and still used for secrets without --key.
    env.create("plain", b"plain-value");
    let plain = env.describe("plain");
    assert_ne!(plain["key_id"], key.as_str());
    let keys = env.coffer(&["key", "list", "-o", "json"]).ok().json();
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let default = keys.iter().find(|k| k["is_default"] == true).unwrap();
    assert_eq!(default["id"], plain["key_id"]);

    // Unknown keys.
    env.cmd(["secret", "create", "orphan", "--key", "alias/nope"])
        .stdin("orphan-value")
        .run()
        .fails(exit::NOT_FOUND, "alias/nope");
    env.coffer(&["key", "rotate", "alias/nope"])
        .fails(exit::NOT_FOUND, "alias/nope");
}

#[test]
fn disabled_key_blocks_use_until_enabled() {
    let env = Env::new();
    env.init();
    let key = create_key(&env, "alias/switch");
    env.cmd(["secret", "create", "switched", "--key", "alias/switch"])
        .stdin("switched-value")
        .run()
        .ok();
    env.coffer(&["key", "disable", "alias/switch"]).ok();
    assert_eq!(describe_key(&env, &key)["state"], "disabled");

    env.coffer(&["secret", "get", "switched"])
        .fails_all(exit::CONFLICT, &["disabled", "coffer key enable"]);
    env.coffer_stdin(&["secret", "put", "switched"], b"switched-value-2")
        .fails(exit::CONFLICT, "disabled");
    env.cmd(["secret", "create", "another", "--key", "alias/switch"])
        .stdin("another-value")
        .run()
        .fails(exit::CONFLICT, "disabled");
    env.cmd(["kms", "encrypt", "--key", "alias/switch"])
        .stdin("plaintext")
        .run()
        .fails(exit::CONFLICT, "disabled");
    env.coffer(&["secret", "describe", "another"])
        .fails(exit::NOT_FOUND, "another");

    env.coffer(&["key", "enable", &key]).ok();
    assert_eq!(describe_key(&env, &key)["state"], "enabled");
    assert_eq!(env.get("switched", &[]), b"switched-value");
    env.put("switched", b"switched-value-2");
    assert_eq!(env.get("switched", &[]), b"switched-value-2");
}

#[test]
fn key_deletion_rules() {
    let env = Env::new();
    env.init();
    let used = create_key(&env, "alias/used");
    let unused = create_key(&env, "alias/unused");
    env.cmd(["secret", "create", "uses-key", "--key", "alias/used"])
        .stdin("uses-key-value")
        .run()
        .ok();

    // A key that protects data cannot be scheduled for deletion.
    env.coffer(&["key", "schedule-deletion", "alias/used"])
        .fails_all(exit::CONFLICT, &[&used, "1 secret version"]);
    assert_eq!(describe_key(&env, &used)["state"], "enabled");
    assert_eq!(env.get("uses-key", &[]), b"uses-key-value");

    // The default key can be neither disabled nor deleted.
    let keys = env.coffer(&["key", "list", "-o", "json"]).ok().json();
    let default = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["is_default"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.coffer(&["key", "disable", &default])
        .fails(exit::CONFLICT, "default key");
    env.coffer(&["key", "schedule-deletion", &default])
        .fails(exit::CONFLICT, "default key");

    // The window is 7-30 days.
    env.coffer(&[
        "key",
        "schedule-deletion",
        "alias/unused",
        "--pending-window-in-days",
        "6",
    ])
    .fails(exit::USAGE, "7 to 30");
    env.coffer(&[
        "key",
        "schedule-deletion",
        "alias/unused",
        "--pending-window-in-days",
        "7",
    ])
    .ok();
    let pending = describe_key(&env, &unused);
    assert_eq!(pending["state"], "pending_deletion");
    assert!(pending["deletion_at"].is_string(), "{pending:#}");
    // A key pending deletion cannot be used.
    env.cmd(["secret", "create", "late", "--key", "alias/unused"])
        .stdin("late-value")
        .run()
        .fails(exit::CONFLICT, "cancel-deletion");
    env.coffer(&["key", "cancel-deletion", "alias/unused"]).ok();
    // Cancelling leaves it disabled, as in KMS.
    assert_eq!(describe_key(&env, &unused)["state"], "disabled");
    env.coffer(&["key", "cancel-deletion", "alias/unused"])
        .fails(exit::USAGE, "not scheduled");
    env.coffer(&["key", "enable", "alias/unused"]).ok();
    env.cmd(["secret", "create", "late", "--key", "alias/unused"])
        .stdin("late-value")
        .run()
        .ok();
    assert_eq!(env.get("late", &[]), b"late-value");
}

#[test]
fn aliases_can_be_added_and_removed() {
    let env = Env::new();
    env.init();
    let key = create_key(&env, "alias/first");
    env.coffer(&["key", "create-alias", "alias/second", &key])
        .ok();
    let aliases = describe_key(&env, &key)["aliases"].clone();
    let mut aliases: Vec<&str> = aliases
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    aliases.sort();
    assert_eq!(aliases, ["alias/first", "alias/second"]);
    assert_eq!(describe_key(&env, "alias/second")["id"], key.as_str());

    let other = create_key(&env, "alias/other");
    env.coffer(&["key", "create-alias", "alias/second", &other])
        .fails_all(exit::CONFLICT, &["alias/second", &key]);
    env.coffer(&["key", "create-alias", "not-an-alias", &other])
        .fails(exit::USAGE, "alias");
    env.coffer(&["key", "delete-alias", "alias/second"]).ok();
    env.coffer(&["key", "describe", "alias/second"])
        .fails(exit::NOT_FOUND, "alias/second");
    env.coffer(&["key", "delete-alias", "alias/second"])
        .fails(exit::NOT_FOUND, "alias/second");
    env.coffer(&["key", "create-alias", "alias/second", &other])
        .ok();
    assert_eq!(describe_key(&env, "alias/second")["id"], other.as_str());
}

#[test]
fn kms_encrypt_decrypt_with_context() {
    let env = Env::new();
    env.init();
    let key = create_key(&env, "alias/app");
    let plaintext = random_bytes(1000);
    let input = env.file("plain.bin", &plaintext);
    let encrypted = env
        .cmd([
            "kms",
            "encrypt",
            "--key",
            "alias/app",
            "--context",
            "purpose=test",
            "--context",
            "tenant=42",
            "--plaintext-file",
        ])
        .arg(&input)
        .run()
        .ok()
        .text();
    let blob = base64_decode(&encrypted).expect("base64 ciphertext");
    assert!(!coffer_system_tests::contains(&blob, &plaintext[..32]));
    assert_eq!(&blob[..4], b"CFE1");

    // Same pairs in another order decrypt; the answer is the exact bytes.
    let decrypted = env
        .cmd([
            "kms",
            "decrypt",
            "--context",
            "tenant=42",
            "--context",
            "purpose=test",
        ])
        .stdin(encrypted.clone())
        .run()
        .ok();
    assert_eq!(decrypted.stdout, plaintext);

    // Any other context, or none, fails as "altered".
    for context in [
        vec!["--context", "tenant=43", "--context", "purpose=test"],
        vec!["--context", "tenant=42"],
        vec![],
        vec![
            "--context",
            "tenant=42",
            "--context",
            "purpose=test",
            "--context",
            "extra=1",
        ],
    ] {
        let mut args = vec!["kms", "decrypt"];
        args.extend(context);
        env.cmd(&args)
            .stdin(encrypted.clone())
            .run()
            .fails(exit::TAMPERED, "encryption context");
    }
    // A flipped byte anywhere after the header fails the same way.
    let mut altered = blob.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    env.cmd([
        "kms",
        "decrypt",
        "--context",
        "tenant=42",
        "--context",
        "purpose=test",
    ])
    .stdin(base64_encode(&altered))
    .run()
    .fails(exit::TAMPERED, "altered");
    env.cmd(["kms", "decrypt"])
        .stdin("this is not base64!")
        .run()
        .fails(exit::USAGE, "base64");

    // After rotation the old ciphertext still decrypts; new ones use version 2.
    env.coffer(&["key", "rotate", "alias/app"]).ok();
    let after = env
        .cmd([
            "kms",
            "decrypt",
            "--context",
            "tenant=42",
            "--context",
            "purpose=test",
        ])
        .stdin(encrypted.clone())
        .run()
        .ok();
    assert_eq!(after.stdout, plaintext);
    let newer = env
        .cmd(["kms", "encrypt", "--key", &key])
        .stdin(b"short".to_vec())
        .run()
        .ok()
        .text();
    let newer_blob = base64_decode(&newer).unwrap();
    assert_eq!(&newer_blob[20..24], &2u32.to_be_bytes());
    assert_eq!(&blob[20..24], &1u32.to_be_bytes());

    // Re-encrypt under another key and context.
    create_key(&env, "alias/other");
    let moved = env
        .cmd([
            "kms",
            "re-encrypt",
            "--destination-key",
            "alias/other",
            "--source-context",
            "tenant=42",
            "--source-context",
            "purpose=test",
            "--destination-context",
            "tenant=99",
        ])
        .stdin(encrypted.clone())
        .run()
        .ok()
        .text();
    let moved_plain = env
        .cmd(["kms", "decrypt", "--context", "tenant=99"])
        .stdin(moved.clone())
        .run()
        .ok();
    assert_eq!(moved_plain.stdout, plaintext);
    env.cmd([
        "kms",
        "decrypt",
        "--context",
        "tenant=42",
        "--context",
        "purpose=test",
    ])
    .stdin(moved)
    .run()
    .fails(exit::TAMPERED, "context");

    // Size limits: 1 to 4096 bytes.
    env.cmd(["kms", "encrypt", "--key", "alias/app"])
        .stdin(vec![7u8; 4096])
        .run()
        .ok();
    env.cmd(["kms", "encrypt", "--key", "alias/app"])
        .stdin(vec![7u8; 4097])
        .run()
        .fails(exit::USAGE, "4096");
    env.cmd(["kms", "encrypt", "--key", "alias/app"])
        .stdin(Vec::new())
        .run()
        .fails(exit::USAGE, "plaintext");
}

#[test]
fn kms_generate_data_key_fields() {
    let env = Env::new();
    env.init();
    let key = create_key(&env, "alias/dk");
    let json = env
        .coffer(&[
            "kms",
            "generate-data-key",
            "--key",
            "alias/dk",
            "--context",
            "app=x",
        ])
        .ok()
        .json();
    assert_eq!(json["key_id"], key.as_str(), "{json:#}");
    let plaintext = base64_decode(json["plaintext"].as_str().expect("plaintext")).unwrap();
    assert_eq!(plaintext.len(), 32);
    let blob = json["ciphertext_blob"].as_str().expect("ciphertext_blob");
    // The encrypted copy decrypts (with the context) to the same key.
    let opened = env
        .cmd(["kms", "decrypt", "--context", "app=x"])
        .stdin(blob)
        .run()
        .ok();
    assert_eq!(opened.stdout, plaintext);

    let short = env
        .coffer(&[
            "kms",
            "generate-data-key",
            "--key",
            &key,
            "--number-of-bytes",
            "16",
        ])
        .ok()
        .json();
    assert_eq!(
        base64_decode(short["plaintext"].as_str().unwrap())
            .unwrap()
            .len(),
        16
    );

    let without = env
        .coffer(&[
            "kms",
            "generate-data-key-without-plaintext",
            "--key",
            "alias/dk",
        ])
        .ok()
        .json();
    assert!(without.get("plaintext").is_none(), "{without:#}");
    assert_eq!(without["key_id"], key.as_str());
    let opened = env
        .cmd(["kms", "decrypt"])
        .stdin(without["ciphertext_blob"].as_str().unwrap())
        .run()
        .ok();
    assert_eq!(opened.stdout.len(), 32);
    assert_ne!(opened.stdout, plaintext);

    env.coffer(&[
        "kms",
        "generate-data-key",
        "--key",
        "alias/dk",
        "--number-of-bytes",
        "0",
    ])
    .fails(exit::USAGE, "1 to 1024");
    env.coffer(&["kms", "generate-data-key", "--key", "alias/none"])
        .fails(exit::NOT_FOUND, "alias/none");
}

#[test]
fn kms_generate_random_lengths() {
    let env = Env::new();
    // No vault needed.
    let mut seen = Vec::new();
    for n in [1usize, 32, 100, 1024] {
        let out = env
            .coffer(&[
                "kms",
                "generate-random",
                "--number-of-bytes",
                &n.to_string(),
            ])
            .ok()
            .text();
        let bytes = base64_decode(&out).expect("base64");
        assert_eq!(bytes.len(), n, "{out}");
        seen.push(bytes);
    }
    let again = base64_decode(
        &env.coffer(&["kms", "generate-random", "--number-of-bytes", "32"])
            .ok()
            .text(),
    )
    .unwrap();
    assert_ne!(again, seen[1], "two random draws are equal");
    assert_eq!(
        base64_decode(&env.coffer(&["kms", "generate-random"]).ok().text())
            .unwrap()
            .len(),
        32
    );
    for n in ["0", "1025"] {
        env.coffer(&["kms", "generate-random", "--number-of-bytes", n])
            .fails(exit::USAGE, "1 to 1024");
    }
    assert!(!env.vault.exists(), "generate-random touched the vault");
}

#[test]
fn random_password_options() {
    let env = Env::new();
    const PUNCT: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
    let password = |args: &[&str]| -> String {
        let mut full = vec!["secret", "random-password"];
        full.extend_from_slice(args);
        env.coffer(&full).ok().text()
    };
    let default = password(&[]);
    assert_eq!(default.chars().count(), 32, "{default:?}");
    assert!(default.chars().any(|c| c.is_ascii_lowercase()), "{default}");
    assert!(default.chars().any(|c| c.is_ascii_uppercase()), "{default}");
    assert!(default.chars().any(|c| c.is_ascii_digit()), "{default}");
    assert!(default.chars().any(|c| PUNCT.contains(c)), "{default}");
    assert!(!default.contains(' '));
    assert_ne!(default, password(&[]));

    let alnum = password(&["--length", "64", "--exclude-punctuation"]);
    assert_eq!(alnum.len(), 64);
    assert!(alnum.chars().all(|c| c.is_ascii_alphanumeric()), "{alnum}");

    let no_abc = password(&["--length", "200", "--exclude-characters", "abcABC012"]);
    assert!(!no_abc.chars().any(|c| "abcABC012".contains(c)), "{no_abc}");

    let only_punct = password(&[
        "--exclude-numbers",
        "--exclude-uppercase",
        "--exclude-lowercase",
    ]);
    assert!(
        only_punct.chars().all(|c| PUNCT.contains(c)),
        "{only_punct}"
    );

    let lower = password(&[
        "--length",
        "4",
        "--exclude-numbers",
        "--exclude-uppercase",
        "--exclude-punctuation",
    ]);
    assert!(lower.chars().all(|c| c.is_ascii_lowercase()) && lower.len() == 4);

    let spaced = password(&["--length", "100", "--include-space"]);
    assert!(spaced.contains(' '), "{spaced:?}");

    let json = env
        .coffer(&["secret", "random-password", "--length", "12", "-o", "json"])
        .ok()
        .json();
    assert_eq!(json["password"].as_str().unwrap().len(), 12);

    env.coffer(&["secret", "random-password", "--length", "0"])
        .fails(exit::USAGE, "length");
    env.coffer(&["secret", "random-password", "--length", "4097"])
        .fails(exit::USAGE, "length");
    env.coffer(&[
        "secret",
        "random-password",
        "--exclude-numbers",
        "--exclude-uppercase",
        "--exclude-lowercase",
        "--exclude-punctuation",
    ])
    .fails(exit::USAGE, "exclude every character");
    env.coffer(&["secret", "random-password", "--length", "2"])
        .fails(exit::USAGE, "password");
    assert!(!env.vault.exists(), "random-password touched the vault");

    // --generate stores a password made with the same options.
    env.init();
    env.coffer(&[
        "secret",
        "create",
        "generated",
        "--generate",
        "--length",
        "40",
        "--exclude-punctuation",
    ])
    .ok();
    let stored = String::from_utf8(env.get("generated", &[])).unwrap();
    assert_eq!(stored.len(), 40, "{stored:?}");
    assert!(
        stored.chars().all(|c| c.is_ascii_alphanumeric()),
        "{stored}"
    );
}

/// A newcomer's first `coffer key rotate` needs no key id: the default key is meant, and
/// `key list` shows it as alias/default.
#[test]
fn key_commands_default_to_the_default_key() {
    let env = Env::new();
    env.init();
    let listed = env.coffer(&["key", "list", "--output", "json"]).ok().json();
    let text = listed.to_string();
    assert!(text.contains("alias/default"), "{listed:#}");
    env.coffer(&["key", "rotate"]).ok();
    let described = env
        .coffer(&["key", "describe", "--output", "json"])
        .ok()
        .json();
    assert_eq!(
        described["versions"].as_array().map(Vec::len),
        Some(2),
        "{described:#}"
    );
    env.coffer(&["key", "rewrap"]).ok();
    env.coffer(&["key", "create-alias", "alias/default", "alias/default"])
        .fails(exit::USAGE, "default key");
}
