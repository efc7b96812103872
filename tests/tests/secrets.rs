//! Secrets, versions and staging labels through the real binary: values round-trip byte for
//! byte, CURRENT/PREVIOUS move as in Secrets Manager, limits and idempotency hold.

use coffer_system_tests::{exit, random_bytes, random_hex, version_id_of, Env};

#[test]
fn create_get_put_moves_current_and_previous() {
    let env = Env::new();
    env.init();
    let v1 = env.create("db/password", b"first-value");
    assert_eq!(env.get("db/password", &[]), b"first-value");
    assert_eq!(env.labels_of("db/password", &v1), ["CURRENT"]);

    let v2 = env.put("db/password", b"second-value");
    assert_ne!(v1, v2);
    assert_eq!(env.get("db/password", &[]), b"second-value");
    assert_eq!(
        env.get("db/password", &["--label", "PREVIOUS"]),
        b"first-value"
    );
    assert_eq!(
        env.get("db/password", &["--label", "CURRENT"]),
        b"second-value"
    );
    assert_eq!(env.labels_of("db/password", &v1), ["PREVIOUS"]);
    assert_eq!(env.labels_of("db/password", &v2), ["CURRENT"]);

    let v3 = env.put("db/password", b"third-value");
    assert_eq!(env.get("db/password", &[]), b"third-value");
    assert_eq!(
        env.get("db/password", &["--label", "PREVIOUS"]),
        b"second-value"
    );
    // The oldest version lost its label but is still there, by id.
    assert_eq!(env.labels_of("db/password", &v1), Vec::<String>::new());
    assert_eq!(env.labels_of("db/password", &v2), ["PREVIOUS"]);
    assert_eq!(env.labels_of("db/password", &v3), ["CURRENT"]);
    assert_eq!(
        env.get("db/password", &["--version-id", &v1]),
        b"first-value"
    );
    let versions = env.versions("db/password");
    let ids: Vec<&str> = versions
        .iter()
        .map(|v| v["version_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [v3.as_str(), v2.as_str(), v1.as_str()], "newest first");

    // JSON get names the version and its labels.
    let json = env
        .coffer(&["secret", "get", "db/password", "--output", "json"])
        .ok()
        .json();
    assert_eq!(json["value"], "third-value");
    assert_eq!(json["version_id"], v3.as_str());
    assert_eq!(json["labels"], serde_json::json!(["CURRENT"]));

    // Unknown things are "not found", with advice.
    env.coffer(&["secret", "get", "db/nope"])
        .fails(exit::NOT_FOUND, "coffer secret list");
    env.coffer(&["secret", "get", "db/password", "--label", "NOPE"])
        .fails(exit::NOT_FOUND, "NOPE");
    let missing = "00000000-0000-4000-8000-000000000000";
    env.coffer(&["secret", "get", "db/password", "--version-id", missing])
        .fails(exit::NOT_FOUND, missing);
    env.coffer(&["secret", "get", "db/password", "--version-id", "not-a-uuid"])
        .fails(exit::USAGE, "not a version id");
    // Creating it again is a conflict that points at `put`.
    env.coffer_stdin(&["secret", "create", "db/password"], b"again-value")
        .fails(exit::CONFLICT, "secret put");
    assert_eq!(env.get("db/password", &[]), b"third-value");
}

#[test]
fn custom_labels_and_update_version_stage() {
    let env = Env::new();
    env.init();
    let v1 = env.create("api", b"value-one");
    let v2 = env.put("api", b"value-two");

    // A put with a custom label leaves CURRENT where it was.
    let staged = env
        .coffer_stdin(
            &[
                "secret",
                "put",
                "api",
                "--label",
                "STAGING",
                "--value-file",
                "-",
                "-o",
                "json",
            ],
            b"value-three",
        )
        .ok();
    let v3 = version_id_of(&staged);
    assert_eq!(staged.json()["labels"], serde_json::json!(["STAGING"]));
    assert_eq!(env.get("api", &[]), b"value-two");
    assert_eq!(env.get("api", &["--label", "STAGING"]), b"value-three");
    assert_eq!(env.labels_of("api", &v2), ["CURRENT"]);
    assert_eq!(env.labels_of("api", &v1), ["PREVIOUS"]);

    // Moving a label that sits on another version needs --remove-from naming that version.
    env.coffer(&[
        "secret",
        "update-version-stage",
        "api",
        "--label",
        "STAGING",
        "--move-to",
        &v1,
    ])
    .fails_all(exit::CONFLICT, &["--remove-from", &v3]);
    assert_eq!(env.get("api", &["--label", "STAGING"]), b"value-three");
    // Naming the wrong version to remove it from is a conflict too.
    env.coffer(&[
        "secret",
        "update-version-stage",
        "api",
        "--label",
        "STAGING",
        "--move-to",
        &v1,
        "--remove-from",
        &v2,
    ])
    .fails(exit::CONFLICT, "STAGING");
    env.coffer(&[
        "secret",
        "update-version-stage",
        "api",
        "--label",
        "STAGING",
        "--move-to",
        &v1,
        "--remove-from",
        &v3,
    ])
    .ok();
    assert_eq!(env.get("api", &["--label", "STAGING"]), b"value-one");
    assert_eq!(env.labels_of("api", &v1), ["PREVIOUS", "STAGING"]);
    assert_eq!(env.labels_of("api", &v3), Vec::<String>::new());

    // A label that is on no version yet moves without --remove-from.
    env.coffer(&[
        "secret",
        "update-version-stage",
        "api",
        "--label",
        "BLUE",
        "--move-to",
        &v3,
    ])
    .ok();
    assert_eq!(env.get("api", &["--label", "BLUE"]), b"value-three");

    // Removing a label: only --remove-from.
    env.coffer(&[
        "secret",
        "update-version-stage",
        "api",
        "--label",
        "BLUE",
        "--remove-from",
        &v3,
    ])
    .ok();
    env.coffer(&["secret", "get", "api", "--label", "BLUE"])
        .fails(exit::NOT_FOUND, "BLUE");

    // CURRENT can be moved (PREVIOUS follows the version that was current) but not removed.
    env.coffer(&[
        "secret",
        "update-version-stage",
        "api",
        "--label",
        "CURRENT",
        "--remove-from",
        &v2,
    ])
    .fails(exit::CONFLICT, "CURRENT");
    assert_eq!(env.get("api", &[]), b"value-two");
    env.coffer(&[
        "secret",
        "update-version-stage",
        "api",
        "--label",
        "CURRENT",
        "--move-to",
        &v3,
        "--remove-from",
        &v2,
    ])
    .ok();
    assert_eq!(env.get("api", &[]), b"value-three");
    assert_eq!(env.get("api", &["--label", "PREVIOUS"]), b"value-two");
    assert_eq!(env.labels_of("api", &v3), ["CURRENT"]);
    assert_eq!(env.labels_of("api", &v2), ["PREVIOUS"]);
    assert_eq!(env.labels_of("api", &v1), ["STAGING"]);

    // Neither --move-to nor --remove-from: bad input.
    env.coffer(&[
        "secret",
        "update-version-stage",
        "api",
        "--label",
        "STAGING",
    ])
    .fails(exit::USAGE, "version");
}

#[test]
fn binary_values_round_trip_byte_exact() {
    let env = Env::new();
    env.init();
    // Every byte value, invalid UTF-8, NULs, and a trailing newline.
    let mut binary: Vec<u8> = (0..=255u8).collect();
    binary.extend_from_slice(&[0xff, 0xfe, 0x00, 0x00, 0xc3, 0x28, b'\n']);
    binary.extend(random_bytes(3000));
    env.create("bin/file", &binary);
    assert_eq!(env.get("bin/file", &[]), binary);

    // The same through stdin, as a new version.
    let other = random_bytes(4096);
    env.put("bin/file", &other);
    assert_eq!(env.get("bin/file", &[]), other);
    assert_eq!(env.get("bin/file", &["--label", "PREVIOUS"]), binary);

    // JSON output carries binary values as base64.
    let json = env
        .coffer(&["secret", "get", "bin/file", "--output", "json"])
        .ok()
        .json();
    assert!(json.get("value").is_none(), "{json:#}");
    let decoded =
        coffer_system_tests::base64_decode(json["value_base64"].as_str().expect("value_base64"))
            .expect("valid base64");
    assert_eq!(decoded, other);

    // Text keeps its exact bytes too: leading/trailing whitespace, CRLF, no extra newline.
    let text = b"  spaced \r\n multi-line\tvalue \xe2\x9c\x93\n\n".to_vec();
    env.create("text/exact", &text);
    assert_eq!(env.get("text/exact", &[]), text);
    let no_newline = b"no-newline-at-end".to_vec();
    env.put("text/exact", &no_newline);
    assert_eq!(env.get("text/exact", &[]), no_newline);

    // batch-get returns both kinds, text as text and binary as base64.
    let batch = env
        .coffer(&[
            "secret",
            "batch-get",
            "text/exact",
            "bin/file",
            "missing/one",
        ])
        .ok()
        .json();
    let values = batch["secret_values"].as_array().expect("secret_values");
    assert_eq!(values.len(), 2, "{batch:#}");
    let text_entry = values.iter().find(|v| v["name"] == "text/exact").unwrap();
    assert_eq!(text_entry["value"], "no-newline-at-end");
    let bin_entry = values.iter().find(|v| v["name"] == "bin/file").unwrap();
    assert_eq!(
        coffer_system_tests::base64_decode(bin_entry["value_base64"].as_str().unwrap()).unwrap(),
        other
    );
    let errors = batch["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{batch:#}");
    assert_eq!(errors[0]["name"], "missing/one");
}

#[test]
fn value_size_limit_is_64_kib() {
    let env = Env::new();
    env.init();
    let exact: Vec<u8> = (0..65536u32).map(|i| b'a' + (i % 26) as u8).collect();
    env.create("big/exact-file", &exact);
    assert_eq!(env.get("big/exact-file", &[]), exact);
    env.coffer_stdin(&["secret", "create", "big/exact-stdin"], &exact)
        .ok();
    assert_eq!(env.get("big/exact-stdin", &[]), exact);

    let mut over = exact.clone();
    over.push(b'!');
    let file = env.file("over", &over);
    env.cmd(["secret", "create", "big/over-file", "--value-file"])
        .arg(&file)
        .run()
        .fails_all(exit::USAGE, &["limit", "65537"]);
    env.coffer_stdin(&["secret", "create", "big/over-stdin"], &over)
        .fails(exit::USAGE, "limit");
    env.coffer_stdin(&["secret", "put", "big/exact-file"], &over)
        .fails(exit::USAGE, "limit");
    // Nothing was created or added.
    env.coffer(&["secret", "describe", "big/over-file"])
        .fails(exit::NOT_FOUND, "big/over-file");
    env.coffer(&["secret", "describe", "big/over-stdin"])
        .fails(exit::NOT_FOUND, "big/over-stdin");
    assert_eq!(env.versions("big/exact-file").len(), 1);
    assert_eq!(env.get("big/exact-file", &[]), exact);
}

#[test]
fn empty_value_is_rejected() {
    let env = Env::new();
    env.init();
    let empty = env.file("empty", b"");
    env.cmd(["secret", "create", "empty/file", "--value-file"])
        .arg(&empty)
        .run()
        .fails(exit::USAGE, "empty");
    env.coffer_stdin(&["secret", "create", "empty/stdin"], b"")
        .fails(exit::USAGE, "empty");
    env.coffer(&["secret", "describe", "empty/file"])
        .fails(exit::NOT_FOUND, "empty/file");
    env.coffer(&["secret", "describe", "empty/stdin"])
        .fails(exit::NOT_FOUND, "empty/stdin");

    // A secret may be created without a value, but put still refuses an empty one.
    let created = env
        .coffer(&[
            "secret",
            "create",
            "empty/later",
            "--no-value",
            "-o",
            "json",
        ])
        .ok();
    assert_eq!(
        created.json()["version_id"],
        "00000000-0000-0000-0000-000000000000"
    );
    env.coffer(&["secret", "get", "empty/later"])
        .fails(exit::NOT_FOUND, "CURRENT");
    env.coffer_stdin(&["secret", "put", "empty/later"], b"")
        .fails(exit::USAGE, "empty");
    assert!(env.versions("empty/later").is_empty());
    env.put("empty/later", b"finally-a-value");
    assert_eq!(env.get("empty/later", &[]), b"finally-a-value");
}

#[test]
fn idempotent_put_with_client_token() {
    let env = Env::new();
    env.init();
    env.create("idem", b"original-value");
    let token = format!("tok-{}", random_hex(16));
    let put = |value: &[u8]| {
        env.coffer_stdin(
            &[
                "secret",
                "put",
                "idem",
                "--client-token",
                &token,
                "--value-file",
                "-",
                "-o",
                "json",
            ],
            value,
        )
    };
    let first = put(b"retried-value").ok();
    assert_eq!(first.json()["created"], true);
    let version = version_id_of(&first);
    assert_eq!(env.versions("idem").len(), 2);

    // The retry answers with the same version and stores nothing new.
    let retry = put(b"retried-value").ok();
    assert_eq!(retry.json()["created"], false, "{retry}");
    assert_eq!(version_id_of(&retry), version);
    assert_eq!(env.versions("idem").len(), 2);
    assert_eq!(env.get("idem", &[]), b"retried-value");
    assert_eq!(env.get("idem", &["--label", "PREVIOUS"]), b"original-value");

    // The same token with another value is a conflict, and changes nothing.
    env.sensitive(b"a-different-value");
    put(b"a-different-value").fails(exit::CONFLICT, "token");
    assert_eq!(env.versions("idem").len(), 2);
    assert_eq!(env.get("idem", &[]), b"retried-value");

    // A binary value with the same bytes as text is not "the same value"... but the same
    // bytes are: retrying a binary put is idempotent too.
    let bin = random_bytes(64);
    let bin_token = format!("bin-{}", random_hex(8));
    let put_bin = || {
        env.coffer_stdin(
            &[
                "secret",
                "put",
                "idem",
                "--client-token",
                &bin_token,
                "--value-file",
                "-",
                "-o",
                "json",
            ],
            &bin,
        )
    };
    let a = put_bin().ok();
    let b = put_bin().ok();
    assert_eq!(version_id_of(&a), version_id_of(&b));
    assert_eq!(env.versions("idem").len(), 3);

    // Tokens are validated.
    env.coffer_stdin(
        &["secret", "put", "idem", "--client-token", "has space"],
        b"x-value-x",
    )
    .fails(exit::USAGE, "token");
}

#[test]
fn idempotent_create_with_client_token() {
    let env = Env::new();
    env.init();
    let token = random_hex(32);
    let create = |value: &[u8]| {
        env.coffer_stdin(
            &[
                "secret",
                "create",
                "made-once",
                "--client-token",
                &token,
                "--value-file",
                "-",
                "-o",
                "json",
            ],
            value,
        )
    };
    let first = create(b"created-value").ok();
    // A retry (say the first answer was lost) succeeds with the same version.
    let retry = create(b"created-value").ok();
    assert_eq!(version_id_of(&first), version_id_of(&retry));
    assert_eq!(retry.json()["created"], false);
    assert_eq!(env.versions("made-once").len(), 1);
    // The same token and another value is not a retry.
    create(b"other-created-value").fails(exit::CONFLICT, "token");
    assert_eq!(env.get("made-once", &[]), b"created-value");
}

#[test]
fn list_filters_and_pages() {
    let env = Env::new();
    env.init();
    let mut expected = Vec::new();
    for i in 0..25 {
        let name = match i % 3 {
            0 => format!("app/svc-{i:02}"),
            1 => format!("db/node-{i:02}"),
            _ => format!("zz/Misc_{i:02}"),
        };
        let env_tag = if i % 2 == 0 { "env=prod" } else { "env=dev" };
        let mut args = vec![
            "secret".to_owned(),
            "create".to_owned(),
            name.clone(),
            "--tag".to_owned(),
            env_tag.to_owned(),
            "--description".to_owned(),
            format!("Secret number {i} for the Payments team"),
        ];
        if i == 7 {
            args.extend(["--tag".to_owned(), "owner=alice".to_owned()]);
        }
        env.cmd(&args).stdin(format!("value-{i}")).run().ok();
        expected.push(name);
    }
    let created = expected.clone();
    expected.sort();

    // Page through by 10: every name exactly once, in name order.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let mut args = vec!["secret", "list", "--max-results", "10", "-o", "json"];
        if let Some(t) = token.as_deref() {
            args.extend(["--next-token", t]);
        }
        let page = env.coffer(&args).ok().json();
        let names = coffer_system_tests::names_of(&page);
        pages.push(names.len());
        seen.extend(names);
        match page["next_token"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
        assert!(pages.len() < 10, "paging does not end: {pages:?}");
    }
    assert_eq!(pages, [10, 10, 5]);
    assert_eq!(seen, expected);

    // --all fetches the same.
    assert_eq!(env.list_names(&["--max-results", "7"]), expected);

    // Paging sorted by change time (newest first) also returns everything exactly once.
    let by_changed = env.list_names(&["--sort", "changed", "--max-results", "4"]);
    let mut sorted = by_changed.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "every name exactly once: {by_changed:?}");
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();
    assert_eq!(by_changed, newest_first);

    // Filters.
    let app: Vec<String> = expected
        .iter()
        .filter(|n| n.starts_with("app/"))
        .cloned()
        .collect();
    assert_eq!(env.list_names(&["--prefix", "app/"]), app);
    assert_eq!(
        env.list_names(&["--prefix", "app/", "--max-results", "3"]),
        app
    );
    let prod = env.list_names(&["--tag", "env=prod"]);
    assert_eq!(prod.len(), 13);
    assert_eq!(env.list_names(&["--tag", "env"]).len(), 25);
    assert_eq!(env.list_names(&["--tag", "owner=alice"]), ["db/node-07"]);
    assert!(env.list_names(&["--tag", "owner=bob"]).is_empty());
    assert_eq!(
        env.list_names(&["--description-contains", "number 13 "]),
        ["db/node-13"]
    );
    // Search matches names, descriptions and tags, case-insensitively.
    assert_eq!(env.list_names(&["--search", "misc_"]).len(), 8);
    assert_eq!(env.list_names(&["--search", "ALICE"]), ["db/node-07"]);
    assert_eq!(env.list_names(&["--search", "payments"]).len(), 25);
    // LIKE wildcards in the search text are literal.
    assert!(env.list_names(&["--search", "%"]).is_empty());

    // A token that the vault did not hand out is bad input.
    env.coffer(&["secret", "list", "--next-token", "zz"])
        .fails(exit::USAGE, "token");
    env.coffer(&["secret", "list", "--max-results", "0"])
        .fails(exit::USAGE, "page size");
}

#[test]
fn tags_add_change_and_remove() {
    let env = Env::new();
    env.init();
    env.cmd([
        "secret",
        "create",
        "tagged",
        "--tag",
        "env=prod",
        "--tag",
        "team=core",
    ])
    .stdin("tag-value-1")
    .run()
    .ok();
    let tags = |env: &Env| env.describe("tagged")["tags"].clone();
    assert_eq!(
        tags(&env),
        serde_json::json!({"env": "prod", "team": "core"})
    );
    env.coffer(&["secret", "tag", "tagged", "env=dev", "owner=ops"])
        .ok();
    assert_eq!(
        tags(&env),
        serde_json::json!({"env": "dev", "owner": "ops", "team": "core"})
    );
    env.coffer(&["secret", "untag", "tagged", "team", "not-there"])
        .ok();
    assert_eq!(
        tags(&env),
        serde_json::json!({"env": "dev", "owner": "ops"})
    );
    assert_eq!(env.list_names(&["--tag", "env=dev"]), ["tagged"]);
    assert!(env.list_names(&["--tag", "team"]).is_empty());
    env.coffer(&["secret", "tag", "tagged", "novalue"])
        .fails(exit::USAGE, "KEY=VALUE");
    env.coffer(&["secret", "tag", "missing", "a=b"])
        .fails(exit::NOT_FOUND, "missing");
    // Tags never change the value.
    assert_eq!(env.get("tagged", &[]), b"tag-value-1");
}

#[test]
fn delete_with_recovery_window_then_restore() {
    let env = Env::new();
    env.init();
    env.create("doomed", b"doomed-value");
    env.create("bystander", b"bystander-value");
    let run = env
        .coffer(&[
            "secret",
            "delete",
            "doomed",
            "--recovery-window-in-days",
            "7",
        ])
        .ok();
    assert!(run.text().contains("restore"), "{run}");

    env.coffer(&["secret", "get", "doomed"]).fails_all(
        exit::CONFLICT,
        &["scheduled for deletion", "coffer secret restore doomed"],
    );
    env.coffer_stdin(&["secret", "put", "doomed"], b"new-doomed-value")
        .fails(exit::CONFLICT, "restore");
    env.coffer_stdin(&["secret", "create", "doomed"], b"new-doomed-value")
        .fails(exit::CONFLICT, "restore");
    env.coffer(&["secret", "delete", "doomed"])
        .fails(exit::CONFLICT, "scheduled");
    let description = env.describe("doomed");
    assert!(description["purge_at"].is_string(), "{description:#}");
    assert!(description["deleted_at"].is_string(), "{description:#}");

    assert_eq!(env.list_names(&[]), ["bystander"]);
    assert_eq!(env.list_names(&["--deleted-only"]), ["doomed"]);
    assert_eq!(
        env.list_names(&["--include-deleted"]),
        ["bystander", "doomed"]
    );

    env.coffer(&["secret", "restore", "doomed"]).ok();
    assert_eq!(env.get("doomed", &[]), b"doomed-value");
    assert!(env.describe("doomed")["purge_at"].is_null());
    assert_eq!(env.list_names(&[]), ["bystander", "doomed"]);
    env.coffer(&["secret", "restore", "doomed"])
        .fails(exit::CONFLICT, "not scheduled");
    env.coffer(&["secret", "restore", "never-was"])
        .fails(exit::NOT_FOUND, "never-was");

    // The default window is 30 days.
    env.coffer(&["secret", "delete", "bystander"]).ok();
    let purge = env.describe("bystander")["purge_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let deleted = env.describe("bystander")["deleted_at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(purge[..10], deleted[..10], "{deleted} -> {purge}");
}

#[test]
fn force_delete_is_final() {
    let env = Env::new();
    env.init();
    env.create("gone", b"gone-value-1");
    env.put("gone", b"gone-value-2");
    env.coffer(&[
        "secret",
        "delete",
        "gone",
        "--force-delete-without-recovery",
    ])
    .ok();
    env.coffer(&["secret", "get", "gone"])
        .fails(exit::NOT_FOUND, "gone");
    env.coffer(&["secret", "describe", "gone"])
        .fails(exit::NOT_FOUND, "gone");
    env.coffer(&["secret", "restore", "gone"])
        .fails(exit::NOT_FOUND, "gone");
    assert!(env.list_names(&["--include-deleted"]).is_empty());
    // Its rows are gone from the file, and the name can be used again.
    let rows: i64 = env
        .db()
        .query_row("SELECT count(*) FROM secret_versions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
    env.create("gone", b"reborn-value");
    assert_eq!(env.get("gone", &[]), b"reborn-value");
    assert_eq!(env.versions("gone").len(), 1);

    // A scheduled deletion can be forced too.
    env.coffer(&["secret", "delete", "gone"]).ok();
    env.coffer(&[
        "secret",
        "delete",
        "gone",
        "--force-delete-without-recovery",
    ])
    .ok();
    env.coffer(&["secret", "get", "gone"])
        .fails(exit::NOT_FOUND, "gone");
}

#[test]
fn recovery_window_must_be_7_to_30_days() {
    let env = Env::new();
    env.init();
    env.create("windowed", b"windowed-value");
    env.coffer(&[
        "secret",
        "delete",
        "windowed",
        "--recovery-window-in-days",
        "6",
    ])
    .fails_all(exit::USAGE, &["6 days", "7 to 30"]);
    env.coffer(&[
        "secret",
        "delete",
        "windowed",
        "--recovery-window-in-days",
        "31",
    ])
    .fails(exit::USAGE, "7 to 30");
    env.coffer(&[
        "secret",
        "delete",
        "windowed",
        "--recovery-window-in-days",
        "0",
    ])
    .fails(exit::USAGE, "7 to 30");
    // Nothing happened.
    assert_eq!(env.get("windowed", &[]), b"windowed-value");
    env.coffer(&[
        "secret",
        "delete",
        "windowed",
        "--recovery-window-in-days",
        "30",
    ])
    .ok();
    env.coffer(&["secret", "get", "windowed"])
        .fails(exit::CONFLICT, "restore");
}

#[test]
fn versions_beyond_100_unlabelled_are_pruned() {
    let env = Env::new();
    env.init();
    let mut ids = vec![env.create("rotating", b"value-000")];
    ids.push(env.put("rotating", b"value-001"));
    // Keep version 2 with a custom label; it must survive pruning.
    env.coffer(&[
        "secret",
        "update-version-stage",
        "rotating",
        "--label",
        "KEEP",
        "--move-to",
        &ids[1],
    ])
    .ok();
    for i in 2..105 {
        ids.push(env.put("rotating", format!("value-{i:03}").as_bytes()));
    }
    assert_eq!(ids.len(), 105);
    let versions = env.versions("rotating");
    let listed: Vec<&str> = versions
        .iter()
        .map(|v| v["version_id"].as_str().unwrap())
        .collect();
    // The newest 100 (ids[5..]) plus the labelled ids[1].
    let mut expected: Vec<&str> = ids[5..].iter().rev().map(String::as_str).collect();
    expected.push(&ids[1]);
    assert_eq!(listed.len(), 101, "{listed:?}");
    assert_eq!(listed, expected);
    for pruned in [&ids[0], &ids[2], &ids[3], &ids[4]] {
        env.coffer(&["secret", "get", "rotating", "--version-id", pruned])
            .fails(exit::NOT_FOUND, pruned);
    }
    assert_eq!(env.get("rotating", &["--label", "KEEP"]), b"value-001");
    assert_eq!(
        env.get("rotating", &["--version-id", &ids[5]]),
        b"value-005"
    );
    assert_eq!(env.get("rotating", &[]), b"value-104");
    assert_eq!(env.get("rotating", &["--label", "PREVIOUS"]), b"value-103");
    // Pruning removed the rows themselves.
    let rows: i64 = env
        .db()
        .query_row("SELECT count(*) FROM secret_versions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 101);
}

#[test]
fn invalid_names_are_bad_input() {
    let env = Env::new();
    env.init();
    env.coffer_stdin(&["secret", "create", "has space"], b"some-value-1")
        .fails(exit::USAGE, "secret name");
    env.coffer_stdin(&["secret", "create", "semi;colon"], b"some-value-1")
        .fails(exit::USAGE, "';'");
    let long = "a".repeat(513);
    env.coffer_stdin(&["secret", "create", &long], b"some-value-1")
        .fails(exit::USAGE, "512");
    let ok = "a".repeat(512);
    env.coffer_stdin(&["secret", "create", &ok], b"some-value-1")
        .ok();
    assert_eq!(env.get(&ok, &[]), b"some-value-1");
    env.coffer_stdin(&["secret", "create", "x", "--tag", "=v"], b"some-value-1")
        .fails(exit::USAGE, "KEY=VALUE");
}
