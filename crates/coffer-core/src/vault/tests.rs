//! Engine tests on a real swtpm and a real SQLite file. The CLI-level system tests in
//! `tests/` cover the same behaviours end to end; these cover what only the API shows.

use std::collections::BTreeMap;

use coffer_testkit::Swtpm;
use tempfile::TempDir;

use super::*;
use crate::model::{DeletedFilter, Deletion, ListQuery, SecretValue, SortBy, VersionSelector};
use crate::names::StagingLabel;
use crate::tpm::PcrBinding;

const PIN: &str = "test-pin-4321";

struct Fixture {
    swtpm: Swtpm,
    dir: TempDir,
    vault: Vault,
}

fn fixture() -> Fixture {
    let swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let created = Vault::init(
        &dir.path().join("v/vault.db"),
        &swtpm.tcti(),
        PIN,
        PcrBinding::default(),
    )
    .unwrap();
    Fixture {
        swtpm,
        dir,
        vault: created.vault,
    }
}

fn text(value: &SecretValue) -> String {
    String::from_utf8(value.as_bytes().to_vec()).unwrap()
}

fn create(vault: &mut Vault, name: &str, value: &str) {
    vault
        .create_secret(CreateSecret {
            name: name.into(),
            value: Some(SecretValue::text(value)),
            ..Default::default()
        })
        .unwrap();
}

#[test]
fn put_moves_current_and_previous() {
    let mut f = fixture();
    create(&mut f.vault, "app/token", "one");
    let two = f
        .vault
        .put_secret_value("app/token", PutValue::new(SecretValue::text("two")))
        .unwrap();
    let three = f
        .vault
        .put_secret_value("app/token", PutValue::new(SecretValue::text("three")))
        .unwrap();
    let current = f
        .vault
        .get_secret_value("app/token", &VersionSelector::default())
        .unwrap();
    assert_eq!(text(&current.value), "three");
    assert_eq!(current.version_id, three.version_id);
    let previous = f
        .vault
        .get_secret_value(
            "app/token",
            &VersionSelector::Label(StagingLabel::previous()),
        )
        .unwrap();
    assert_eq!(previous.version_id, two.version_id);
    assert_eq!(text(&previous.value), "two");
    // Exactly one version carries each label.
    let versions = f.vault.list_secret_versions("app/token").unwrap();
    assert_eq!(versions.len(), 3);
    let labelled: Vec<usize> = versions.iter().map(|v| v.labels.len()).collect();
    assert_eq!(labelled.iter().sum::<usize>(), 2);
}

#[test]
fn unlabelled_versions_beyond_the_newest_hundred_are_pruned() {
    let mut f = fixture();
    create(&mut f.vault, "churn", "v0");
    let first = f.vault.describe_secret("churn").unwrap().versions[0].version_id;
    f.vault
        .update_version_stage("churn", "KEEP", Some(first), None)
        .unwrap();
    for i in 1..=110 {
        f.vault
            .put_secret_value("churn", PutValue::new(SecretValue::text(format!("v{i}"))))
            .unwrap();
    }
    let versions = f.vault.list_secret_versions("churn").unwrap();
    assert_eq!(
        versions.len(),
        101,
        "100 newest plus the labelled first one"
    );
    assert!(versions.iter().any(|v| v.version_id == first));
    let kept = f
        .vault
        .get_secret_value("churn", &VersionSelector::Id(first))
        .unwrap();
    assert_eq!(text(&kept.value), "v0");
}

#[test]
fn import_is_all_or_nothing() {
    let mut f = fixture();
    create(&mut f.vault, "taken", "x");
    let requests = vec![
        CreateSecret {
            name: "fresh-1".into(),
            value: Some(SecretValue::text("a")),
            ..Default::default()
        },
        CreateSecret {
            name: "taken".into(),
            value: Some(SecretValue::text("b")),
            ..Default::default()
        },
    ];
    let err = f.vault.import_secrets(&requests).unwrap_err();
    assert!(matches!(err, Error::SecretExists { .. }), "{err}");
    assert!(matches!(
        f.vault
            .get_secret_value("fresh-1", &VersionSelector::default()),
        Err(Error::SecretNotFound { .. })
    ));
}

#[test]
fn paging_by_last_change_visits_every_secret_once() {
    let mut f = fixture();
    let requests: Vec<CreateSecret> = (0..37)
        .map(|i| CreateSecret {
            name: format!("s{i:02}"),
            tags: BTreeMap::from([("parity".to_owned(), (i % 2).to_string())]),
            value: Some(SecretValue::text("v")),
            ..Default::default()
        })
        .collect();
    f.vault.import_secrets(&requests).unwrap();
    // Touch a few so that change order differs from name order. Change times are in
    // milliseconds and a put on a fast disk takes less, so space them out: two in the
    // same millisecond would tie and come back in name order.
    for name in ["s05", "s30", "s11"] {
        std::thread::sleep(std::time::Duration::from_millis(3));
        f.vault
            .put_secret_value(name, PutValue::new(SecretValue::text("w")))
            .unwrap();
    }
    let mut query = ListQuery {
        sort: SortBy::ChangedDesc,
        limit: Some(8),
        ..Default::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = f.vault.list_secrets(&query).unwrap();
        seen.extend(page.items.iter().map(|s| s.name.to_string()));
        match page.next_token {
            Some(token) => query.next_token = Some(token),
            None => break,
        }
    }
    assert_eq!(seen.len(), 37);
    assert_eq!(&seen[..3], ["s11", "s30", "s05"]);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 37);

    let odd = f
        .vault
        .list_secrets(&ListQuery {
            tag: Some(("parity".into(), Some("1".into()))),
            limit: Some(1000),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(odd.items.len(), 18);
    let search = f
        .vault
        .list_secrets(&ListQuery {
            text: Some("S3".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(search.items.len(), 7, "case-insensitive match of s30..s36");
    assert!(matches!(
        f.vault.list_secrets(&ListQuery {
            next_token: Some("zz".into()),
            ..Default::default()
        }),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn deleted_secrets_are_listed_apart_and_can_be_restored() {
    let mut f = fixture();
    create(&mut f.vault, "old", "v");
    create(&mut f.vault, "live", "v");
    let purge_at = f
        .vault
        .delete_secret("old", Deletion::RecoveryWindow(7))
        .unwrap()
        .unwrap();
    let only = f
        .vault
        .list_secrets(&ListQuery {
            deleted: DeletedFilter::Only,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(only.items.len(), 1);
    assert_eq!(only.items[0].purge_at, Some(purge_at));
    let live = f.vault.list_secrets(&ListQuery::default()).unwrap();
    assert_eq!(live.items.len(), 1);
    assert!(matches!(
        f.vault
            .put_secret_value("old", PutValue::new(SecretValue::text("x"))),
        Err(Error::SecretDeleted { .. })
    ));
    f.vault.restore_secret("old").unwrap();
    assert_eq!(
        text(
            &f.vault
                .get_secret_value("old", &VersionSelector::default())
                .unwrap()
                .value
        ),
        "v"
    );
}

#[test]
fn reads_are_audited_even_when_batched() {
    let mut f = fixture();
    create(&mut f.vault, "watched", "v");
    for _ in 0..3 {
        f.vault
            .get_secret_value("watched", &VersionSelector::default())
            .unwrap();
    }
    let _ = f
        .vault
        .get_secret_value("missing", &VersionSelector::default());
    let path = f.vault.path().to_path_buf();
    drop(f.vault);
    let mut reopened = Vault::open(&path).unwrap();
    reopened.unlock(&f.swtpm.tcti(), PIN).unwrap();
    let entries = reopened.audit_list(None, None, 100).unwrap();
    let reads = entries
        .iter()
        .filter(|e| e.operation == "get_secret_value")
        .count();
    assert_eq!(reads, 4);
    assert!(entries
        .iter()
        .any(|e| e.secret_name.as_deref() == Some("missing") && e.result == "secret_not_found"));
    let report = reopened.audit_verify().unwrap();
    assert_eq!(report.pending, 0);
    assert!(reopened
        .describe_secret("watched")
        .unwrap()
        .last_accessed
        .is_some());
}

#[test]
fn a_batched_read_is_recorded_under_the_client_that_made_it() {
    let mut f = fixture();
    create(&mut f.vault, "shared/token", "v");
    let reader = Actor {
        uid: 1000,
        pid: 4242,
        process: "reader".into(),
    };
    let writer = Actor {
        uid: 1000,
        pid: 5353,
        process: "writer".into(),
    };
    // As the agent does: one vault, a different actor for each client's request.
    let own = f.vault.set_actor(reader);
    f.vault
        .get_secret_value("shared/token", &VersionSelector::default())
        .unwrap();
    f.vault.set_actor(writer);
    // The writer's write flushes the reader's queued read in the same transaction.
    create(&mut f.vault, "shared/other", "w");
    f.vault.set_actor(own);
    let entries = f.vault.audit_list(None, None, 100).unwrap();
    let read = entries
        .iter()
        .find(|e| e.operation == "get_secret_value")
        .unwrap();
    assert_eq!((read.pid, read.process.as_str()), (4242, "reader"));
    let write = entries
        .iter()
        .find(|e| e.secret_name.as_deref() == Some("shared/other"))
        .unwrap();
    assert_eq!((write.pid, write.process.as_str()), (5353, "writer"));
    assert_eq!(f.vault.audit_verify().unwrap().pending, 0);
}

#[test]
fn values_never_reach_the_file_in_plaintext_and_debug_is_redacted() {
    let mut f = fixture();
    let marker = "MARKER-7f3a9c1e5b2d4f6a8c0e";
    create(&mut f.vault, "plain-check", marker);
    f.vault
        .put_secret_value(
            "plain-check",
            PutValue::new(SecretValue::text(marker.repeat(2))),
        )
        .unwrap();
    let read = f
        .vault
        .get_secret_value("plain-check", &VersionSelector::default())
        .unwrap();
    assert!(!format!("{read:?}").contains("MARKER"));
    f.vault.lock().unwrap();
    for suffix in ["", "-wal"] {
        let mut file = f.vault.path().as_os_str().to_owned();
        file.push(suffix);
        if let Ok(bytes) = std::fs::read(&file) {
            assert!(
                !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
                "found in {file:?}"
            );
        }
    }
    let _ = &f.dir;
}

#[test]
fn locked_vault_refuses_everything() {
    let mut f = fixture();
    create(&mut f.vault, "x", "v");
    f.vault.lock().unwrap();
    assert!(matches!(
        f.vault.get_secret_value("x", &VersionSelector::default()),
        Err(Error::Locked)
    ));
    assert!(matches!(
        f.vault.list_secrets(&ListQuery::default()),
        Err(Error::Locked)
    ));
    assert!(matches!(
        f.vault
            .put_secret_value("x", PutValue::new(SecretValue::text("y"))),
        Err(Error::Locked)
    ));
    f.vault.unlock(&f.swtpm.tcti(), PIN).unwrap();
    assert_eq!(
        text(
            &f.vault
                .get_secret_value("x", &VersionSelector::default())
                .unwrap()
                .value
        ),
        "v"
    );
}

#[test]
fn key_rotation_keeps_old_versions_readable_and_new_ones_use_the_new_version() {
    let mut f = fixture();
    let key = f.vault.create_key("team key", Some("alias/team")).unwrap();
    f.vault
        .create_secret(CreateSecret {
            name: "team/db".into(),
            key: Some("alias/team".into()),
            value: Some(SecretValue::text("before")),
            ..Default::default()
        })
        .unwrap();
    let rotated = f.vault.rotate_key("alias/team").unwrap();
    assert_eq!(rotated.versions.len(), 2);
    f.vault
        .put_secret_value("team/db", PutValue::new(SecretValue::text("after")))
        .unwrap();
    let versions = f.vault.list_secret_versions("team/db").unwrap();
    assert_eq!(versions[0].key_version, 2);
    assert_eq!(versions[1].key_version, 1);
    assert_eq!(versions[0].key_id, key.id);
    // A fresh process (new keyring) must unseal both versions from the TPM.
    let path = f.vault.path().to_path_buf();
    drop(f.vault);
    let mut v = Vault::open(&path).unwrap();
    v.unlock(&f.swtpm.tcti(), PIN).unwrap();
    let default_id = v.list_keys().unwrap()[0].id.to_string();
    let prev = v
        .get_secret_value("team/db", &VersionSelector::Label(StagingLabel::previous()))
        .unwrap();
    assert_eq!(text(&prev.value), "before");
    assert!(matches!(
        v.disable_key(&default_id),
        Err(Error::DefaultKeyProtected)
    ));
    assert!(matches!(
        v.schedule_key_deletion("alias/team", 7),
        Err(Error::KeyInUse { .. })
    ));
}

#[test]
fn envelope_round_trip_is_bound_to_its_context() {
    let mut f = fixture();
    let default = f.vault.list_keys().unwrap()[0].id.to_string();
    let context = BTreeMap::from([("purpose".to_owned(), "backup".to_owned())]);
    let blob = f.vault.encrypt(&default, b"payload", &context).unwrap();
    let (plain, with) = f.vault.decrypt(&blob, &context).unwrap();
    assert_eq!(&plain[..], b"payload");
    assert_eq!(with.key_version, 1);
    assert!(matches!(
        f.vault.decrypt(&blob, &BTreeMap::new()),
        Err(Error::CiphertextInvalid)
    ));
    let data_key = f
        .vault
        .generate_data_key(&default, 32, &context, true)
        .unwrap();
    let (opened, _) = f.vault.decrypt(&data_key.ciphertext, &context).unwrap();
    assert_eq!(&opened[..], &data_key.plaintext.as_ref().unwrap()[..]);
    let moved = f
        .vault
        .re_encrypt(&blob, &context, &default, &BTreeMap::new())
        .unwrap();
    assert_eq!(
        &f.vault.decrypt(&moved, &BTreeMap::new()).unwrap().0[..],
        b"payload"
    );
    assert!(matches!(
        f.vault.encrypt(&default, &[0u8; 4097], &context),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn change_pin_reseals_every_key() {
    let mut f = fixture();
    f.vault.create_key("second", None).unwrap();
    create(&mut f.vault, "x", "v");
    f.vault.change_pin(PIN, "new-pin-9876").unwrap();
    let path = f.vault.path().to_path_buf();
    drop(f.vault);
    let mut v = Vault::open(&path).unwrap();
    assert!(matches!(
        v.unlock(&f.swtpm.tcti(), PIN),
        Err(Error::Tpm(crate::tpm::TpmError::WrongPin { .. }))
    ));
    v.unlock(&f.swtpm.tcti(), "new-pin-9876").unwrap();
    for key in v.list_keys().unwrap() {
        let id = key.id.to_string();
        v.encrypt(&id, b"check", &BTreeMap::new()).unwrap();
    }
}

/// Reopens the fixture's vault after `edit` changed its file as an attacker with write
/// access would (a plain SQLite connection, no Coffer code).
fn tamper(f: &mut Fixture, edit: &str) -> Vault {
    let path = f.vault.path().to_path_buf();
    f.vault.lock().unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(edit).unwrap();
    drop(raw);
    let mut vault = Vault::open(&path).unwrap();
    vault.unlock(&f.swtpm.tcti(), PIN).unwrap();
    vault
}

fn get(vault: &mut Vault, name: &str) -> Result<String> {
    vault
        .get_secret_value(name, &VersionSelector::default())
        .map(|read| text(&read.value))
}

#[test]
fn swapping_two_secrets_names_makes_both_reads_fail() {
    let mut f = fixture();
    create(&mut f.vault, "prod/db", "prod-password");
    create(&mut f.vault, "dev/db", "dev-password");
    let mut vault = tamper(
        &mut f,
        "UPDATE secrets SET name = 'tmp' WHERE name = 'prod/db';
         UPDATE secrets SET name = 'prod/db' WHERE name = 'dev/db';
         UPDATE secrets SET name = 'dev/db' WHERE name = 'tmp';",
    );
    for name in ["dev/db", "prod/db"] {
        match get(&mut vault, name) {
            Err(Error::SecretRowTampered { name: named }) => assert_eq!(named, name),
            other => panic!("{name}: expected an integrity error, got {other:?}"),
        }
    }
    // Writes refuse the altered rows too, rather than re-MACing them as they are.
    assert!(matches!(
        vault.put_secret_value("dev/db", PutValue::new(SecretValue::text("x"))),
        Err(Error::SecretRowTampered { .. })
    ));
    assert!(matches!(
        vault.describe_secret("dev/db"),
        Err(Error::SecretRowTampered { .. })
    ));
}

#[test]
fn moving_current_back_to_a_rotated_out_version_is_detected() {
    let mut f = fixture();
    create(&mut f.vault, "app/password", "old-password");
    f.vault
        .put_secret_value(
            "app/password",
            PutValue::new(SecretValue::text("new-password")),
        )
        .unwrap();
    let mut vault = tamper(
        &mut f,
        "UPDATE staging_labels SET version_id =
             (SELECT version_id FROM staging_labels WHERE label = 'PREVIOUS')
         WHERE label = 'CURRENT';",
    );
    assert!(matches!(
        get(&mut vault, "app/password"),
        Err(Error::SecretRowTampered { .. })
    ));
}

#[test]
fn restoring_a_deleted_secret_by_hand_is_detected() {
    let mut f = fixture();
    create(&mut f.vault, "gone", "value");
    f.vault
        .delete_secret("gone", Deletion::RecoveryWindow(7))
        .unwrap();
    let mut vault = tamper(
        &mut f,
        "UPDATE secrets SET deleted_at = NULL, purge_at = NULL;",
    );
    assert!(matches!(
        get(&mut vault, "gone"),
        Err(Error::SecretRowTampered { .. })
    ));
}

#[test]
fn pointing_a_secret_or_an_alias_at_another_key_is_detected() {
    let mut f = fixture();
    let team = f.vault.create_key("team", Some("alias/team")).unwrap();
    let other = f.vault.create_key("other", Some("alias/other")).unwrap();
    create(&mut f.vault, "s", "value");
    let mut vault = tamper(
        &mut f,
        &format!(
            "UPDATE key_aliases SET key_id = x'{}' WHERE alias = 'alias/team';
             UPDATE secrets SET key_id = x'{}' WHERE name = 's';",
            hex(other.id.as_bytes()),
            hex(team.id.as_bytes()),
        ),
    );
    assert!(matches!(
        vault.encrypt("alias/team", b"payload", &BTreeMap::new()),
        Err(Error::KeyRowTampered { .. })
    ));
    assert!(matches!(
        vault.put_secret_value("s", PutValue::new(SecretValue::text("next"))),
        Err(Error::SecretRowTampered { .. })
    ));
}

#[test]
fn flipping_the_default_key_is_detected() {
    let mut f = fixture();
    f.vault.create_key("second", None).unwrap();
    let mut vault = tamper(
        &mut f,
        "UPDATE keys SET is_default = 2 WHERE is_default = 1;
         UPDATE keys SET is_default = 1 WHERE is_default = 0;
         UPDATE keys SET is_default = 0 WHERE is_default = 2;",
    );
    let created = vault.create_secret(CreateSecret {
        name: "new".into(),
        value: Some(SecretValue::text("value")),
        ..Default::default()
    });
    assert!(
        matches!(created, Err(Error::KeyRowTampered { .. })),
        "{created:?}"
    );
}

#[test]
fn edited_key_protection_settings_are_refused() {
    for edit in [
        "UPDATE vault_meta SET value = zeroblob(32) WHERE name = 'recovery_public_key';",
        "UPDATE vault_meta SET value = CAST('' AS BLOB) WHERE name = 'pcr_binding';",
        "DELETE FROM vault_meta WHERE name = 'settings_mac';",
    ] {
        let mut f = fixture();
        let mut vault = tamper(&mut f, edit);
        let error = vault.create_key("next", None).err();
        assert!(
            matches!(error, Some(Error::SettingsTampered)),
            "{edit}: {error:?}"
        );
        assert!(matches!(
            vault.change_pin(PIN, "another-pin-1"),
            Err(Error::SettingsTampered)
        ));
    }
}

#[test]
fn blanked_row_macs_are_not_adopted_as_an_old_vault() {
    let mut f = fixture();
    create(&mut f.vault, "s", "value");
    let mut vault = tamper(&mut f, "UPDATE secrets SET mac = x'';");
    assert!(matches!(
        get(&mut vault, "s"),
        Err(Error::SecretRowTampered { .. })
    ));
}

#[test]
fn a_vault_from_before_row_macs_gets_them_at_its_first_unlock() {
    let mut f = fixture();
    create(&mut f.vault, "s", "value");
    // Make the file look as an older Coffer left it: no row MACs, a version 1 head.
    let legacy_head = {
        let keyring = f.vault.keyring.as_ref().unwrap();
        audit::legacy_head_for_tests(f.vault.store.conn(), keyring.audit_key())
    };
    let path = f.vault.path().to_path_buf();
    f.vault.lock().unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(
        "UPDATE secrets SET mac = x''; UPDATE keys SET mac = x'';
         DELETE FROM vault_meta WHERE name = 'settings_mac';",
    )
    .unwrap();
    raw.execute(
        "UPDATE vault_meta SET value = ?1 WHERE name = 'audit_head'",
        [&legacy_head],
    )
    .unwrap();
    drop(raw);
    let mut vault = Vault::open(&path).unwrap();
    vault.unlock(&f.swtpm.tcti(), PIN).unwrap();
    assert_eq!(get(&mut vault, "s").unwrap(), "value");
    vault.create_key("after-upgrade", None).unwrap();
    vault.audit_verify().unwrap();
    let upgrades = vault
        .audit_list(None, None, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.operation == "integrity_upgrade")
        .count();
    assert_eq!(upgrades, 1);
}

#[test]
fn change_pin_needs_the_current_pin() {
    let mut f = fixture();
    create(&mut f.vault, "s", "value");
    let wrong = f.vault.change_pin("not-the-pin-1", "attacker-pin-1");
    assert!(
        matches!(
            wrong,
            Err(Error::Tpm(crate::tpm::TpmError::WrongPin { .. }))
        ),
        "{wrong:?}"
    );
    let refused = f
        .vault
        .audit_list(None, None, 10)
        .unwrap()
        .into_iter()
        .any(|e| e.operation == "change_pin" && e.result == "wrong_pin");
    assert!(refused, "the refused change is audited");
    let path = f.vault.path().to_path_buf();
    drop(f.vault);
    let mut vault = Vault::open(&path).unwrap();
    assert!(vault.unlock(&f.swtpm.tcti(), "attacker-pin-1").is_err());
    vault.unlock(&f.swtpm.tcti(), PIN).unwrap();
    assert_eq!(get(&mut vault, "s").unwrap(), "value");
}

#[test]
fn an_emptied_audit_log_does_not_verify() {
    let mut f = fixture();
    create(&mut f.vault, "s", "value");
    for edit in [
        "DELETE FROM audit_log; DELETE FROM vault_meta WHERE name = 'audit_head';",
        "DELETE FROM audit_log;",
    ] {
        let mut vault = tamper(&mut f, edit);
        let verdict = vault.audit_verify();
        assert!(
            matches!(verdict, Err(Error::AuditTampered { .. })),
            "{edit}: {verdict:?}"
        );
        drop(vault);
        f = fixture();
        create(&mut f.vault, "s", "value");
    }
}

#[test]
fn rolling_the_log_back_on_its_own_is_detected() {
    let mut f = fixture();
    create(&mut f.vault, "s", "value");
    f.vault.flush_audit().unwrap();
    let (old_head, old_seq): (Vec<u8>, i64) = {
        let conn = f.vault.store.conn();
        let head = crate::store::meta::get(conn, crate::store::meta::AUDIT_HEAD)
            .unwrap()
            .unwrap();
        let seq = conn
            .query_row("SELECT max(seq) FROM audit_log", [], |r| r.get(0))
            .unwrap();
        (head, seq)
    };
    f.vault
        .put_secret_value("s", PutValue::new(SecretValue::text("newer")))
        .unwrap();
    // The log and its head go back to before the put; the data keeps it.
    let path = f.vault.path().to_path_buf();
    f.vault.lock().unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute("DELETE FROM audit_log WHERE seq > ?1", [old_seq])
        .unwrap();
    raw.execute(
        "UPDATE vault_meta SET value = ?1 WHERE name = 'audit_head'",
        [&old_head],
    )
    .unwrap();
    drop(raw);
    let mut vault = Vault::open(&path).unwrap();
    vault.unlock(&f.swtpm.tcti(), PIN).unwrap();
    match vault.audit_verify() {
        Err(Error::AuditTampered { reason, .. }) => {
            assert!(reason.contains("rolled back"), "{reason}")
        }
        other => panic!("expected a rollback to be reported, got {other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_default_key_answers_to_alias_default() {
    let mut f = fixture();
    let default = f.vault.describe_key("alias/default").unwrap();
    assert!(default.is_default);
    assert_eq!(default.aliases, vec!["alias/default".to_owned()]);
    let listed = f.vault.list_keys().unwrap();
    assert_eq!(listed[0].aliases, vec!["alias/default".to_owned()]);
    let rotated = f.vault.rotate_key("alias/default").unwrap();
    assert_eq!(rotated.id, default.id);
    assert_eq!(rotated.versions.len(), 2);
    let other = f.vault.create_key("other", None).unwrap();
    for refused in [
        f.vault.create_alias("alias/default", &other.id.to_string()),
        f.vault.create_key("x", Some("alias/default")).map(drop),
    ] {
        assert!(
            matches!(&refused, Err(Error::InvalidArgument { reason, .. }) if reason.contains("default key")),
            "{refused:?}"
        );
    }
}

#[test]
fn kms_encryption_stops_at_the_per_version_cap_until_the_key_rotates() {
    use super::nonce_budget;
    let mut f = fixture();
    let default = f.vault.list_keys().unwrap()[0].id;
    let key = default.to_string();
    let context = BTreeMap::new();
    // As if the version had already made all but two of its encryptions.
    nonce_budget::set_recorded(
        f.vault.store.conn(),
        default,
        1,
        nonce_budget::MAX_ENCRYPTIONS - 2,
    )
    .unwrap();
    f.vault.encrypt(&key, b"one", &context).unwrap();
    f.vault
        .generate_data_key(&key, 32, &context, false)
        .unwrap();
    let refused = f.vault.encrypt(&key, b"three", &context).unwrap_err();
    assert!(
        matches!(refused, Error::KeyVersionExhausted { version: 1, .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("coffer key rotate"));
    assert_eq!(
        nonce_budget::recorded(f.vault.store.conn(), default, 1).unwrap(),
        nonce_budget::MAX_ENCRYPTIONS
    );
    // A rotation starts a fresh version with a fresh budget.
    f.vault.rotate_key(&key).unwrap();
    let blob = f.vault.encrypt(&key, b"four", &context).unwrap();
    let (plain, with) = f.vault.decrypt(&blob, &context).unwrap();
    assert_eq!(&plain[..], b"four");
    assert_eq!(with.key_version, 2);
}

/// Locks the fixture's vault, fails `wrong` unlocks, edits the file as an attacker with
/// write access would, then unlocks with the right PIN and returns the verification.
fn fail_unlocks_then(f: &mut Fixture, wrong: usize, edit: &str) -> (Vault, AuditVerification) {
    let path = f.vault.path().to_path_buf();
    f.vault.lock().unwrap();
    for _ in 0..wrong {
        let mut v = Vault::open(&path).unwrap();
        assert!(matches!(
            v.unlock(&f.swtpm.tcti(), "wrong-pin-000"),
            Err(Error::Tpm(crate::tpm::TpmError::WrongPin { .. }))
        ));
    }
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(edit).unwrap();
    drop(raw);
    let mut vault = Vault::open(&path).unwrap();
    vault.unlock(&f.swtpm.tcti(), PIN).unwrap();
    let report = vault.audit_verify().unwrap();
    (vault, report)
}

#[test]
fn failed_unlocks_are_counted_by_the_tpm_and_chained() {
    let mut f = fixture();
    let (mut vault, report) = fail_unlocks_then(&mut f, 2, "");
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(report.pending, 0);
    let entries = vault.audit_list(None, None, 100).unwrap();
    let failed: Vec<&AuditEntry> = entries
        .iter()
        .filter(|e| e.operation == "unlock" && e.result == "wrong_pin")
        .collect();
    assert_eq!(failed.len(), 2);
    assert!(failed
        .iter()
        .all(|e| e.detail.starts_with("attempt=") && e.chained));
    let check = entries
        .iter()
        .find(|e| e.operation == "failed_unlock_check")
        .unwrap();
    assert_eq!(check.result, "ok");
    assert!(
        check.detail.contains("2 failed unlock(s) counted"),
        "{}",
        check.detail
    );
    // An unlock with nothing to account for writes nothing.
    let before = vault.audit_list(None, None, 100).unwrap().len();
    let path = vault.path().to_path_buf();
    drop(vault);
    let mut again = Vault::open(&path).unwrap();
    again.unlock(&f.swtpm.tcti(), PIN).unwrap();
    assert_eq!(again.audit_list(None, None, 100).unwrap().len(), before);
}

#[test]
fn deleting_failed_unlock_entries_is_found_at_the_next_unlock() {
    let mut f = fixture();
    let (_vault, report) = fail_unlocks_then(&mut f, 2, "DELETE FROM audit_log WHERE mac IS NULL;");
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    let detail = &report.findings[0].detail;
    assert!(
        detail.contains("2 failed unlock(s) the TPM counted have no entry"),
        "{detail}"
    );
}

#[test]
fn forged_failed_unlock_entries_are_found_at_the_next_unlock() {
    let mut f = fixture();
    let (_vault, report) = fail_unlocks_then(
        &mut f,
        1,
        "INSERT INTO audit_log (seq, at, uid, pid, process, operation, result, detail)
         SELECT MAX(seq) + 1, 0, 0, 1, 'forger', 'unlock', 'wrong_pin', 'attempt=99999'
         FROM audit_log;
         INSERT INTO audit_log (seq, at, uid, pid, process, operation, result, detail)
         SELECT MAX(seq) + 1, 0, 0, 1, 'forger', 'unlock', 'wrong_pin', ''
         FROM audit_log;",
    );
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    let detail = &report.findings[0].detail;
    assert!(detail.contains("1 failed unlock(s) counted"), "{detail}");
    assert!(detail.contains("did not count"), "{detail}");
    assert!(!detail.contains("have no entry"), "{detail}");
}

#[test]
fn removing_the_counter_record_is_found_at_the_next_unlock() {
    let mut f = fixture();
    let (_vault, report) = fail_unlocks_then(
        &mut f,
        1,
        "DELETE FROM audit_log WHERE mac IS NULL;
         DELETE FROM vault_meta WHERE name = 'failed_unlock_counter';",
    );
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    assert!(
        report.findings[0]
            .detail
            .contains("was removed from the file"),
        "{}",
        report.findings[0].detail
    );
}

const READ_ONLY_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;

#[test]
fn access_keys_keep_their_secret_sealed_and_disable_hides_them() {
    let mut f = fixture();
    let (key, secret) = f
        .vault
        .create_access_key("ci", Some(READ_ONLY_POLICY))
        .unwrap();
    assert!(
        key.id.starts_with("AKIA") && key.id.len() == 20,
        "{}",
        key.id
    );
    assert_eq!(secret.len(), 40);
    let auth = f.vault.access_key_auth(&key.id).unwrap().unwrap();
    assert_eq!(auth.secret.as_slice(), secret.as_bytes());
    assert_eq!(auth.policy.as_deref(), Some(READ_ONLY_POLICY));
    // The file holds no plaintext secret.
    let raw = std::fs::read(f.vault.path()).unwrap();
    let wal = std::fs::read(f.vault.path().with_extension("db-wal")).unwrap_or_default();
    for bytes in [&raw, &wal] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }
    f.vault.set_access_key_enabled("ci", false).unwrap();
    assert!(f.vault.access_key_auth(&key.id).unwrap().is_none());
    f.vault.set_access_key_enabled(&key.id, true).unwrap();
    assert!(f.vault.access_key_auth(&key.id).unwrap().is_some());
    f.vault.delete_access_key("ci").unwrap();
    assert!(f.vault.access_key_auth(&key.id).unwrap().is_none());
    assert!(matches!(
        f.vault.delete_access_key("ci"),
        Err(Error::AccessKeyNotFound { .. })
    ));
}

#[test]
fn access_key_input_is_checked_and_nothing_changes_on_refusal() {
    let mut f = fixture();
    let bad = [
        f.vault.create_access_key("", None).map(|_| ()),
        f.vault.create_access_key("has space", None).map(|_| ()),
        f.vault.create_access_key("ok", Some("{not json")).map(|_| ()),
        f.vault
            .create_access_key("ok", Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{}}]}"#))
            .map(|_| ()),
        f.vault
            .import_access_key("short", b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, None)
            .map(|_| ()),
        f.vault
            .import_access_key("AKIAIOSFODNN7EXAMPLE", b"short", None, None)
            .map(|_| ()),
        f.vault
            .import_access_key("AKIAIOSFODNN7EXAMPLE", b"has a space in it ok", None, None)
            .map(|_| ()),
    ];
    for result in bad {
        let error = result.unwrap_err();
        assert_eq!(error.code(), "invalid_argument", "{error}");
    }
    assert!(f.vault.list_access_keys().unwrap().is_empty());
    f.vault
        .import_access_key(
            "AKIAIOSFODNN7EXAMPLE",
            b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
        )
        .unwrap();
    let again = f.vault.import_access_key(
        "AKIAIOSFODNN7EXAMPLE",
        b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        Some("other"),
        None,
    );
    assert!(matches!(again, Err(Error::AccessKeyExists { .. })));
    assert_eq!(f.vault.list_access_keys().unwrap().len(), 1);
}

#[test]
fn an_edited_access_key_is_refused_not_used() {
    for edit in [
        "UPDATE access_keys SET enabled = 1",
        "UPDATE access_keys SET policy = '{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}'",
        "UPDATE access_keys SET policy = NULL",
        "UPDATE access_keys SET name = 'renamed'",
    ] {
        let mut f = fixture();
        let (key, _) = f
            .vault
            .create_access_key("ci", Some(READ_ONLY_POLICY))
            .unwrap();
        f.vault.set_access_key_enabled("ci", false).unwrap();
        let mut vault = tamper(&mut f, edit);
        let error = vault.access_key_auth(&key.id).unwrap_err();
        assert!(matches!(error, Error::AccessKeyTampered { .. }), "{edit}: {error}");
        assert!(vault.list_access_keys().is_err());
    }
    // A sealed secret moved to another key's row does not open.
    let mut f = fixture();
    let (one, _) = f.vault.create_access_key("one", None).unwrap();
    let (two, _) = f.vault.create_access_key("two", None).unwrap();
    let mut vault = tamper(
        &mut f,
        &format!(
            "UPDATE access_keys SET sealed_secret = (SELECT sealed_secret FROM access_keys WHERE id = '{}') WHERE id = '{}'",
            one.id, two.id
        ),
    );
    assert!(matches!(
        vault.access_key_auth(&two.id),
        Err(Error::AccessKeyTampered { .. })
    ));
    assert!(vault.access_key_auth(&one.id).unwrap().is_some());
}

#[test]
fn the_account_id_defaults_is_checked_and_mac_protected() {
    let mut f = fixture();
    assert_eq!(f.vault.aws_account_id().unwrap(), "000000000000");
    for bad in ["12345", "12345678901a", "1234567890123"] {
        assert!(f.vault.set_setting("aws.account-id", bad).is_err(), "{bad}");
    }
    assert!(f.vault.set_setting("aws.nothing", "1").is_err());
    assert_eq!(
        f.vault
            .set_setting("aws.account-id", "123456789012")
            .unwrap(),
        "123456789012"
    );
    let mut vault = tamper(
        &mut f,
        "UPDATE vault_meta SET value = CAST('999999999999' AS BLOB) WHERE name = 'aws.account-id'",
    );
    assert!(matches!(
        vault.aws_account_id(),
        Err(Error::SettingTampered { .. })
    ));
}

#[test]
fn a_secret_policy_is_stored_checked_and_bound_to_its_secret() {
    let mut f = fixture();
    create(&mut f.vault, "app/one", "one-value");
    create(&mut f.vault, "app/two", "two-value");
    let grant = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/ci"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
    let public = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#;
    assert!(f
        .vault
        .put_secret_policy("app/one", READ_ONLY_POLICY, false)
        .is_err());
    assert!(f.vault.put_secret_policy("app/one", public, true).is_err());
    assert_eq!(f.vault.secret_policy("app/one").unwrap(), None);
    f.vault.put_secret_policy("app/one", grant, true).unwrap();
    assert_eq!(
        f.vault.secret_policy("app/one").unwrap().as_deref(),
        Some(grant)
    );
    // Moved to another secret, or edited, it is refused.
    let mut vault = tamper(
        &mut f,
        "UPDATE secret_policies SET secret_id = (SELECT id FROM secrets WHERE name = 'app/two')",
    );
    assert!(matches!(
        vault.secret_policy("app/two"),
        Err(Error::SecretRowTampered { .. })
    ));
    vault.delete_secret_policy("app/two").unwrap();
    assert_eq!(vault.secret_policy("app/two").unwrap(), None);
}

#[test]
fn a_key_policy_is_mac_bound_and_tags_and_description_change() {
    let mut f = fixture();
    let key = f.vault.create_key("first", None).unwrap();
    let id = key.id.to_string();
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/ci"},"Action":"kms:*","Resource":"*"}]}"#;
    assert!(f.vault.put_key_policy(&id, READ_ONLY_POLICY).is_err());
    assert_eq!(f.vault.key_policy(&id).unwrap(), None);
    f.vault.put_key_policy(&id, policy).unwrap();
    assert_eq!(f.vault.key_policy(&id).unwrap().as_deref(), Some(policy));
    f.vault
        .tag_key(
            &id,
            &BTreeMap::from([("env".to_owned(), "prod".to_owned())]),
        )
        .unwrap();
    f.vault.update_key_description(&id, "second").unwrap();
    assert_eq!(f.vault.describe_key(&id).unwrap().description, "second");
    f.vault.untag_key(&id, &["env".to_owned()]).unwrap();
    assert!(f.vault.key_tags(&id).unwrap().is_empty());
    let mut vault = tamper(
        &mut f,
        "UPDATE key_policies SET policy = replace(policy, 'user/ci', 'user/attacker')",
    );
    assert!(matches!(
        vault.key_policy(&id),
        Err(Error::KeyRowTampered { .. })
    ));
}

fn service_get(vault: &mut Vault, name: &str) -> String {
    let request = crate::service::Request::GetSecretValue {
        name: name.into(),
        label: None,
        version_id: None,
    };
    match crate::service::execute(vault, request).unwrap() {
        crate::service::Response::Value(read) => read.value.text.clone().unwrap(),
        _ => panic!("not a value"),
    }
}

/// The reads of `name` another handle on the same file sees: what is committed.
fn committed_reads(f: &Fixture, name: &str) -> usize {
    let mut other = Vault::open(f.vault.path()).unwrap();
    other.unlock(&f.swtpm.tcti(), PIN).unwrap();
    other.audit_verify().unwrap();
    other
        .audit_list(Some(name), None, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.operation == "get_secret_value" && e.result == "ok")
        .count()
}

#[test]
fn batched_read_audits_are_committed_before_the_value_leaves_then_fsynced() {
    let mut f = fixture();
    create(&mut f.vault, "app/token", "value-one");
    assert_eq!(
        f.vault.read_audit().unwrap(),
        read_audit::ReadAudit::Batched
    );
    assert_eq!(service_get(&mut f.vault, "app/token"), "value-one");
    // Nothing of this read waits in this handle's memory: another handle (standing in
    // for the process after a crash of this one) finds it committed, chain intact.
    assert!(f.vault.pending_reads.is_empty());
    assert_eq!(committed_reads(&f, "app/token"), 1);
    // No other write follows, so only the syncer can fsync it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !f.vault.read_audit_synced() {
        assert!(
            std::time::Instant::now() < deadline,
            "the read entry was never fsynced"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Locking fsyncs at once whatever is left.
    for _ in 0..5 {
        service_get(&mut f.vault, "app/token");
    }
    f.vault.lock().unwrap();
    assert!(f.vault.read_audit_synced());
    assert_eq!(committed_reads(&f, "app/token"), 6);
}

#[test]
fn durable_read_audits_fsync_before_the_value_leaves() {
    let mut f = fixture();
    create(&mut f.vault, "app/token", "value-one");
    assert_eq!(
        f.vault.set_setting("audit.reads", "durable").unwrap(),
        "durable"
    );
    assert_eq!(service_get(&mut f.vault, "app/token"), "value-one");
    // Committed with synchronous=FULL: nothing is left for the syncer.
    assert!(f.vault.read_audit_synced());
    assert_eq!(committed_reads(&f, "app/token"), 1);
}

#[test]
fn the_read_audit_setting_is_checked_and_mac_protected() {
    let mut f = fixture();
    create(&mut f.vault, "app/token", "value-one");
    for bad in ["", "Durable", "sometimes", "batched "] {
        let refused = f.vault.set_setting("audit.reads", bad).unwrap_err();
        assert!(refused.to_string().contains("durable"), "{bad}: {refused}");
    }
    assert_eq!(f.vault.setting("audit.reads").unwrap(), "batched");
    f.vault.set_setting("audit.reads", "durable").unwrap();
    assert_eq!(
        f.vault.read_audit_as_stored().unwrap(),
        read_audit::ReadAudit::Durable
    );
    // Turning durable into batched by editing the file is refused, and no value leaves.
    let mut vault = tamper(
        &mut f,
        "UPDATE vault_meta SET value = CAST('batched' AS BLOB) WHERE name = 'audit.reads'",
    );
    assert!(matches!(
        vault.read_audit(),
        Err(Error::SettingTampered { .. })
    ));
    let request = crate::service::Request::GetSecretValue {
        name: "app/token".into(),
        label: None,
        version_id: None,
    };
    assert!(crate::service::execute(&mut vault, request).is_err());
}
