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
    try_sync(from, to).unwrap()
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

    // A member's membership change goes to the owner (unreachable here: no listener),
    // and an unknown member is named.
    let error = carol.vault.team_remove("bob", false).unwrap_err();
    assert_eq!(error.code(), "peer_unreachable", "{error}");
    assert!(error.to_string().contains("nothing changed"), "{error}");
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

#[test]
fn an_admin_changes_membership_through_the_owner_within_its_folders() {
    use super::admin::TeamOp;
    let (mut alice, _bob, mut carol) = team();
    create(&mut alice.vault, "team/payments/db", "one");
    alice
        .vault
        .team_share("team/payments/", "bob", TeamRole::Admin)
        .unwrap();
    alice
        .vault
        .team_share("team/ops/", "carol", TeamRole::Writer)
        .unwrap();
    let ask = |alice: &mut Member, caller: &str, op: TeamOp| {
        let (status, body) = alice
            .vault
            .answer_team_admin(caller, &serde_json::to_vec(&op).unwrap());
        (status, String::from_utf8(body).unwrap())
    };

    // Bob, admin of team/payments/, shares it with carol: done by alice, authored by bob.
    let (status, body) = ask(
        &mut alice,
        "bob",
        TeamOp::Share {
            prefix: "team/payments/".into(),
            member: "carol".into(),
            role: TeamRole::Reader,
        },
    );
    assert_eq!(status, 200, "{body}");
    sync(&mut alice, &mut carol);
    assert_eq!(read(&mut carol.vault, "team/payments/db"), "one");
    let log = carol.vault.audit_list(None, None, 1000).unwrap();
    assert!(
        log.iter().any(|e| e.operation == "team_changed"
            && e.detail
                .contains("team/payments/ shared with carol as reader by bob")),
        "{log:?}"
    );

    // Carol is no admin: refused, and nothing changes.
    let before = alice.vault.team().unwrap().unwrap();
    let (status, body) = ask(
        &mut alice,
        "carol",
        TeamOp::Share {
            prefix: "team/payments/".into(),
            member: "carol".into(),
            role: TeamRole::Admin,
        },
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("carol may not share team/payments/ with carol"),
        "{body}"
    );
    // Bob is no admin of team/ops/: he may not change roles there, nor remove carol,
    // who has a role there.
    let (status, body) = ask(
        &mut alice,
        "bob",
        TeamOp::Share {
            prefix: "team/ops/".into(),
            member: "carol".into(),
            role: TeamRole::Reader,
        },
    );
    assert_eq!(status, 403, "{body}");
    let (status, body) = ask(
        &mut alice,
        "bob",
        TeamOp::Remove {
            member: "carol".into(),
            rotate: false,
        },
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(alice.vault.team().unwrap().unwrap(), before);

    // Bob may invite (he is an admin of a folder).
    let mut dave = member("dave");
    let fd = fingerprint(&mut dave);
    let (status, body) = ask(
        &mut alice,
        "bob",
        TeamOp::Invite {
            member: "dave".into(),
            url: "https://127.0.0.1:9".into(),
            fingerprint: fd,
        },
    );
    assert_eq!(status, 200, "{body}");
    assert!(alice
        .vault
        .team()
        .unwrap()
        .unwrap()
        .members
        .iter()
        .any(|m| m.region == "dave"));
}

/// As [`sync`], but says when the receiver keeps the batch for later (nothing applied,
/// nothing acknowledged) instead of panicking.
fn try_sync(
    from: &mut Member,
    to: &mut Member,
) -> Result<Vec<crate::vault::replication::NotApplied>, Error> {
    let (region, identity) = to.vault.identity().unwrap();
    let hello = identity.hello(&region, to.vault.id()).unwrap();
    let (acked, entries) = from.vault.outgoing(region.as_str(), &hello).unwrap();
    if entries.is_empty() {
        return Ok(Vec::new());
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
        .apply_replicated(from_region.as_str(), &ca, wire, upto)?;
    from.vault
        .record_acked(region.as_str(), upto, &refused)
        .unwrap();
    Ok(refused)
}

fn put(vault: &mut Vault, name: &str, value: &str) {
    vault
        .put_secret_value(name, PutValue::new(SecretValue::text(value)))
        .unwrap();
}

fn follows(vault: &mut Vault, name: &str) -> Option<String> {
    vault
        .describe_secret(name)
        .unwrap()
        .replication
        .and_then(|r| r.primary_region)
}

const FOLDER: &str = "team/payments/";

/// Alice owns the team; bob and carol write in the folder, which holds one secret.
fn shared_team() -> (Member, Member, Member) {
    let (mut alice, mut bob, mut carol) = team();
    create(&mut alice.vault, "team/payments/db", "one");
    for m in ["bob", "carol"] {
        alice.vault.team_share(FOLDER, m, TeamRole::Writer).unwrap();
    }
    assert!(sync(&mut alice, &mut bob).is_empty());
    assert!(sync(&mut alice, &mut carol).is_empty());
    (alice, bob, carol)
}

#[test]
fn moving_the_primary_hands_the_folder_over_without_losing_a_write() {
    let (mut alice, mut bob, mut carol) = shared_team();
    // A write the old primary applied but has not sent yet: the handover must carry it.
    put(&mut alice.vault, "team/payments/db", "two");
    let moved = alice.vault.team_move_primary(FOLDER, "bob").unwrap();
    assert_eq!(moved.folders[0].primary_region, "bob");
    assert_eq!(moved.folders[0].handover_from.as_deref(), Some("alice"));
    let id = secret_id(&mut alice.vault, "team/payments/db");

    // Alice's own copy follows bob at once; a write there goes to bob (unreachable here).
    assert_eq!(
        follows(&mut alice.vault, "team/payments/db").as_deref(),
        Some("bob")
    );
    let error = alice
        .vault
        .put_secret_value("team/payments/db", PutValue::new(SecretValue::text("x")))
        .unwrap_err();
    assert!(error.to_string().contains("region bob"), "{error}");
    // Before bob has heard, it takes no write for the folder: nothing forks.
    let write = forwarded(&mut carol, &mut bob, "team/payments/db", id, false, "early");
    assert_eq!(send(&mut bob, "carol", &write).0, 403);

    // Bob gets the pending write, the state and the handover, in that order.
    assert!(sync(&mut alice, &mut bob).is_empty());
    assert_eq!(read(&mut bob.vault, "team/payments/db"), "two");
    assert_eq!(
        follows(&mut bob.vault, "team/payments/db"),
        None,
        "bob's own now"
    );
    let write = forwarded(&mut carol, &mut bob, "team/payments/db", id, false, "three");
    let (status, body) = send(&mut bob, "carol", &write);
    assert_eq!(status, 200, "{body}");
    put(&mut bob.vault, "team/payments/db", "four");
    // The old primary no longer takes writes for the folder.
    let write = forwarded(&mut carol, &mut alice, "team/payments/db", id, false, "old");
    assert_ne!(send(&mut alice, "carol", &write).0, 200);

    // Carol hears from bob before the owner has told her: the batch waits, nothing
    // applied, and goes through once the owner's state has arrived.
    let waited = try_sync(&mut bob, &mut carol).unwrap_err();
    assert!(waited.awaits_team_state(), "{waited}");
    assert_eq!(read(&mut carol.vault, "team/payments/db"), "one");
    assert!(sync(&mut alice, &mut carol).is_empty());
    assert!(sync(&mut bob, &mut carol).is_empty());
    assert_eq!(read(&mut carol.vault, "team/payments/db"), "four");
    assert_eq!(
        follows(&mut carol.vault, "team/payments/db").as_deref(),
        Some("bob")
    );
    let versions = carol
        .vault
        .list_secret_versions("team/payments/db")
        .unwrap();
    assert_eq!(versions.len(), 4, "one, two, three and four: {versions:?}");

    // Bob tells the owner after its copies: the owner records the move, and everyone
    // learns it is done.
    assert!(sync(&mut bob, &mut alice).is_empty());
    assert_eq!(read(&mut alice.vault, "team/payments/db"), "four");
    let team = alice.vault.team().unwrap().unwrap();
    assert_eq!(team.folders[0].handover_from, None);
    sync(&mut alice, &mut bob);
    sync(&mut alice, &mut carol);
    assert_eq!(
        bob.vault.team().unwrap().unwrap().folders[0].handover_from,
        None
    );
    let log = carol.vault.audit_list(None, None, 1000).unwrap();
    assert!(
        log.iter().any(|e| e.operation == "team_changed"
            && e.detail.contains("moves from primary alice to bob")),
        "{log:?}"
    );

    // And back to the owner: bob hands over what it applied, alice takes over.
    alice.vault.team_move_primary(FOLDER, "alice").unwrap();
    put(&mut bob.vault, "team/payments/db", "five"); // bob has not heard yet
                                                     // Until bob has handed the folder over, alice takes no write for it either.
    let write = forwarded(
        &mut carol,
        &mut alice,
        "team/payments/db",
        id,
        false,
        "early",
    );
    let (status, body) = send(&mut alice, "carol", &write);
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains("moving from region bob to region alice"),
        "{body}"
    );
    sync(&mut alice, &mut bob);
    assert_eq!(
        follows(&mut bob.vault, "team/payments/db").as_deref(),
        Some("alice")
    );
    assert!(sync(&mut bob, &mut alice).is_empty());
    assert_eq!(read(&mut alice.vault, "team/payments/db"), "five");
    assert_eq!(follows(&mut alice.vault, "team/payments/db"), None);
    assert_eq!(
        alice.vault.team().unwrap().unwrap().folders[0].handover_from,
        None
    );
    put(&mut alice.vault, "team/payments/db", "six");
    sync(&mut alice, &mut carol);
    sync(&mut alice, &mut bob);
    assert_eq!(read(&mut carol.vault, "team/payments/db"), "six");
    assert_eq!(read(&mut bob.vault, "team/payments/db"), "six");
    assert_eq!(
        follows(&mut carol.vault, "team/payments/db").as_deref(),
        Some("alice")
    );
}

#[test]
fn the_new_primary_feeds_members_shared_and_removed_after_the_move() {
    let (mut alice, mut bob, mut carol) = shared_team();
    alice.vault.team_move_primary(FOLDER, "bob").unwrap();
    sync(&mut alice, &mut bob);
    sync(&mut bob, &mut alice);
    sync(&mut alice, &mut carol);
    sync(&mut bob, &mut carol);

    // Dave joins and gets the folder: the owner changes the state, bob sends the copies
    // (pairing dave with what the owner checked at the invite).
    let mut dave = member("dave");
    let fd = fingerprint(&mut dave);
    let fa = fingerprint(&mut alice);
    alice
        .vault
        .team_invite("dave", "https://127.0.0.1:9", &fd)
        .unwrap();
    dave.vault
        .team_join("acme", "alice", "https://127.0.0.1:9", &fa)
        .unwrap();
    alice
        .vault
        .team_share(FOLDER, "dave", TeamRole::Reader)
        .unwrap();
    sync(&mut alice, &mut dave);
    sync(&mut alice, &mut bob);
    assert!(bob.vault.peers().unwrap().iter().any(|p| p.name == "dave"));
    assert!(sync(&mut bob, &mut dave).is_empty());
    assert_eq!(read(&mut dave.vault, "team/payments/db"), "one");
    assert_eq!(
        follows(&mut dave.vault, "team/payments/db").as_deref(),
        Some("bob")
    );

    // Removing carol: bob deletes her copies.
    alice.vault.team_remove("carol", false).unwrap();
    sync(&mut alice, &mut bob);
    sync(&mut alice, &mut carol);
    sync(&mut bob, &mut carol);
    assert!(matches!(
        carol
            .vault
            .get_secret_value("team/payments/db", &VersionSelector::default()),
        Err(Error::SecretNotFound { .. })
    ));
    assert!(carol.vault.team().unwrap().is_none());
    assert_eq!(read(&mut dave.vault, "team/payments/db"), "one");
}

#[test]
fn a_move_is_refused_when_it_would_leave_a_folder_without_a_writing_primary() {
    let (mut alice, mut bob, mut carol) = shared_team();
    alice
        .vault
        .team_share(FOLDER, "carol", TeamRole::Reader)
        .unwrap();
    let before = alice.vault.team().unwrap().unwrap();
    let refused = |r: Result<crate::vault::team::TeamInfo, Error>| r.unwrap_err().to_string();

    let error = refused(alice.vault.team_move_primary(FOLDER, "carol"));
    assert!(
        error.contains("carol cannot be the primary") && error.contains("--role writer"),
        "{error}"
    );
    let error = refused(alice.vault.team_move_primary("team/other/", "bob"));
    assert!(error.contains("not shared with anyone"), "{error}");
    let error = refused(alice.vault.team_move_primary(FOLDER, "alice"));
    assert!(error.contains("already the primary"), "{error}");
    let error = refused(alice.vault.team_move_primary(FOLDER, "nobody"));
    assert!(error.contains("not a member"), "{error}");
    assert_eq!(
        alice.vault.team().unwrap().unwrap(),
        before,
        "refusals change nothing"
    );

    alice.vault.team_move_primary(FOLDER, "bob").unwrap();
    let error = refused(alice.vault.team_move_primary(FOLDER, "alice"));
    assert!(
        error.contains("is moving from region alice to region bob"),
        "{error}"
    );
    // The primary (and the one handing over) keeps a writing role until the folder moves on.
    let error = alice
        .vault
        .team_remove("bob", false)
        .unwrap_err()
        .to_string();
    assert!(error.contains("move-primary"), "{error}");
    let error = refused(alice.vault.team_unshare(FOLDER, "bob"));
    assert!(error.contains("move-primary"), "{error}");
    let error = refused(alice.vault.team_share(FOLDER, "bob", TeamRole::Reader));
    assert!(error.contains("cannot be the primary"), "{error}");

    // Only an admin of the folder may move it, when it asks through the owner.
    sync(&mut alice, &mut bob);
    sync(&mut bob, &mut alice);
    let op = serde_json::to_vec(&super::admin::TeamOp::MovePrimary {
        prefix: FOLDER.into(),
        to: "alice".into(),
    })
    .unwrap();
    let (status, body) = alice.vault.answer_team_admin("carol", &op);
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    alice
        .vault
        .team_share(FOLDER, "carol", TeamRole::Admin)
        .unwrap();
    let (status, body) = alice.vault.answer_team_admin("carol", &op);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let _ = &mut carol;
}

#[test]
fn a_team_entry_from_a_member_that_hands_nothing_over_is_refused() {
    let (mut alice, mut bob, mut carol) = shared_team();
    // Carol is paired with bob (as a folder's primary would be) and sends him her team
    // state: she is not the owner and hands bob nothing.
    let fc = fingerprint(&mut carol);
    let fb = fingerprint(&mut bob);
    bob.vault
        .add_peer("carol", "https://127.0.0.1:9", &fc)
        .unwrap();
    carol
        .vault
        .add_peer("bob", "https://127.0.0.1:9", &fb)
        .unwrap();
    carol.vault.team_move_primary(FOLDER, "carol").unwrap_err();
    let before = bob.vault.team().unwrap().unwrap();
    // Queue carol's state for bob, as a handover would.
    {
        let state = carol.vault.team_state().unwrap().unwrap();
        carol
            .vault
            .write(super::super::AuditEvent::new("test"), |tx, _, _| {
                super::queue_state(tx, &state, &["bob".to_owned()], "forged handover")
            })
            .unwrap();
    }
    let refused = sync(&mut carol, &mut bob);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].reason.contains("hands no folder over"),
        "{}",
        refused[0].reason
    );
    assert_eq!(bob.vault.team().unwrap().unwrap(), before);
    assert_eq!(
        follows(&mut bob.vault, "team/payments/db").as_deref(),
        Some("alice")
    );
    let _ = &mut alice;
}
