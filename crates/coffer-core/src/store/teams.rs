//! Rows of team folders: which secrets lie under a folder, and which of them a removed
//! member could read (the team's state itself is a MACed setting, see `vault::team`).

use rusqlite::{params, Connection, Transaction};
use uuid::Uuid;

use super::StoreError;

/// The ids and names of every secret whose name starts with `prefix` (compared as
/// text, not with LIKE, so `_` and `%` in names mean themselves).
pub fn secrets_under(conn: &Connection, prefix: &str) -> Result<Vec<(Uuid, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name FROM secrets WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name",
    )?;
    let rows = stmt.query_map([prefix], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A secret a removed member could read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposureRow {
    pub secret_id: Uuid,
    pub secret_name: String,
    pub member: String,
    pub since: i64,
    /// It has a rotator: rotate it now.
    pub rotate: bool,
    /// When its current version was made (`None`: it has none).
    pub current_created_at: Option<i64>,
}

pub fn record_exposure(
    tx: &Transaction<'_>,
    secret_id: Uuid,
    member: &str,
    since: i64,
    rotate: bool,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO secret_exposures (secret_id, member, since, rotate) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (secret_id, member) DO UPDATE SET since = excluded.since,
             rotate = excluded.rotate",
    )?
    .execute(params![secret_id, member, since, rotate])?;
    Ok(())
}

pub fn exposures(conn: &Connection) -> Result<Vec<ExposureRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.secret_id, s.name, e.member, e.since, e.rotate,
                (SELECT v.created_at FROM staging_labels l JOIN secret_versions v ON v.id = l.version_id
                 WHERE l.secret_id = e.secret_id AND l.label = ?1)
         FROM secret_exposures e JOIN secrets s ON s.id = e.secret_id
         ORDER BY e.since DESC, s.name, e.member",
    )?;
    let rows = stmt.query_map([crate::names::StagingLabel::CURRENT], |r| {
        Ok(ExposureRow {
            secret_id: r.get(0)?,
            secret_name: r.get(1)?,
            member: r.get(2)?,
            since: r.get(3)?,
            rotate: r.get(4)?,
            current_created_at: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
