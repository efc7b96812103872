//! Rows of the `access_keys` and `secret_policies` tables: who may use the AWS-compatible
//! API, and the resource policies of secrets.
//!
//! Only sealed secrets are stored here; sealing, MACs and the rules live in
//! `vault::access_keys`.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyRow {
    pub id: String,
    pub name: String,
    pub sealed_secret: Vec<u8>,
    pub policy: Option<String>,
    pub enabled: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub last_used_what: Option<String>,
    pub mac: Vec<u8>,
}

const COLUMNS: &str =
    "id, name, sealed_secret, policy, enabled, created_at, last_used_at, last_used_what, mac";

fn from_row(row: &Row<'_>) -> rusqlite::Result<AccessKeyRow> {
    Ok(AccessKeyRow {
        id: row.get(0)?,
        name: row.get(1)?,
        sealed_secret: row.get(2)?,
        policy: row.get(3)?,
        enabled: row.get(4)?,
        created_at: row.get(5)?,
        last_used_at: row.get(6)?,
        last_used_what: row.get(7)?,
        mac: row.get(8)?,
    })
}

pub fn all(conn: &Connection) -> Result<Vec<AccessKeyRow>, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM access_keys ORDER BY name"))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn by_id(conn: &Connection, id: &str) -> Result<Option<AccessKeyRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM access_keys WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?)
}

pub fn by_name(conn: &Connection, name: &str) -> Result<Option<AccessKeyRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM access_keys WHERE name = ?1"
        ))?
        .query_row([name], from_row)
        .optional()?)
}

pub fn insert(conn: &Connection, row: &AccessKeyRow) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "INSERT INTO access_keys ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))?
    .execute(params![
        row.id,
        row.name,
        row.sealed_secret,
        row.policy,
        row.enabled,
        row.created_at,
        row.last_used_at,
        row.last_used_what,
        row.mac
    ])?;
    Ok(())
}

/// Sets what the MAC covers that can change (enabled flag, policy) and the new MAC.
pub fn update(
    conn: &Connection,
    id: &str,
    enabled: bool,
    policy: Option<&str>,
    mac: &[u8],
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("UPDATE access_keys SET enabled = ?2, policy = ?3, mac = ?4 WHERE id = ?1")?
        .execute(params![id, enabled, policy, mac])?
        > 0)
}

pub fn delete(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM access_keys WHERE id = ?1")?
        .execute([id])?
        > 0)
}

/// Records a use: status only, outside the MAC.
pub fn record_use(conn: &Connection, id: &str, at: i64, what: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE access_keys SET last_used_at = ?2, last_used_what = ?3 WHERE id = ?1",
    )?
    .execute(params![id, at, what])?;
    Ok(())
}

/// A secret's resource policy and its MAC.
pub fn secret_policy(
    conn: &Connection,
    secret_id: uuid::Uuid,
) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT policy, mac FROM secret_policies WHERE secret_id = ?1")?
        .query_row([secret_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?)
}

pub fn set_secret_policy(
    conn: &Connection,
    secret_id: uuid::Uuid,
    policy: &str,
    mac: &[u8],
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO secret_policies (secret_id, policy, mac) VALUES (?1, ?2, ?3)
         ON CONFLICT (secret_id) DO UPDATE SET policy = excluded.policy, mac = excluded.mac",
    )?
    .execute(params![secret_id, policy, mac])?;
    Ok(())
}

pub fn delete_secret_policy(conn: &Connection, secret_id: uuid::Uuid) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM secret_policies WHERE secret_id = ?1")?
        .execute([secret_id])?;
    Ok(())
}
