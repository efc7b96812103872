//! Rows of keys (KEKs), their aliases and their sealed versions.

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use uuid::Uuid;

use super::StoreError;

#[derive(Debug, Clone)]
pub struct KeyRow {
    pub id: Uuid,
    pub description: String,
    pub state: String,
    pub is_default: bool,
    pub created_at: i64,
    pub deletion_at: Option<i64>,
    /// The row's MAC under the vault's row key (empty until the vault computes it).
    pub mac: Vec<u8>,
}

const KEY_COLUMNS: &str = "id, description, state, is_default, created_at, deletion_at, mac";

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok(KeyRow {
        id: row.get(0)?,
        description: row.get(1)?,
        state: row.get(2)?,
        is_default: row.get(3)?,
        created_at: row.get(4)?,
        deletion_at: row.get(5)?,
        mac: row.get(6)?,
    })
}

/// One sealed version of a key, as stored.
#[derive(Debug, Clone)]
pub struct KeyVersionRow {
    pub key_id: Uuid,
    pub version: u32,
    /// The TPM-sealed KEK (`SealedKek::to_bytes`).
    pub sealed: Vec<u8>,
    /// The same KEK wrapped to the recovery public key.
    pub recovery_wrapped: Vec<u8>,
    /// The vault's audit key wrapped under this KEK, so any unsealed key can audit.
    pub wrapped_audit_key: Vec<u8>,
    pub created_at: i64,
}

fn key_version_from_row(row: &Row<'_>) -> rusqlite::Result<KeyVersionRow> {
    Ok(KeyVersionRow {
        key_id: row.get(0)?,
        version: row.get(1)?,
        sealed: row.get(2)?,
        recovery_wrapped: row.get(3)?,
        wrapped_audit_key: row.get(4)?,
        created_at: row.get(5)?,
    })
}

const KEY_VERSION_COLUMNS: &str =
    "key_id, version, sealed, recovery_wrapped, wrapped_audit_key, created_at";

pub fn insert_key(tx: &Transaction<'_>, row: &KeyRow, change_seq: i64) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO keys (id, description, state, is_default, created_at, deletion_at, change_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        row.id,
        row.description,
        row.state,
        row.is_default,
        row.created_at,
        row.deletion_at,
        change_seq
    ])?;
    Ok(())
}

pub fn update_key(tx: &Transaction<'_>, row: &KeyRow, change_seq: i64) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE keys SET description = ?2, state = ?3, deletion_at = ?4, change_seq = ?5 WHERE id = ?1",
    )?
    .execute(params![row.id, row.description, row.state, row.deletion_at, change_seq])?;
    Ok(())
}

/// Stores a key row's MAC, computed by the vault over the row and its aliases.
pub fn set_key_mac(tx: &Transaction<'_>, id: Uuid, mac: &[u8]) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE keys SET mac = ?2 WHERE id = ?1")?
        .execute(params![id, mac])?;
    Ok(())
}

pub fn delete_key(tx: &Transaction<'_>, id: Uuid) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM keys WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

pub fn key_by_id(conn: &Connection, id: Uuid) -> Result<Option<KeyRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM keys WHERE id = ?1"))?
        .query_row([id], key_from_row)
        .optional()?)
}

pub fn default_key(conn: &Connection) -> Result<KeyRow, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {KEY_COLUMNS} FROM keys WHERE is_default = 1"
    ))?
    .query_row([], key_from_row)
    .optional()?
    .ok_or(StoreError::Missing {
        what: "default key",
    })
}

pub fn key_by_alias(conn: &Connection, alias: &str) -> Result<Option<KeyRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM keys WHERE id = (SELECT key_id FROM key_aliases WHERE alias = ?1)"
        ))?
        .query_row([alias], key_from_row)
        .optional()?)
}

pub fn all_keys(conn: &Connection) -> Result<Vec<KeyRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {KEY_COLUMNS} FROM keys ORDER BY created_at, id"
    ))?;
    let rows = stmt.query_map([], key_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Keys whose deletion date has passed.
pub fn keys_due_for_deletion(conn: &Connection, now: i64) -> Result<Vec<Uuid>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM keys WHERE state = 'pending_deletion' AND deletion_at <= ?1",
    )?;
    let rows = stmt.query_map([now], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn aliases(conn: &Connection, key_id: Uuid) -> Result<Vec<String>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT alias FROM key_aliases WHERE key_id = ?1 ORDER BY alias")?;
    let rows = stmt.query_map([key_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn alias_target(conn: &Connection, alias: &str) -> Result<Option<Uuid>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT key_id FROM key_aliases WHERE alias = ?1")?
        .query_row([alias], |r| r.get(0))
        .optional()?)
}

pub fn insert_alias(tx: &Transaction<'_>, alias: &str, key_id: Uuid) -> Result<(), StoreError> {
    tx.prepare_cached("INSERT INTO key_aliases (alias, key_id) VALUES (?1, ?2)")?
        .execute(params![alias, key_id])?;
    Ok(())
}

pub fn delete_alias(tx: &Transaction<'_>, alias: &str) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached("DELETE FROM key_aliases WHERE alias = ?1")?
        .execute([alias])?
        > 0)
}

pub fn insert_key_version(tx: &Transaction<'_>, row: &KeyVersionRow) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO key_versions (key_id, version, sealed, recovery_wrapped, wrapped_audit_key, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        row.key_id,
        row.version,
        row.sealed,
        row.recovery_wrapped,
        row.wrapped_audit_key,
        row.created_at
    ])?;
    Ok(())
}

/// Replaces a version's sealed blob (after recovery or a PIN change).
pub fn reseal_key_version(
    tx: &Transaction<'_>,
    key_id: Uuid,
    version: u32,
    sealed: &[u8],
) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE key_versions SET sealed = ?3 WHERE key_id = ?1 AND version = ?2")?
        .execute(params![key_id, version, sealed])?;
    Ok(())
}

pub fn key_version(
    conn: &Connection,
    key_id: Uuid,
    version: u32,
) -> Result<Option<KeyVersionRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {KEY_VERSION_COLUMNS} FROM key_versions WHERE key_id = ?1 AND version = ?2"
        ))?
        .query_row(params![key_id, version], key_version_from_row)
        .optional()?)
}

pub fn newest_key_version(
    conn: &Connection,
    key_id: Uuid,
) -> Result<Option<KeyVersionRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {KEY_VERSION_COLUMNS} FROM key_versions WHERE key_id = ?1 ORDER BY version DESC LIMIT 1"
        ))?
        .query_row([key_id], key_version_from_row)
        .optional()?)
}

pub fn key_versions(conn: &Connection, key_id: Uuid) -> Result<Vec<KeyVersionRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {KEY_VERSION_COLUMNS} FROM key_versions WHERE key_id = ?1 ORDER BY version"
    ))?;
    let rows = stmt.query_map([key_id], key_version_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn all_key_versions(conn: &Connection) -> Result<Vec<KeyVersionRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {KEY_VERSION_COLUMNS} FROM key_versions ORDER BY key_id, version"
    ))?;
    let rows = stmt.query_map([], key_version_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Sets a key's description (not part of its MAC: it steers nothing).
pub fn set_description(
    conn: &Connection,
    key_id: Uuid,
    description: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE keys SET description = ?2 WHERE id = ?1")?
        .execute(rusqlite::params![key_id, description])?;
    Ok(())
}

pub fn tags(conn: &Connection, key_id: Uuid) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT key, value FROM key_tags WHERE key_id = ?1 ORDER BY key")?;
    let rows = stmt.query_map([key_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn set_tag(conn: &Connection, key_id: Uuid, key: &str, value: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO key_tags (key_id, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (key_id, key) DO UPDATE SET value = excluded.value",
    )?
    .execute(rusqlite::params![key_id, key, value])?;
    Ok(())
}

pub fn remove_tag(conn: &Connection, key_id: Uuid, key: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM key_tags WHERE key_id = ?1 AND key = ?2")?
        .execute(rusqlite::params![key_id, key])?;
    Ok(())
}

pub fn policy(conn: &Connection, key_id: Uuid) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT policy, mac FROM key_policies WHERE key_id = ?1")?
        .query_row([key_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?)
}

pub fn set_policy(
    conn: &Connection,
    key_id: Uuid,
    policy: &str,
    mac: &[u8],
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO key_policies (key_id, policy, mac) VALUES (?1, ?2, ?3)
         ON CONFLICT (key_id) DO UPDATE SET policy = excluded.policy, mac = excluded.mac",
    )?
    .execute(rusqlite::params![key_id, policy, mac])?;
    Ok(())
}
