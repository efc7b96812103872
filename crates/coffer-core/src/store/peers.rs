//! Rows of the `peers` table: the regions this vault is paired with.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRow {
    pub name: String,
    pub url: String,
    pub fingerprint: Vec<u8>,
    pub added_at: i64,
    pub last_contact: Option<i64>,
    pub key_exchange: Option<String>,
    pub last_error: Option<String>,
    pub mac: Vec<u8>,
}

const COLUMNS: &str =
    "name, url, fingerprint, added_at, last_contact, key_exchange, last_error, mac";

fn from_row(row: &Row<'_>) -> rusqlite::Result<PeerRow> {
    Ok(PeerRow {
        name: row.get(0)?,
        url: row.get(1)?,
        fingerprint: row.get(2)?,
        added_at: row.get(3)?,
        last_contact: row.get(4)?,
        key_exchange: row.get(5)?,
        last_error: row.get(6)?,
        mac: row.get(7)?,
    })
}

pub fn all(conn: &Connection) -> Result<Vec<PeerRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM peers ORDER BY name"))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn by_name(conn: &Connection, name: &str) -> Result<Option<PeerRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM peers WHERE name = ?1"))?
        .query_row([name], from_row)
        .optional()?)
}

pub fn count(conn: &Connection) -> Result<u64, StoreError> {
    Ok(conn.query_row("SELECT COUNT(*) FROM peers", [], |row| row.get(0))?)
}

pub fn insert(conn: &Connection, row: &PeerRow) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "INSERT INTO peers ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))?
    .execute(params![
        row.name,
        row.url,
        row.fingerprint,
        row.added_at,
        row.last_contact,
        row.key_exchange,
        row.last_error,
        row.mac
    ])?;
    Ok(())
}

pub fn delete(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM peers WHERE name = ?1")?
        .execute([name])?
        > 0)
}

/// Records the outcome of a contact: status only, outside the MAC.
pub fn record_contact(
    conn: &Connection,
    name: &str,
    at: Option<i64>,
    key_exchange: Option<&str>,
    error: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE peers SET last_contact = COALESCE(?2, last_contact),
                          key_exchange = COALESCE(?3, key_exchange),
                          last_error = ?4
         WHERE name = ?1",
    )?
    .execute(params![name, at, key_exchange, error])?;
    Ok(())
}
