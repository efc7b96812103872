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
    f.vault.change_pin("new-pin-9876").unwrap();
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
