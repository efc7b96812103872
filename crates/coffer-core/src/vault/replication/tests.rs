//! Replication between two real vaults (each on its own swtpm), without the network: the
//! primary's outbox entries are built and applied as the daemons would.

use coffer_sync::{SecretKey, WireEntry};
use coffer_testkit::Swtpm;
use tempfile::TempDir;

use super::wire::Wire;
use crate::model::{SecretValue, VersionSelector};
use crate::names::StagingLabel;
use crate::region::{Identity, RegionName};
use crate::tpm::PcrBinding;
use crate::vault::{CreateSecret, Error, PutValue, Vault};

const PIN: &str = "test-pin-4321";

struct Region {
    _swtpm: Swtpm,
    _dir: TempDir,
    vault: Vault,
}

fn region(name: &str) -> Region {
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
    Region {
        _swtpm: swtpm,
        _dir: dir,
        vault,
    }
}

fn pair(a: &mut Region, b: &mut Region) {
    let (ia, ib) = (
        a.vault.region_identity().unwrap(),
        b.vault.region_identity().unwrap(),
    );
    a.vault
        .add_peer(&ib.region, "https://127.0.0.1:9", &ib.fingerprint)
        .unwrap();
    b.vault
        .add_peer(&ia.region, "https://127.0.0.1:9", &ia.fingerprint)
        .unwrap();
}

fn value(vault: &mut Vault, name: &str, label: &str) -> String {
    let read = vault
        .get_secret_value(
            name,
            &VersionSelector::Label(StagingLabel::parse(label).unwrap()),
        )
        .unwrap();
    String::from_utf8(read.value.as_bytes().to_vec()).unwrap()
}

/// The primary's backlog for `to`, chained as the sender puts it on the wire.
fn backlog(from: &mut Region, to: &mut Region) -> Vec<WireEntry> {
    let (region, identity) = to.vault.identity().unwrap();
    let hello = identity.hello(&region, to.vault.id()).unwrap();
    let (acked, entries) = from.vault.outgoing(region.as_str(), &hello).unwrap();
    let mut prev = acked;
    entries
        .into_iter()
        .map(|e| {
            let wire = WireEntry {
                seq: e.seq,
                prev_seq: prev,
                secret: e.secret,
                payload: e.payload,
            };
            prev = e.seq;
            wire
        })
        .collect()
}

fn signer(region: &mut Region) -> rustls_pki_types::CertificateDer<'static> {
    region.vault.identity().unwrap().1.chain()[1].clone()
}

fn applied(region: &Region, from: &str) -> i64 {
    crate::store::replication::applied_upto(region.vault.store.conn(), from).unwrap()
}

#[test]
fn a_replica_applies_signed_entries_once_and_refuses_altered_ones() {
    let (mut home, mut lab) = (region("eu-home-1"), region("us-lab-1"));
    pair(&mut home, &mut lab);
    home.vault
        .create_secret(CreateSecret {
            name: "db/pass".into(),
            value: Some(SecretValue::text("one")),
            ..Default::default()
        })
        .unwrap();
    home.vault
        .replicate_secret("db/pass", "us-lab-1", None)
        .unwrap();
    home.vault
        .put_secret_value("db/pass", PutValue::new(SecretValue::text("two")))
        .unwrap();
    let entries = backlog(&mut home, &mut lab);
    assert_eq!(
        entries.len(),
        2,
        "the first version (with the state), the put"
    );
    let ca = signer(&mut home);
    let upto = entries.last().unwrap().seq;

    // A flipped byte anywhere in a payload: the whole batch is refused, nothing applied.
    for at in [
        10,
        entries[0].payload.len() / 2,
        entries[0].payload.len() - 5,
    ] {
        let mut altered = entries.clone();
        altered[0].payload[at] ^= 1;
        let error = lab
            .vault
            .apply_replicated("eu-home-1", &ca, altered, upto)
            .unwrap_err();
        assert!(matches!(error, Error::ReplicationRefused { .. }), "{error}");
        assert_eq!(applied(&lab, "eu-home-1"), 0);
    }
    // Signed by someone else (not the pinned primary).
    let stranger = Identity::generate().unwrap();
    let error = lab
        .vault
        .apply_replicated("eu-home-1", &stranger.chain()[1], entries.clone(), upto)
        .unwrap_err();
    assert!(error.to_string().contains("not signed by"), "{error}");
    // A genuine payload replayed as another entry, or for another secret.
    let mut moved = entries.clone();
    moved[0].seq += 1000;
    let error = lab
        .vault
        .apply_replicated("eu-home-1", &ca, moved, upto)
        .unwrap_err();
    assert!(error.to_string().contains("another entry"), "{error}");
    let mut moved = entries.clone();
    moved[1].secret = SecretKey([7; 16]);
    assert!(lab
        .vault
        .apply_replicated("eu-home-1", &ca, moved, upto)
        .is_err());
    // Sent to another region of this vault's name? Addressed by vault id and region.
    let error = lab
        .vault
        .apply_replicated("us-other-1", &ca, entries.clone(), upto)
        .unwrap_err();
    assert!(
        error.to_string().contains("another vault or region"),
        "{error}"
    );
    assert!(lab.vault.describe_secret("db/pass").is_err());

    // The genuine batch applies; applying it again changes nothing.
    let refused = lab
        .vault
        .apply_replicated("eu-home-1", &ca, entries.clone(), upto)
        .unwrap();
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(applied(&lab, "eu-home-1"), upto as i64);
    assert_eq!(value(&mut lab.vault, "db/pass", "CURRENT"), "two");
    assert_eq!(value(&mut lab.vault, "db/pass", "PREVIOUS"), "one");
    let before = lab.vault.describe_secret("db/pass").unwrap();
    lab.vault
        .apply_replicated("eu-home-1", &ca, entries, upto)
        .unwrap();
    let after = lab.vault.describe_secret("db/pass").unwrap();
    assert_eq!(before.versions.len(), after.versions.len());
    assert_eq!(
        after.replication.unwrap().primary_region.as_deref(),
        Some("eu-home-1")
    );

    // Read-only here, naming the primary; promoted, it takes writes and keeps its past.
    let error = lab
        .vault
        .put_secret_value("db/pass", PutValue::new(SecretValue::text("three")))
        .unwrap_err();
    assert!(
        matches!(&error, Error::ReplicaReadOnly { primary_region, .. } if primary_region == "eu-home-1"),
        "{error}"
    );
    assert_eq!(error.code(), "replica_read_only");
    assert!(matches!(
        home.vault.promote_secret("db/pass"),
        Err(Error::NotAReplica { .. })
    ));
    lab.vault.promote_secret("db/pass").unwrap();
    lab.vault
        .put_secret_value("db/pass", PutValue::new(SecretValue::text("three")))
        .unwrap();
    assert_eq!(value(&mut lab.vault, "db/pass", "CURRENT"), "three");
    assert_eq!(value(&mut lab.vault, "db/pass", "PREVIOUS"), "two");

    // Acknowledged entries leave the primary's outbox; the region shows in sync.
    home.vault.record_acked("us-lab-1", upto, &[]).unwrap();
    assert!(backlog(&mut home, &mut lab).is_empty());
    let status = home
        .vault
        .describe_secret("db/pass")
        .unwrap()
        .replication
        .unwrap();
    assert_eq!(status.regions[0].status, super::ReplicationStatus::InSync);

    // Paired again (a new address needs remove + add on both sides): the region gets a
    // whole copy again, from position 0, and applying what it already has is harmless.
    home.vault
        .create_secret(CreateSecret {
            name: "db/other".into(),
            value: Some(SecretValue::text("other")),
            ..Default::default()
        })
        .unwrap();
    home.vault
        .replicate_secret("db/other", "us-lab-1", None)
        .unwrap();
    let (ia, ib) = (
        home.vault.region_identity().unwrap(),
        lab.vault.region_identity().unwrap(),
    );
    home.vault.remove_peer("us-lab-1").unwrap();
    lab.vault.remove_peer("eu-home-1").unwrap();
    assert_eq!(applied(&lab, "eu-home-1"), 0);
    assert!(home.vault.replication_backlog().unwrap().is_empty());
    home.vault
        .add_peer("us-lab-1", "https://127.0.0.1:10", &ib.fingerprint)
        .unwrap();
    lab.vault
        .add_peer("eu-home-1", "https://127.0.0.1:10", &ia.fingerprint)
        .unwrap();
    let again = backlog(&mut home, &mut lab);
    assert_eq!(again.first().unwrap().prev_seq, 0);
    let upto = again.last().unwrap().seq;
    let refused = lab
        .vault
        .apply_replicated("eu-home-1", &ca, again, upto)
        .unwrap();
    // db/pass was promoted on the lab: it is reported, not overwritten.
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused[0].reason.contains("promoted"), "{refused:?}");
    assert_eq!(value(&mut lab.vault, "db/pass", "CURRENT"), "three");
    assert_eq!(value(&mut lab.vault, "db/other", "CURRENT"), "other");
}

#[test]
fn wire_messages_round_trip() {
    let message = coffer_sync::Message::batch(
        9,
        vec![WireEntry {
            seq: 4,
            prev_seq: 2,
            secret: SecretKey([3; 16]),
            payload: vec![0, 1, 255],
        }],
    );
    let json = serde_json::to_vec(&Wire::from_message(message.clone())).unwrap();
    let back: Wire = serde_json::from_slice(&json).unwrap();
    assert_eq!(back.into_message(), message);
    let _ = RegionName::parse("eu-home-1").unwrap();
}

fn inbox_len(region: &Region) -> usize {
    region
        .vault
        .store
        .conn()
        .query_row("SELECT COUNT(*) FROM replication_inbox", [], |r| r.get(0))
        .unwrap()
}

fn audited(vault: &mut Vault, operation: &str) -> Vec<String> {
    vault
        .audit_list(None, None, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.operation == operation)
        .map(|e| format!("{} {}", e.result, e.detail))
        .collect()
}

#[test]
fn a_locked_replica_keeps_entries_sealed_and_applies_them_at_unlock() {
    let (mut home, mut lab) = (region("eu-home-1"), region("us-lab-1"));
    pair(&mut home, &mut lab);
    home.vault
        .create_secret(CreateSecret {
            name: "db/pass".into(),
            value: Some(SecretValue::text("inbox-value-one-0001")),
            ..Default::default()
        })
        .unwrap();
    home.vault
        .replicate_secret("db/pass", "us-lab-1", None)
        .unwrap();
    home.vault
        .put_secret_value(
            "db/pass",
            PutValue::new(SecretValue::text("inbox-value-two-0002")),
        )
        .unwrap();
    let entries = backlog(&mut home, &mut lab);
    let ca = signer(&mut home);
    let upto = entries.last().unwrap().seq;
    lab.vault.lock().unwrap();

    // Checked on receipt without any key: an altered or foreign payload is not kept.
    let mut altered = entries.clone();
    altered[1].payload[20] ^= 1;
    let error = lab
        .vault
        .keep_sealed("eu-home-1", "us-lab-1", &ca, altered)
        .unwrap_err();
    assert!(matches!(error, Error::ReplicationRefused { .. }), "{error}");
    let error = lab
        .vault
        .keep_sealed("eu-home-1", "us-other-1", &ca, entries.clone())
        .unwrap_err();
    assert!(error.to_string().contains("another vault or region"));
    assert_eq!(inbox_len(&lab), 0);

    // Kept, twice (a retransmission): the position moves, nothing is applied or opened.
    for _ in 0..2 {
        lab.vault
            .keep_sealed("eu-home-1", "us-lab-1", &ca, entries.clone())
            .unwrap();
    }
    assert_eq!(inbox_len(&lab), entries.len());
    assert_eq!(applied(&lab, "eu-home-1"), 0);
    let conn = lab.vault.store.conn();
    assert_eq!(
        crate::store::replication::received_upto(conn, "eu-home-1").unwrap(),
        upto as i64
    );
    let names: i64 = conn
        .query_row("SELECT COUNT(*) FROM secrets", [], |r| r.get(0))
        .unwrap();
    assert_eq!(names, 0, "nothing is applied while locked");
    let raw = std::fs::read(lab.vault.path()).unwrap();
    let wal = std::fs::read(lab.vault.path().with_extension("db-wal")).unwrap_or_default();
    for plain in [&b"inbox-value-one-0001"[..], b"inbox-value-two-0002"] {
        assert!(!raw.windows(plain.len()).any(|w| w == plain));
        assert!(!wal.windows(plain.len()).any(|w| w == plain));
    }

    // The next unlock applies them, in order, once, and audits it.
    lab.vault.unlock(&lab._swtpm.tcti(), PIN).unwrap();
    assert_eq!(
        value(&mut lab.vault, "db/pass", "CURRENT"),
        "inbox-value-two-0002"
    );
    assert_eq!(
        value(&mut lab.vault, "db/pass", "PREVIOUS"),
        "inbox-value-one-0001"
    );
    assert_eq!(applied(&lab, "eu-home-1"), upto as i64);
    assert_eq!(inbox_len(&lab), 0);
    let applies = audited(&mut lab.vault, "replication_apply");
    assert!(
        applies.iter().any(|d| d.contains("via=inbox")),
        "{applies:?}"
    );

    // A kept payload altered on disk is discarded at unlock (audited), and the position
    // goes back to what is applied, so the primary sees the regression.
    home.vault
        .put_secret_value(
            "db/pass",
            PutValue::new(SecretValue::text("inbox-value-three-03")),
        )
        .unwrap();
    home.vault.record_acked("us-lab-1", upto, &[]).unwrap();
    let more = backlog(&mut home, &mut lab);
    lab.vault.lock().unwrap();
    lab.vault
        .keep_sealed("eu-home-1", "us-lab-1", &ca, more)
        .unwrap();
    lab.vault
        .store
        .conn()
        .execute(
            "UPDATE replication_inbox SET payload = CAST(replace(CAST(payload AS TEXT), 'A', 'B') AS BLOB)",
            [],
        )
        .unwrap();
    lab.vault.unlock(&lab._swtpm.tcti(), PIN).unwrap();
    assert_eq!(
        value(&mut lab.vault, "db/pass", "CURRENT"),
        "inbox-value-two-0002"
    );
    assert_eq!(inbox_len(&lab), 0);
    assert_eq!(
        crate::store::replication::received_upto(lab.vault.store.conn(), "eu-home-1").unwrap(),
        upto as i64
    );
    let discarded = audited(&mut lab.vault, "replication_inbox_discard");
    assert_eq!(discarded.len(), 1, "{discarded:?}");
}

#[test]
fn a_bundle_after_a_gap_is_refused_as_out_of_order() {
    let (mut home, mut lab) = (region("eu-home-1"), region("us-lab-1"));
    pair(&mut home, &mut lab);
    home.vault
        .create_secret(CreateSecret {
            name: "db/pass".into(),
            value: Some(SecretValue::text("one")),
            ..Default::default()
        })
        .unwrap();
    home.vault
        .replicate_secret("db/pass", "us-lab-1", None)
        .unwrap();
    let first = lab.vault.acknowledge_region("eu-home-1").unwrap();
    home.vault.import_bundle_ack(&first.ack).unwrap();
    let b1 = home.vault.export_bundle("us-lab-1").unwrap();
    let imported = lab.vault.import_bundle(&b1.bundle).unwrap();
    assert_eq!(imported.applied, 1);
    home.vault.import_bundle_ack(&imported.ack).unwrap();
    home.vault
        .put_secret_value("db/pass", PutValue::new(SecretValue::text("two")))
        .unwrap();
    let b2 = home.vault.export_bundle("us-lab-1").unwrap();
    assert_eq!(b2.after, b1.last_seq);

    // The replica went back (restored from an older copy): b2 does not follow it.
    lab.vault
        .store
        .conn()
        .execute("UPDATE replication_inbound SET applied_upto = 0", [])
        .unwrap();
    let error = lab.vault.import_bundle(&b2.bundle).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("import the bundle before it first"),
        "{error}"
    );
    assert_eq!(applied(&lab, "eu-home-1"), 0);
    assert_eq!(value(&mut lab.vault, "db/pass", "CURRENT"), "one");
    // b1 again brings it back to where b2 follows; then b2 applies.
    lab.vault.import_bundle(&b1.bundle).unwrap();
    lab.vault.import_bundle(&b2.bundle).unwrap();
    assert_eq!(value(&mut lab.vault, "db/pass", "CURRENT"), "two");
    // The first acknowledgement, older than what was taken since, is refused.
    let error = home.vault.import_bundle_ack(&first.ack).unwrap_err();
    assert!(
        error.to_string().contains("older acknowledgement"),
        "{error}"
    );
}
