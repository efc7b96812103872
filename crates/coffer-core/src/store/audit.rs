//! Rows of the audit log. The chain's MACs are computed by the vault; this module only
//! stores and reads them.

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use uuid::Uuid;

use super::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub uid: u32,
    pub pid: u32,
    pub process: String,
    pub operation: String,
    pub secret_id: Option<Uuid>,
    pub secret_name: Option<String>,
    pub version_id: Option<Uuid>,
    pub key_id: Option<Uuid>,
    pub result: String,
    pub detail: String,
    /// None for entries written while the vault was locked (failed unlocks); they are
    /// chained in at the next successful unlock.
    pub mac: Option<Vec<u8>>,
}

const COLUMNS: &str = "seq, at, uid, pid, process, operation, secret_id, secret_name, version_id, key_id, result, detail, mac";

fn from_row(row: &Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        seq: row.get(0)?,
        at: row.get(1)?,
        uid: row.get(2)?,
        pid: row.get(3)?,
        process: row.get(4)?,
        operation: row.get(5)?,
        secret_id: row.get(6)?,
        secret_name: row.get(7)?,
        version_id: row.get(8)?,
        key_id: row.get(9)?,
        result: row.get(10)?,
        detail: row.get(11)?,
        mac: row.get(12)?,
    })
}

pub fn insert(tx: &Transaction<'_>, row: &AuditRow) -> Result<(), StoreError> {
    tx.prepare_cached(&format!(
        "INSERT INTO audit_log ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    ))?
    .execute(params![
        row.seq,
        row.at,
        row.uid,
        row.pid,
        row.process,
        row.operation,
        row.secret_id,
        row.secret_name,
        row.version_id,
        row.key_id,
        row.result,
        row.detail,
        row.mac
    ])?;
    Ok(())
}

pub fn set_mac(tx: &Transaction<'_>, seq: i64, mac: &[u8]) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE audit_log SET mac = ?2 WHERE seq = ?1")?
        .execute(params![seq, mac])?;
    Ok(())
}

/// Where the chain ends: the newest entry that carries a MAC (sequence number and MAC),
/// and the next free sequence number.
pub struct ChainTail {
    pub last_chained: Option<(i64, Vec<u8>)>,
    pub next_seq: i64,
}

pub fn tail(conn: &Connection) -> Result<ChainTail, StoreError> {
    let last_macced = conn
        .prepare_cached(
            "SELECT seq, mac FROM audit_log WHERE mac IS NOT NULL ORDER BY seq DESC LIMIT 1",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let max: Option<i64> = conn
        .prepare_cached("SELECT max(seq) FROM audit_log")?
        .query_row([], |r| r.get(0))?;
    Ok(ChainTail {
        last_chained: last_macced,
        next_seq: max.unwrap_or(0) + 1,
    })
}

/// Entries without a MAC after `after_seq`, in order.
pub fn unchained_after(conn: &Connection, after_seq: i64) -> Result<Vec<AuditRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM audit_log WHERE seq > ?1 AND mac IS NULL ORDER BY seq"
    ))?;
    let rows = stmt.query_map([after_seq], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Visits every entry in order without loading the whole log.
pub fn for_each(
    conn: &Connection,
    mut visit: impl FnMut(AuditRow) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq"))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        visit(from_row(row)?)?;
    }
    Ok(())
}

/// Entries newest first, optionally for one secret (by name, so purged secrets' history
/// stays searchable), at most `limit`, before `before_seq`.
pub fn list(
    conn: &Connection,
    secret_name: Option<&str>,
    before_seq: Option<i64>,
    limit: u32,
) -> Result<Vec<AuditRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM audit_log
         WHERE (?1 IS NULL OR secret_name = ?1) AND (?2 IS NULL OR seq < ?2)
         ORDER BY seq DESC LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![secret_name, before_seq, limit], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}
