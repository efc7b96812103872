//! Rows of secret rotation (configuration and the rotation in progress), its history,
//! and keys' automatic rotation periods.

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use uuid::Uuid;

use super::StoreError;

/// A secret's rotation row. `rotator` is the rotator configuration as JSON (no values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationRow {
    pub secret_id: Uuid,
    pub enabled: bool,
    pub schedule: Option<String>,
    pub window_ms: Option<i64>,
    pub rotator: String,
    /// HMAC of the rotator configuration under the vault's audit key.
    pub rotator_mac: Vec<u8>,
    pub configured_at: i64,
    pub last_rotated_at: Option<i64>,
    pub next_rotation_at: Option<i64>,
    pub token: Option<String>,
    pub step: Option<String>,
    pub started_at: Option<i64>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub next_retry_at: Option<i64>,
}

const COLUMNS: &str = "secret_id, enabled, schedule, window_ms, rotator, configured_at,
    last_rotated_at, next_rotation_at, token, step, started_at, attempts, last_error,
    last_error_at, next_retry_at, rotator_mac";

fn from_row(row: &Row<'_>) -> rusqlite::Result<RotationRow> {
    Ok(RotationRow {
        secret_id: row.get(0)?,
        enabled: row.get(1)?,
        schedule: row.get(2)?,
        window_ms: row.get(3)?,
        rotator: row.get(4)?,
        configured_at: row.get(5)?,
        last_rotated_at: row.get(6)?,
        next_rotation_at: row.get(7)?,
        token: row.get(8)?,
        step: row.get(9)?,
        started_at: row.get(10)?,
        attempts: row.get(11)?,
        last_error: row.get(12)?,
        last_error_at: row.get(13)?,
        next_retry_at: row.get(14)?,
        rotator_mac: row.get(15)?,
    })
}

pub fn get(conn: &Connection, secret_id: Uuid) -> Result<Option<RotationRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM secret_rotation WHERE secret_id = ?1"
        ))?
        .query_row([secret_id], from_row)
        .optional()?)
}

/// Inserts or replaces a secret's whole rotation row.
pub fn put(tx: &Transaction<'_>, row: &RotationRow, change_seq: i64) -> Result<(), StoreError> {
    tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO secret_rotation ({COLUMNS}, change_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
    ))?
    .execute(params![
        row.secret_id,
        row.enabled,
        row.schedule,
        row.window_ms,
        row.rotator,
        row.configured_at,
        row.last_rotated_at,
        row.next_rotation_at,
        row.token,
        row.step,
        row.started_at,
        row.attempts,
        row.last_error,
        row.last_error_at,
        row.next_retry_at,
        row.rotator_mac,
        change_seq
    ])?;
    Ok(())
}

/// Every rotation row of a live secret, with the secret's name.
pub fn all(conn: &Connection) -> Result<Vec<(String, RotationRow)>, StoreError> {
    let columns = COLUMNS
        .split(',')
        .map(|c| format!("r.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT s.name, {columns} FROM secret_rotation r JOIN secrets s ON s.id = r.secret_id
         WHERE s.purge_at IS NULL ORDER BY s.name"
    ))?;
    let rows = stmt.query_map([], |r| {
        let name: String = r.get(0)?;
        // Shift the columns by one for `from_row`.
        Ok((
            name,
            RotationRow {
                secret_id: r.get(1)?,
                enabled: r.get(2)?,
                schedule: r.get(3)?,
                window_ms: r.get(4)?,
                rotator: r.get(5)?,
                configured_at: r.get(6)?,
                last_rotated_at: r.get(7)?,
                next_rotation_at: r.get(8)?,
                token: r.get(9)?,
                step: r.get(10)?,
                started_at: r.get(11)?,
                attempts: r.get(12)?,
                last_error: r.get(13)?,
                last_error_at: r.get(14)?,
                next_retry_at: r.get(15)?,
                rotator_mac: r.get(16)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One attempt of a rotation, for the history the app shows.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub at: i64,
    pub token: String,
    pub step: String,
    pub result: String,
    pub version_id: Option<Uuid>,
    pub error: Option<String>,
}

pub fn add_history(
    tx: &Transaction<'_>,
    secret_id: Uuid,
    row: &HistoryRow,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO rotation_history (secret_id, at, token, step, result, version_id, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        secret_id,
        row.at,
        row.token,
        row.step,
        row.result,
        row.version_id,
        row.error
    ])?;
    // Keep the newest 100 entries per secret.
    tx.prepare_cached(
        "DELETE FROM rotation_history WHERE secret_id = ?1 AND seq NOT IN (
            SELECT seq FROM rotation_history WHERE secret_id = ?1 ORDER BY seq DESC LIMIT 100)",
    )?
    .execute([secret_id])?;
    Ok(())
}

pub fn history(
    conn: &Connection,
    secret_id: Uuid,
    limit: u32,
) -> Result<Vec<HistoryRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, token, step, result, version_id, error FROM rotation_history
         WHERE secret_id = ?1 ORDER BY seq DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![secret_id, limit], |r| {
        Ok(HistoryRow {
            at: r.get(0)?,
            token: r.get(1)?,
            step: r.get(2)?,
            result: r.get(3)?,
            version_id: r.get(4)?,
            error: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A key's automatic rotation period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRotationRow {
    pub key_id: Uuid,
    pub period_days: u32,
    pub enabled_at: i64,
    pub next_rotation_at: i64,
}

pub fn key_rotation(conn: &Connection, key_id: Uuid) -> Result<Option<KeyRotationRow>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT key_id, period_days, enabled_at, next_rotation_at FROM key_rotation WHERE key_id = ?1",
        )?
        .query_row([key_id], |r| {
            Ok(KeyRotationRow {
                key_id: r.get(0)?,
                period_days: r.get(1)?,
                enabled_at: r.get(2)?,
                next_rotation_at: r.get(3)?,
            })
        })
        .optional()?)
}

pub fn all_key_rotations(conn: &Connection) -> Result<Vec<KeyRotationRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT key_id, period_days, enabled_at, next_rotation_at FROM key_rotation ORDER BY next_rotation_at",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(KeyRotationRow {
            key_id: r.get(0)?,
            period_days: r.get(1)?,
            enabled_at: r.get(2)?,
            next_rotation_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn put_key_rotation(
    tx: &Transaction<'_>,
    row: &KeyRotationRow,
    change_seq: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO key_rotation (key_id, period_days, enabled_at, next_rotation_at, change_seq)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        row.key_id,
        row.period_days,
        row.enabled_at,
        row.next_rotation_at,
        change_seq
    ])?;
    Ok(())
}

pub fn delete_key_rotation(tx: &Transaction<'_>, key_id: Uuid) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached("DELETE FROM key_rotation WHERE key_id = ?1")?
        .execute([key_id])?
        > 0)
}

/// A wrapped data key that is not under a key's newest version (or not under the
/// key its secret now uses).
#[derive(Debug, Clone)]
pub struct StaleDataKey {
    pub version_id: Uuid,
    pub secret_id: Uuid,
    pub key_id: Uuid,
    pub key_version: u32,
    pub wrapped_dek: Vec<u8>,
}

fn stale_from_row(r: &Row<'_>) -> rusqlite::Result<StaleDataKey> {
    Ok(StaleDataKey {
        version_id: r.get(0)?,
        secret_id: r.get(1)?,
        key_id: r.get(2)?,
        key_version: r.get(3)?,
        wrapped_dek: r.get(4)?,
    })
}

/// Up to `limit` data keys wrapped under versions of `key_id` older than `newest`.
pub fn stale_under_key(
    conn: &Connection,
    key_id: Uuid,
    newest: u32,
    limit: u32,
) -> Result<Vec<StaleDataKey>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, secret_id, key_id, key_version, wrapped_dek FROM secret_versions
         WHERE key_id = ?1 AND key_version < ?2 LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![key_id, newest, limit], stale_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many data keys are wrapped under versions of `key_id` older than `newest`.
pub fn count_stale_under_key(
    conn: &Connection,
    key_id: Uuid,
    newest: u32,
) -> Result<u64, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM secret_versions WHERE key_id = ?1 AND key_version < ?2",
        )?
        .query_row(params![key_id, newest], |r| r.get(0))?)
}

/// The data keys of one secret that are not under (`key_id`, `newest`).
pub fn stale_of_secret(
    conn: &Connection,
    secret_id: Uuid,
    key_id: Uuid,
    newest: u32,
) -> Result<Vec<StaleDataKey>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, secret_id, key_id, key_version, wrapped_dek FROM secret_versions
         WHERE secret_id = ?1 AND (key_id != ?2 OR key_version != ?3)",
    )?;
    let rows = stmt.query_map(params![secret_id, key_id, newest], stale_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Stores a re-wrapped data key; the value's ciphertext is not touched.
pub fn set_wrapped_dek(
    tx: &Transaction<'_>,
    version_id: Uuid,
    key_id: Uuid,
    key_version: u32,
    wrapped_dek: &[u8],
    change_seq: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE secret_versions SET key_id = ?2, key_version = ?3, wrapped_dek = ?4, change_seq = ?5
         WHERE id = ?1",
    )?
    .execute(params![version_id, key_id, key_version, wrapped_dek, change_seq])?;
    Ok(())
}

/// How many data keys one key version wraps.
pub fn count_under_key_version(
    conn: &Connection,
    key_id: Uuid,
    version: u32,
) -> Result<u64, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM secret_versions WHERE key_id = ?1 AND key_version = ?2",
        )?
        .query_row(params![key_id, version], |r| r.get(0))?)
}

/// Deletes a key version's row: its sealed blob and its recovery wrapping are gone.
pub fn delete_key_version(
    tx: &Transaction<'_>,
    key_id: Uuid,
    version: u32,
) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached("DELETE FROM key_versions WHERE key_id = ?1 AND version = ?2")?
        .execute(params![key_id, version])?
        > 0)
}
