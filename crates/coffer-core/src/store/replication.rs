//! Rows of replication: on a primary, where each secret goes, the outbox and what each
//! peer acknowledged; on a replica, which primary a secret follows and how far each
//! primary's stream is applied.

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use uuid::Uuid;

use super::StoreError;

/// "Secret S is replicated to region R" (on the primary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaRow {
    pub secret_id: Uuid,
    pub region: String,
    /// The key the replica wraps its copy under there (`None`: its default key).
    pub replica_key: Option<String>,
    pub added_at: i64,
    /// When the replica last acknowledged everything of this secret.
    pub synced_at: Option<i64>,
    /// Why the replica could not apply this secret's last change, if it could not.
    pub last_error: Option<String>,
    pub mac: Vec<u8>,
}

const REPLICA_COLUMNS: &str =
    "secret_id, region, replica_key, added_at, synced_at, last_error, mac";

fn replica_from_row(row: &Row<'_>) -> rusqlite::Result<ReplicaRow> {
    Ok(ReplicaRow {
        secret_id: row.get(0)?,
        region: row.get(1)?,
        replica_key: row.get(2)?,
        added_at: row.get(3)?,
        synced_at: row.get(4)?,
        last_error: row.get(5)?,
        mac: row.get(6)?,
    })
}

pub fn replicas_of(conn: &Connection, secret_id: Uuid) -> Result<Vec<ReplicaRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {REPLICA_COLUMNS} FROM secret_replicas WHERE secret_id = ?1 ORDER BY region"
    ))?;
    let rows = stmt.query_map([secret_id], replica_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn replica(
    conn: &Connection,
    secret_id: Uuid,
    region: &str,
) -> Result<Option<ReplicaRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {REPLICA_COLUMNS} FROM secret_replicas WHERE secret_id = ?1 AND region = ?2"
        ))?
        .query_row(params![secret_id, region], replica_from_row)
        .optional()?)
}

pub fn insert_replica(tx: &Transaction<'_>, row: &ReplicaRow) -> Result<(), StoreError> {
    tx.prepare_cached(&format!(
        "INSERT INTO secret_replicas ({REPLICA_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    ))?
    .execute(params![
        row.secret_id,
        row.region,
        row.replica_key,
        row.added_at,
        row.synced_at,
        row.last_error,
        row.mac
    ])?;
    Ok(())
}

pub fn delete_replica(
    tx: &Transaction<'_>,
    secret_id: Uuid,
    region: &str,
) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached("DELETE FROM secret_replicas WHERE secret_id = ?1 AND region = ?2")?
        .execute(params![secret_id, region])?
        > 0)
}

/// Records the replica's refusal of this secret's last change (status only).
pub fn set_replica_error(
    tx: &Transaction<'_>,
    secret_id: Uuid,
    region: &str,
    error: &str,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE secret_replicas SET last_error = ?3 WHERE secret_id = ?1 AND region = ?2",
    )?
    .execute(params![secret_id, region, error])?;
    Ok(())
}

/// Queues change `seq` of a secret for every region it is replicated to; called in the
/// transaction that makes the change.
pub fn fan_out(tx: &Transaction<'_>, seq: i64, secret_id: &[u8]) -> Result<(), StoreError> {
    let author = AUTHOR.with(|author| author.borrow().clone());
    tx.prepare_cached(
        "INSERT INTO replication_outbox (region, seq, secret_id, kind, author)
         SELECT region, ?1, ?2, 'state', ?3 FROM secret_replicas WHERE secret_id = ?2",
    )?
    .execute(params![seq, secret_id, author])?;
    Ok(())
}

thread_local! {
    static AUTHOR: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Runs `write` with every change it fans out attributed to `author` (a team member whose
/// forwarded write this vault applies as the folder's primary), so that each member's
/// copy names who made the change. The write runs on this thread, inside `write`.
pub fn as_author<T>(author: &str, write: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            AUTHOR.with(|slot| slot.borrow_mut().take());
        }
    }
    AUTHOR.with(|slot| *slot.borrow_mut() = Some(author.to_owned()));
    let _reset = Reset;
    write()
}

/// What an outbox entry asks the replica to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutboxKind {
    /// Take the secret's state as it is when sent (plus the version this change made).
    #[default]
    State,
    /// Delete the copy: the region was removed from the secret.
    Remove,
    /// Take the team's state as it is when sent (`secret_id` is the team's id).
    Team,
}

impl OutboxKind {
    fn as_str(self) -> &'static str {
        match self {
            OutboxKind::State => "state",
            OutboxKind::Remove => "remove",
            OutboxKind::Team => "team",
        }
    }

    fn parse(text: &str) -> OutboxKind {
        match text {
            "remove" => OutboxKind::Remove,
            "team" => OutboxKind::Team,
            _ => OutboxKind::State,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutboxRow {
    pub seq: i64,
    pub secret_id: Uuid,
    pub kind: OutboxKind,
    /// The version the change inserted, whose ciphertext the entry carries.
    pub version_id: Option<Uuid>,
    /// The team member who made the change (`None`: this vault).
    pub author: Option<String>,
    /// What changed, for team entries (shown in every member's audit log).
    pub note: Option<String>,
}

pub fn push_outbox(tx: &Transaction<'_>, region: &str, row: &OutboxRow) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO replication_outbox (region, seq, secret_id, kind, version_id, author, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        region,
        row.seq,
        row.secret_id,
        row.kind.as_str(),
        row.version_id,
        row.author,
        row.note
    ])?;
    Ok(())
}

/// Drops a secret's unsent entries for a region (it is being removed from there).
pub fn drop_pending(tx: &Transaction<'_>, region: &str, secret_id: Uuid) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM replication_outbox WHERE region = ?1 AND secret_id = ?2")?
        .execute(params![region, secret_id])?;
    Ok(())
}

/// The entries a region has not acknowledged, in order.
pub fn backlog(conn: &Connection, region: &str, after: i64) -> Result<Vec<OutboxRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, secret_id, kind, version_id, author, note FROM replication_outbox
         WHERE region = ?1 AND seq > ?2 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![region, after], |row| {
        let kind: String = row.get(2)?;
        Ok(OutboxRow {
            seq: row.get(0)?,
            secret_id: row.get(1)?,
            kind: OutboxKind::parse(&kind),
            version_id: row.get(3)?,
            author: row.get(4)?,
            note: row.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Entries of one secret a region has not acknowledged.
pub fn pending_for(conn: &Connection, region: &str, secret_id: Uuid) -> Result<u64, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*) FROM replication_outbox WHERE region = ?1 AND secret_id = ?2",
        )?
        .query_row(params![region, secret_id], |r| r.get(0))?)
}

/// How many entries a region has not acknowledged.
pub fn backlog_len(conn: &Connection, region: &str) -> Result<u64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COUNT(*) FROM replication_outbox WHERE region = ?1")?
        .query_row([region], |r| r.get(0))?)
}

/// Regions with anything unacknowledged.
pub fn regions_with_backlog(conn: &Connection) -> Result<Vec<String>, StoreError> {
    // Only paired regions: an unpaired one is neither contacted nor let in.
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT o.region FROM replication_outbox o JOIN peers p ON p.name = o.region
         ORDER BY o.region",
    )?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn acked(conn: &Connection, region: &str) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT acked FROM replication_peers WHERE region = ?1")?
        .query_row([region], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Records that `region` has applied everything up to `upto`: drops those entries and
/// marks the secrets with nothing left pending as in sync.
pub fn set_acked(
    tx: &Transaction<'_>,
    region: &str,
    upto: i64,
    now: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO replication_peers (region, acked) VALUES (?1, ?2)
         ON CONFLICT (region) DO UPDATE SET acked = max(acked, excluded.acked)",
    )?
    .execute(params![region, upto])?;
    tx.prepare_cached(
        "UPDATE secret_replicas SET synced_at = ?3, last_error = NULL
         WHERE region = ?1 AND secret_id IN
             (SELECT secret_id FROM replication_outbox WHERE region = ?1 AND seq <= ?2)
           AND secret_id NOT IN
             (SELECT secret_id FROM replication_outbox WHERE region = ?1 AND seq > ?2)",
    )?
    .execute(params![region, upto, now])?;
    tx.prepare_cached("DELETE FROM replication_outbox WHERE region = ?1 AND seq <= ?2")?
        .execute(params![region, upto])?;
    Ok(())
}

/// "This secret is a replica of the primary region R, vault V" (on a replica).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaOf {
    pub primary_region: String,
    pub primary_vault: Uuid,
    pub applied_at: i64,
}

pub fn replica_of(conn: &Connection, secret_id: Uuid) -> Result<Option<ReplicaOf>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT primary_region, primary_vault, applied_at FROM secret_replica_of
             WHERE secret_id = ?1",
        )?
        .query_row([secret_id], |row| {
            Ok(ReplicaOf {
                primary_region: row.get(0)?,
                primary_vault: row.get(1)?,
                applied_at: row.get(2)?,
            })
        })
        .optional()?)
}

pub fn set_replica_of(
    tx: &Transaction<'_>,
    secret_id: Uuid,
    of: &ReplicaOf,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO secret_replica_of (secret_id, primary_region, primary_vault, applied_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (secret_id) DO UPDATE SET primary_region = excluded.primary_region,
             primary_vault = excluded.primary_vault, applied_at = excluded.applied_at",
    )?
    .execute(params![
        secret_id,
        of.primary_region,
        of.primary_vault,
        of.applied_at
    ])?;
    Ok(())
}

pub fn delete_replica_of(tx: &Transaction<'_>, secret_id: Uuid) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM secret_replica_of WHERE secret_id = ?1")?
        .execute([secret_id])?;
    Ok(())
}

/// How far the stream from primary `region` is applied here (0: nothing yet).
pub fn applied_upto(conn: &Connection, region: &str) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT applied_upto FROM replication_inbound WHERE region = ?1")?
        .query_row([region], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

pub fn set_applied_upto(tx: &Transaction<'_>, region: &str, upto: i64) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO replication_inbound (region, applied_upto) VALUES (?1, ?2)
         ON CONFLICT (region) DO UPDATE SET applied_upto = excluded.applied_upto",
    )?
    .execute(params![region, upto])?;
    Ok(())
}

/// Deletes a version that the primary no longer has.
pub fn delete_version(tx: &Transaction<'_>, version_id: Uuid) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM secret_versions WHERE id = ?1")?
        .execute([version_id])?;
    Ok(())
}

/// Forgets the link state of a region on both roles: its unsent entries and what it
/// acknowledged (as a primary), and how far its stream is applied (as a replica).
pub fn forget_region(tx: &Transaction<'_>, region: &str) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM replication_outbox WHERE region = ?1")?
        .execute([region])?;
    tx.prepare_cached("DELETE FROM replication_peers WHERE region = ?1")?
        .execute([region])?;
    tx.prepare_cached("DELETE FROM replication_inbound WHERE region = ?1")?
        .execute([region])?;
    tx.prepare_cached("DELETE FROM replication_inbox WHERE region = ?1")?
        .execute([region])?;
    tx.prepare_cached("DELETE FROM replication_peer_cards WHERE region = ?1")?
        .execute([region])?;
    Ok(())
}

/// The secrets replicated to a region.
pub fn secrets_replicated_to(conn: &Connection, region: &str) -> Result<Vec<Uuid>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT secret_id FROM secret_replicas WHERE region = ?1 ORDER BY added_at, secret_id",
    )?;
    let rows = stmt.query_map([region], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// One entry a locked replica kept sealed, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxRow {
    pub region: String,
    pub seq: i64,
    pub prev_seq: i64,
    pub secret_id: [u8; 16],
    pub payload: Vec<u8>,
    /// The certificate the sender presented (its identity's CA), to verify the signature
    /// again at apply against the fingerprint pinned then.
    pub sender_cert: Vec<u8>,
    pub received_at: i64,
}

/// Keeps an entry for the next unlock; one already kept stays as it is.
pub fn push_inbox(tx: &Transaction<'_>, row: &InboxRow) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO replication_inbox
             (region, seq, prev_seq, secret_id, payload, sender_cert, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (region, seq) DO NOTHING",
    )?
    .execute(params![
        row.region,
        row.seq,
        row.prev_seq,
        &row.secret_id[..],
        row.payload,
        row.sender_cert,
        row.received_at
    ])?;
    Ok(())
}

/// The kept entries of primary `region`, in seq order.
pub fn inbox(conn: &Connection, region: &str) -> Result<Vec<InboxRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT region, seq, prev_seq, secret_id, payload, sender_cert, received_at
         FROM replication_inbox WHERE region = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map([region], |r| {
        let secret: Vec<u8> = r.get(3)?;
        Ok((
            InboxRow {
                region: r.get(0)?,
                seq: r.get(1)?,
                prev_seq: r.get(2)?,
                secret_id: [0; 16],
                payload: r.get(4)?,
                sender_cert: r.get(5)?,
                received_at: r.get(6)?,
            },
            secret,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (mut row, secret) = row?;
        row.secret_id = secret
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Missing {
                what: "inbox secret id",
            })?;
        out.push(row);
    }
    Ok(out)
}

/// The primary regions with kept entries.
pub fn inbox_regions(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT DISTINCT region FROM replication_inbox ORDER BY region")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How far the stream from `region` is received: applied, or kept in the inbox.
pub fn received_upto(conn: &Connection, region: &str) -> Result<i64, StoreError> {
    let kept: Option<i64> = conn
        .prepare_cached("SELECT MAX(seq) FROM replication_inbox WHERE region = ?1")?
        .query_row([region], |r| r.get(0))?;
    Ok(applied_upto(conn, region)?.max(kept.unwrap_or(0)))
}

/// Drops kept entries of `region` at or below `upto` (applied, or given up on).
pub fn clear_inbox(tx: &Transaction<'_>, region: &str, upto: i64) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM replication_inbox WHERE region = ?1 AND seq <= ?2")?
        .execute(params![region, upto])?;
    Ok(())
}

/// Remembers the signed hello of `region` (from its bundle acknowledgement).
pub fn set_card(tx: &Transaction<'_>, region: &str, hello: &str) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO replication_peer_cards (region, hello) VALUES (?1, ?2)
         ON CONFLICT (region) DO UPDATE SET hello = excluded.hello",
    )?
    .execute(params![region, hello])?;
    Ok(())
}

/// The signed hello of `region`, if one was imported.
pub fn card(conn: &Connection, region: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT hello FROM replication_peer_cards WHERE region = ?1")?
        .query_row([region], |r| r.get(0))
        .optional()?)
}

/// Whether `seq` is an entry of `region`'s outbox (an acknowledgement must name one).
pub fn in_outbox(conn: &Connection, region: &str, seq: i64) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM replication_outbox WHERE region = ?1 AND seq = ?2")?
        .query_row(params![region, seq], |_| Ok(()))
        .optional()?
        .is_some())
}
