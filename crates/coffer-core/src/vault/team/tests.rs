//! Teams between real vaults (each on its own swtpm), without the network: the owner's
//! outbox entries are applied as a member's daemon would, and members' writes are
//! answered as the owner's listener would.

use coffer_sync::WireEntry;
use coffer_testkit::Swtpm;
use tempfile::TempDir;
use uuid::Uuid;

use super::forward::{ForwardedWrite, NewSecret, WriteAnswer, WriteRefusal};
use super::{ExposureState, TeamRole};
use crate::crypto::DataKey;
use crate::model::{SecretValue, VersionSelector};
use crate::region::sealed::{seal_data_key, ReplicaContext, SealPurpose};
use crate::tpm::PcrBinding;
use crate::vault::{context, CreateSecret, Error, PutValue, Vault};

const PIN: &str = "test-pin-4321";

struct Member {
    _swtpm: Swtpm,
    _dir: TempDir,
    vault: Vault,
}

fn member(name: &str) -> Member {
    let swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let mut vault = Vault::init(
        &dir.path().join("v/vault.db"),
        &swtpm.tcti(),
        PIN,
        PcrBinding::default(),
    )
    .unwrap()
    .vault;
    vault.set_region_name(name).unwrap();
    Member {
        _swtpm: swtpm,
        _dir: dir,
        vault,
    }
}

fn fingerprint(m: &mut Member) -> String {
    m.vault.region_identity().unwrap().fingerprint
}

/// Alice owns team "acme"; bob and carol are invited and have joined.
fn team() -> (Member, Member, Member) {
    let (mut alice, mut bob, mut carol) = (member("alice"), member("bob"), member("carol"));
    alice.vault.team_create("acme").unwrap();
    let fa = fingerprint(&mut alice);
    for m in [&mut bob, &mut carol] {
        let region = m.vault.region_identity().unwrap().region;
        let fp = fingerprint(m);
        alice
            .vault
            .team_invite(&region, "https://127.0.0.1:9", &fp)
            .unwrap();
        m.vault
            .team_join("acme", "alice", "https://127.0.0.1:9", &fa)
            .unwrap();
    }
    (alice, bob, carol)
}

/// Applies everything the owner has queued for `to`, as `to`'s daemon would.
fn sync(from: &mut Member, to: &mut Member) -> Vec<crate::vault::replication::NotApplied> {
    let (region, identity) = to.vault.identity().unwrap();
    let hello = identity.hello(&region, to.vault.id()).unwrap();
    let (acked, entries) = from.vault.outgoing(region.as_str(), &hello).unwrap();
    if entries.is_empty() {
        return Vec::new();
    }
    let mut prev = acked;
    let wire: Vec<WireEntry> = entries
        .into_iter()
        .map(|e| {
            let w = WireEntry {
                seq: e.seq,
                prev_seq: prev,
                secret: e.secret,
                payload: e.payload,
            };
            prev = e.seq;
            w
        })
        .collect();
    let upto = prev;
    let (from_region, from_identity) = from.vault.identity().unwrap();
    let ca = from_identity.chain()[1].clone();
    let refused = to
        .vault
        .apply_replicated(from_region.as_str(), &ca, wire, upto)
        .unwrap();
    from.vault
        .record_acked(region.as_str(), upto, &refused)
        .unwrap();
    refused
}

fn read(vault: &mut Vault, name: &str) -> String {
    let read = vault
        .get_secret_value(name, &VersionSelector::default())
        .unwrap();
    String::from_utf8(read.value.as_bytes().to_vec()).unwrap()
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

/// A write as member `author` would send it to `primary`.
fn forwarded(
    author: &mut Member,
    primary: &mut Member,
    name: &str,
    secret_id: Uuid,
    create: bool,
    value: &str,
) -> ForwardedWrite {
    let (author_region, _) = author.vault.identity().unwrap();
    let (primary_region, primary_identity) = primary.vault.identity().unwrap();
    let version_id = Uuid::new_v4();
    let dek = DataKey::generate();
    let ciphertext = dek.seal(
        context::secret_value(author.vault.id(), secret_id, version_id).as_bytes(),
        &SecretValue::text(value).encode(),
    );
    let sealed_key = seal_data_key(
        &dek,
        &primary_identity.hpke_public(),
        &ReplicaContext {
            purpose: SealPurpose::ForwardedWrite,
            primary_vault: author.vault.id(),
            primary_region: author_region.to_string(),
            replica_vault: primary.vault.id(),
            replica_region: primary_region.to_string(),
            secret_id,
            version_id,
        },
    )
    .unwrap();
    ForwardedWrite {
        author_vault: author.vault.id(),
        primary_vault: primary.vault.id(),
        name: name.into(),
        secret_id,
        create: create.then(NewSecret::default),
        version_id,
        labels: Vec::new(),
        ciphertext,
        sealed_key,
    }
}

fn send(primary: &mut Member, caller: &str, write: &ForwardedWrite) -> (u16, String) {
    let (status, body) = primary
        .vault
        .answer_team_write(caller, &serde_json::to_vec(write).unwrap());
    (status, String::from_utf8(body).unwrap())
}

fn secret_id(vault: &mut Vault, name: &str) -> Uuid {
    vault.describe_secret(name).unwrap().id
}

#[test]
fn sharing_a_folder_sends_the_team_and_its_secrets_to_the_member_only() {
    let (mut alice, mut bob, mut carol) = team();
    create(&mut alice.vault, "team/payments/db", "s3cret");
    create(&mut alice.vault, "personal/mail", "mine");
    alice
        .vault
        .team_share("team/payments/", "bob", TeamRole::Reader)
        .unwrap();
    // Created after sharing: replicated too.
    create(&mut alice.vault, "team/payments/api", "key-1");
    assert!(sync(&mut alice, &mut bob).is_empty());
    assert!(sync(&mut alice, &mut carol).is_empty());

    assert_eq!(read(&mut bob.vault, "team/payments/db"), "s3cret");
    assert_eq!(read(&mut bob.vault, "team/payments/api"), "key-1");
    assert!(matches!(
        bob.vault
            .get_secret_value("personal/mail", &VersionSelector::default()),
        Err(Error::SecretNotFound { .. })
    ));
    // Carol has no role in the folder: she knows the team, not its secrets.
    assert!(carol
        .vault
        .get_secret_value("team/payments/db", &VersionSelector::default())
        .is_err());
    let seen = bob.vault.team().unwrap().unwrap();
    assert_eq!(seen.owner_region, "alice");
    assert!(!seen.is_owner);
    assert_eq!(seen.folders[0].prefix, "team/payments/");
    let bob_entry = seen.members.iter().find(|m| m.region == "bob").unwrap();
    assert_eq!(bob_entry.roles["team/payments/"], TeamRole::Reader);
    // The change is in bob's audit log with what changed.
    let log = bob.vault.audit_list(None, None, 1000).unwrap();
    assert!(
        log.iter().any(|e| e.operation == "team_changed"
            && e.detail
                .contains("team/payments/ shared with bob as reader")),
        "{log:?}"
    );
    // Copies are read-only there, and say where writes go.
    let error = bob
        .vault
        .tag_secret(
            "team/payments/db",
            &[("k".to_owned(), "v".to_owned())].into(),
        )
        .unwrap_err();
    assert_eq!(error.code(), "replica_read_only", "{error}");
}

#[test]
fn the_primary_applies_a_writers_write_and_refuses_a_readers() {
    let (mut alice, mut bob, mut carol) = team();
    create(&mut alice.vault, "team/payments/db", "one");
    alice
        .vault
        .team_share("team/payments/", "bob", TeamRole::Reader)
        .unwrap();
    alice
        .vault
        .team_share("team/payments/", "carol", TeamRole::Writer)
        .unwrap();
    sync(&mut alice, &mut bob);
    sync(&mut alice, &mut carol);
    let id = secret_id(&mut alice.vault, "team/payments/db");

    // Bob is a reader: refused, with the fix, and nothing changes.
    let write = forwarded(&mut bob, &mut alice, "team/payments/db", id, false, "bobs");
    let (status, body) = send(&mut alice, "bob", &write);
    assert_eq!(status, 403, "{body}");
    let refusal: WriteRefusal = serde_json::from_str(&body).unwrap();
    assert_eq!(refusal.code, "forbidden");
    assert!(refusal.message.contains("bob is a reader"), "{body}");
    assert!(refusal.message.contains("--role writer"), "{body}");
    assert_eq!(read(&mut alice.vault, "team/payments/db"), "one");

    // Carol is a writer: applied on alice, and replicated to everyone with carol as author.
    let write = forwarded(&mut carol, &mut alice, "team/payments/db", id, false, "two");
    let (status, body) = send(&mut alice, "carol", &write);
    assert_eq!(status, 200, "{body}");
    let answer: WriteAnswer = serde_json::from_str(&body).unwrap();
    assert_eq!(answer.version_id, write.version_id);
    assert_eq!(read(&mut alice.vault, "team/payments/db"), "two");
    assert!(sync(&mut alice, &mut bob).is_empty());
    assert!(sync(&mut alice, &mut carol).is_empty());
    assert_eq!(read(&mut bob.vault, "team/payments/db"), "two");
    assert_eq!(read(&mut carol.vault, "team/payments/db"), "two");
    let log = bob.vault.audit_list(None, None, 1000).unwrap();
    assert!(
        log.iter().any(|e| e.operation == "replication_apply"
            && e.secret_name.as_deref() == Some("team/payments/db")
            && e.detail.contains("author=carol")),
        "{log:?}"
    );
    let log = alice.vault.audit_list(None, None, 1000).unwrap();
    assert!(
        log.iter()
            .any(|e| e.operation == "put_secret_value" && e.detail.contains("author=carol")),
        "{log:?}"
    );

    // A writer may create a secret in the folder.
    let new_id = Uuid::new_v4();
    let write = forwarded(
        &mut carol,
        &mut alice,
        "team/payments/new",
        new_id,
        true,
        "n",
    );
    let (status, body) = send(&mut alice, "carol", &write);
    assert_eq!(status, 200, "{body}");
    assert_eq!(secret_id(&mut alice.vault, "team/payments/new"), new_id);
    sync(&mut alice, &mut bob);
    assert_eq!(read(&mut bob.vault, "team/payments/new"), "n");

    // Outside any folder: refused.
    let write = forwarded(
        &mut carol,
        &mut alice,
        "personal/x",
        Uuid::new_v4(),
        true,
        "x",
    );
    let (status, body) = send(&mut alice, "carol", &write);
    assert_eq!(status, 403, "{body}");

    // A role change takes effect on the next request.
    alice
        .vault
        .team_share("team/payments/", "carol", TeamRole::Reader)
        .unwrap();
    let write = forwarded(
        &mut carol,
        &mut alice,
        "team/payments/db",
        id,
        false,
        "three",
    );
    let (status, body) = send(&mut alice, "carol", &write);
    assert_eq!(status, 403, "{body}");
    assert_eq!(read(&mut alice.vault, "team/payments/db"), "two");
}

#[test]
fn a_forged_or_altered_write_changes_nothing() {
    let (mut alice, mut bob, _carol) = team();
    create(&mut alice.vault, "team/payments/db", "one");
    alice
        .vault
        .team_share("team/payments/", "bob", TeamRole::Writer)
        .unwrap();
    let id = secret_id(&mut alice.vault, "team/payments/db");

    // Sealed for bob but presented by another caller: the seal names bob.
    let write = forwarded(&mut bob, &mut alice, "team/payments/db", id, false, "x");
    let (status, body) = send(&mut alice, "carol", &write);
    assert_eq!(status, 403, "carol has no role: {body}");
    // A flipped ciphertext byte.
    let mut altered = forwarded(&mut bob, &mut alice, "team/payments/db", id, false, "x");
    altered.ciphertext[3] ^= 1;
    let (status, body) = send(&mut alice, "bob", &altered);
    assert_ne!(status, 200, "{body}");
    // The seal moved to another version.
    let mut moved = forwarded(&mut bob, &mut alice, "team/payments/db", id, false, "x");
    moved.version_id = Uuid::new_v4();
    let (status, body) = send(&mut alice, "bob", &moved);
    assert_ne!(status, 200, "{body}");
    // Addressed to another vault.
    let mut elsewhere = forwarded(&mut bob, &mut alice, "team/payments/db", id, false, "x");
    elsewhere.primary_vault = Uuid::new_v4();
    let (status, body) = send(&mut alice, "bob", &elsewhere);
    assert_eq!(status, 400, "{body}");
    // Not JSON at all.
    let (status, _) = alice.vault.answer_team_write("bob", b"{not json");
    assert_eq!(status, 400);
    assert_eq!(read(&mut alice.vault, "team/payments/db"), "one");
    assert_eq!(
        alice
            .vault
            .list_secret_versions("team/payments/db")
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn an_edited_team_state_is_refused_and_a_member_takes_state_only_from_its_owner() {
    let (mut alice, mut bob, mut carol) = team();
    alice
        .vault
        .team_share("team/x/", "bob", TeamRole::Reader)
        .unwrap();
    sync(&mut alice, &mut bob);
    // Bob makes himself an admin in his copy of the file: refused on the next read.
    let conn = bob.vault.store.conn();
    conn.execute(
        "UPDATE vault_meta SET value = CAST(replace(CAST(value AS TEXT), '\"reader\"', '\"admin\"') AS BLOB)
         WHERE name = 'team.state'",
        [],
    )
    .unwrap();
    let error = bob.vault.team().unwrap_err();
    assert_eq!(error.code(), "tampered", "{error}");

    // A team state from another vault (mallory made a team of the same name and
    // paired carol) is not taken: carol follows alice's team.
    let mut mallory = member("mallory");
    mallory.vault.team_create("acme").unwrap();
    let fc = fingerprint(&mut carol);
    let fm = fingerprint(&mut mallory);
    mallory
        .vault
        .team_invite("carol", "https://127.0.0.1:9", &fc)
        .unwrap();
    carol
        .vault
        .add_peer("mallory", "https://127.0.0.1:9", &fm)
        .unwrap();
    let refused = sync(&mut mallory, &mut carol);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0]
            .reason
            .contains("owned by region alice, not mallory"),
        "{refused:?}"
    );
    assert_eq!(carol.vault.team().unwrap().unwrap().owner_region, "alice");
}

#[test]
fn removing_a_member_deletes_its_copies_and_lists_what_it_could_read() {
    let (mut alice, mut bob, mut carol) = team();
    create(&mut alice.vault, "team/payments/db", "one");
    create(&mut alice.vault, "team/payments/api", "two");
    create(&mut alice.vault, "team/ops/pager", "three");
    alice
        .vault
        .team_share("team/payments/", "bob", TeamRole::Writer)
        .unwrap();
    alice
        .vault
        .team_share("team/payments/", "carol", TeamRole::Reader)
        .unwrap();
    alice
        .vault
        .team_share("team/ops/", "carol", TeamRole::Reader)
        .unwrap();
    sync(&mut alice, &mut bob);
    sync(&mut alice, &mut carol);
    assert_eq!(read(&mut bob.vault, "team/payments/db"), "one");

    let removal = alice.vault.team_remove("bob", false).unwrap();
    let mut exposed: Vec<_> = removal
        .exposures
        .iter()
        .map(|e| (e.secret.as_str(), e.state))
        .collect();
    exposed.sort_by_key(|(name, _)| *name);
    assert_eq!(
        exposed,
        [
            ("team/payments/api", ExposureState::Exposed),
            ("team/payments/db", ExposureState::Exposed)
        ]
    );
    // Its copies go at the next contact, and it forgets the team.
    assert!(sync(&mut alice, &mut bob).is_empty());
    assert!(bob
        .vault
        .get_secret_value("team/payments/db", &VersionSelector::default())
        .is_err());
    assert!(bob.vault.team().unwrap().is_none());
    // Carol keeps hers, and learns that bob left.
    sync(&mut alice, &mut carol);
    assert_eq!(read(&mut carol.vault, "team/payments/db"), "one");
    let seen = carol.vault.team().unwrap().unwrap();
    assert!(seen.members.iter().all(|m| m.region != "bob"));

    // A new value ends the exposure.
    alice
        .vault
        .put_secret_value("team/payments/db", PutValue::new(SecretValue::text("new")))
        .unwrap();
    let states: Vec<_> = alice
        .vault
        .team_exposures()
        .unwrap()
        .into_iter()
        .map(|e| (e.secret, e.state))
        .collect();
    assert!(states.contains(&("team/payments/db".into(), ExposureState::Rotated)));
    assert!(states.contains(&("team/payments/api".into(), ExposureState::Exposed)));

    // Only the owner changes membership, and an unknown member is named.
    let error = carol.vault.team_remove("bob", false).unwrap_err();
    assert_eq!(error.code(), "forbidden", "{error}");
    let error = alice.vault.team_remove("dave", false).unwrap_err();
    assert_eq!(error.code(), "team_not_found", "{error}");
}

#[test]
fn bad_team_input_is_refused_and_changes_nothing() {
    let (mut alice, _bob, _carol) = team();
    for (prefix, member) in [("team/x", "bob"), ("/x/", "bob"), ("team/x/", "dave")] {
        assert!(alice
            .vault
            .team_share(prefix, member, TeamRole::Reader)
            .is_err());
    }
    alice
        .vault
        .team_share("team/", "bob", TeamRole::Reader)
        .unwrap();
    let error = alice
        .vault
        .team_share("team/x/", "bob", TeamRole::Reader)
        .unwrap_err();
    assert_eq!(error.code(), "team_conflict", "{error}");
    let error = alice.vault.team_create("other").unwrap_err();
    assert_eq!(error.code(), "team_conflict", "{error}");
    let error = alice
        .vault
        .team_invite("bob", "https://127.0.0.1:9", "not-a-fingerprint")
        .unwrap_err();
    assert_eq!(error.code(), "team_conflict", "already a member: {error}");
    let team = alice.vault.team().unwrap().unwrap();
    assert_eq!(team.folders.len(), 1);
    assert_eq!(team.revision, 4, "create, two invites, one share");
}
