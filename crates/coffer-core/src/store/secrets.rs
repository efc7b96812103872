//! Rows of secrets, their versions, staging labels and tags.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use uuid::Uuid;

use super::StoreError;

/// A secret's metadata row.
#[derive(Debug, Clone)]
pub struct SecretRow {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub key_id: Uuid,
    pub created_at: i64,
    pub changed_at: i64,
    pub accessed_day: Option<i64>,
    pub deleted_at: Option<i64>,
    pub purge_at: Option<i64>,
    /// The row's MAC under the audit key (empty until the vault computes it).
    pub mac: Vec<u8>,
}

const SECRET_COLUMNS: &str =
    "id, name, description, key_id, created_at, changed_at, accessed_day, deleted_at, purge_at, mac";

fn secret_from_row(row: &Row<'_>) -> rusqlite::Result<SecretRow> {
    Ok(SecretRow {
        id: row.get(0)?,
        name: row.get(1)?,
        description: row.get(2)?,
        key_id: row.get(3)?,
        created_at: row.get(4)?,
        changed_at: row.get(5)?,
        accessed_day: row.get(6)?,
        deleted_at: row.get(7)?,
        purge_at: row.get(8)?,
        mac: row.get(9)?,
    })
}

/// A version row: the only place a value's ciphertext and its wrapped data key live.
#[derive(Debug, Clone)]
pub struct VersionRow {
    pub id: Uuid,
    pub secret_id: Uuid,
    pub created_at: i64,
    pub key_id: Uuid,
    pub key_version: u32,
    pub wrapped_dek: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub client_token: Option<String>,
    /// The vault whose id the value ciphertext is bound to, when it is not this one: a
    /// version received from a primary region keeps the primary's ciphertext as it is.
    pub origin_vault: Option<Uuid>,
}

const VERSION_COLUMNS: &str =
    "v.id, v.secret_id, v.created_at, v.key_id, v.key_version, v.wrapped_dek, v.ciphertext, v.client_token, v.origin_vault";

fn version_from_row(row: &Row<'_>) -> rusqlite::Result<VersionRow> {
    Ok(VersionRow {
        id: row.get(0)?,
        secret_id: row.get(1)?,
        created_at: row.get(2)?,
        key_id: row.get(3)?,
        key_version: row.get(4)?,
        wrapped_dek: row.get(5)?,
        ciphertext: row.get(6)?,
        client_token: row.get(7)?,
        origin_vault: row.get(8)?,
    })
}

pub fn find_by_name(conn: &Connection, name: &str) -> Result<Option<SecretRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {SECRET_COLUMNS} FROM secrets WHERE name = ?1"
        ))?
        .query_row([name], secret_from_row)
        .optional()?)
}

pub fn insert_secret(
    tx: &Transaction<'_>,
    row: &SecretRow,
    change_seq: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO secrets (id, name, description, key_id, created_at, changed_at, change_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        row.id,
        row.name,
        row.description,
        row.key_id,
        row.created_at,
        row.changed_at,
        change_seq
    ])?;
    Ok(())
}

/// Writes back the mutable metadata of a secret.
pub fn update_secret(
    tx: &Transaction<'_>,
    row: &SecretRow,
    change_seq: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE secrets SET description = ?2, key_id = ?3, changed_at = ?4, deleted_at = ?5,
                purge_at = ?6, change_seq = ?7
         WHERE id = ?1",
    )?
    .execute(params![
        row.id,
        row.description,
        row.key_id,
        row.changed_at,
        row.deleted_at,
        row.purge_at,
        change_seq
    ])?;
    Ok(())
}

/// Stores a secret row's MAC, computed by the vault over the row and its labels.
pub fn set_secret_mac(tx: &Transaction<'_>, id: Uuid, mac: &[u8]) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE secrets SET mac = ?2 WHERE id = ?1")?
        .execute(params![id, mac])?;
    Ok(())
}

/// A secret row by id.
pub fn secret_by_id(conn: &Connection, id: Uuid) -> Result<Option<SecretRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {SECRET_COLUMNS} FROM secrets WHERE id = ?1"
        ))?
        .query_row([id], secret_from_row)
        .optional()?)
}

/// The ids of every secret, for computing MACs of rows written before they existed.
pub fn all_secret_ids(conn: &Connection) -> Result<Vec<Uuid>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT id FROM secrets")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Removes a secret with all its versions, labels and tags. `secure_delete` overwrites
/// the freed pages, so the wrapped data keys are gone from the file, not just unlinked.
pub fn purge_secret(tx: &Transaction<'_>, id: Uuid) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM secrets WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Secrets whose recovery window has ended.
pub fn expired(conn: &Connection, now: i64) -> Result<Vec<(Uuid, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name FROM secrets WHERE purge_at IS NOT NULL AND purge_at <= ?1",
    )?;
    let rows = stmt.query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn set_accessed_day(tx: &Transaction<'_>, id: Uuid, day: i64) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE secrets SET accessed_day = ?2 WHERE id = ?1 AND (accessed_day IS NULL OR accessed_day < ?2)",
    )?
    .execute(params![id, day])?;
    Ok(())
}

pub fn tags(conn: &Connection, secret_id: Uuid) -> Result<BTreeMap<String, String>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT key, value FROM secret_tags WHERE secret_id = ?1")?;
    let rows = stmt.query_map([secret_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn set_tag(
    tx: &Transaction<'_>,
    secret_id: Uuid,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO secret_tags (secret_id, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (secret_id, key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![secret_id, key, value])?;
    Ok(())
}

pub fn remove_tag(tx: &Transaction<'_>, secret_id: Uuid, key: &str) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM secret_tags WHERE secret_id = ?1 AND key = ?2")?
        .execute(params![secret_id, key])?;
    Ok(())
}

pub fn insert_version(
    tx: &Transaction<'_>,
    row: &VersionRow,
    change_seq: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO secret_versions
            (id, secret_id, created_at, key_id, key_version, wrapped_dek, ciphertext, client_token, change_seq, origin_vault)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        row.id,
        row.secret_id,
        row.created_at,
        row.key_id,
        row.key_version,
        row.wrapped_dek,
        row.ciphertext,
        row.client_token,
        change_seq,
        row.origin_vault
    ])?;
    Ok(())
}

/// Everything a read needs, from one query: the secret, the version, its labels and the
/// state of the key that wrapped it.
#[derive(Debug, Clone)]
pub struct ReadRow {
    pub secret_name: String,
    pub purge_at: Option<i64>,
    pub key_state: String,
    /// The version's labels, newline-separated.
    pub labels: Option<String>,
    pub version: VersionRow,
}

const READ_SELECT: &str = "SELECT s.name, s.purge_at, k.state,
        (SELECT group_concat(l2.label, char(10)) FROM staging_labels l2 WHERE l2.version_id = v.id),
        v.id, v.secret_id, v.created_at, v.key_id, v.key_version, v.wrapped_dek, v.ciphertext, v.client_token,
        v.origin_vault
    FROM secrets s";

fn read_from_row(row: &Row<'_>) -> rusqlite::Result<ReadRow> {
    Ok(ReadRow {
        secret_name: row.get(0)?,
        purge_at: row.get(1)?,
        key_state: row.get(2)?,
        labels: row.get(3)?,
        version: VersionRow {
            id: row.get(4)?,
            secret_id: row.get(5)?,
            created_at: row.get(6)?,
            key_id: row.get(7)?,
            key_version: row.get(8)?,
            wrapped_dek: row.get(9)?,
            ciphertext: row.get(10)?,
            client_token: row.get(11)?,
            origin_vault: row.get(12)?,
        },
    })
}

/// The hot path of `get`: the version a label points at, by secret name.
pub fn read_by_label(
    conn: &Connection,
    name: &str,
    label: &str,
) -> Result<Option<ReadRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "{READ_SELECT}
             JOIN staging_labels l ON l.secret_id = s.id AND l.label = ?2
             JOIN secret_versions v ON v.id = l.version_id AND v.secret_id = s.id
             JOIN keys k ON k.id = v.key_id
             WHERE s.name = ?1"
        ))?
        .query_row(params![name, label], read_from_row)
        .optional()?)
}

/// `get` by version id, by secret name.
pub fn read_by_id(
    conn: &Connection,
    name: &str,
    version_id: Uuid,
) -> Result<Option<ReadRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "{READ_SELECT}
             JOIN secret_versions v ON v.secret_id = s.id AND v.id = ?2
             JOIN keys k ON k.id = v.key_id
             WHERE s.name = ?1"
        ))?
        .query_row(params![name, version_id], read_from_row)
        .optional()?)
}

/// The version a label points at.
pub fn version_by_label(
    conn: &Connection,
    secret_id: Uuid,
    label: &str,
) -> Result<Option<VersionRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {VERSION_COLUMNS} FROM staging_labels l
             JOIN secret_versions v ON v.id = l.version_id AND v.secret_id = l.secret_id
             WHERE l.secret_id = ?1 AND l.label = ?2"
        ))?
        .query_row(params![secret_id, label], version_from_row)
        .optional()?)
}

pub fn version_by_id(
    conn: &Connection,
    secret_id: Uuid,
    version_id: Uuid,
) -> Result<Option<VersionRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {VERSION_COLUMNS} FROM secret_versions v WHERE v.secret_id = ?1 AND v.id = ?2"
        ))?
        .query_row(params![secret_id, version_id], version_from_row)
        .optional()?)
}

/// Whether any secret has a version with this id.
pub fn version_id_taken(conn: &Connection, version_id: Uuid) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM secret_versions WHERE id = ?1")?
        .query_row([version_id], |_| Ok(()))
        .optional()?
        .is_some())
}

pub fn version_by_token(
    conn: &Connection,
    secret_id: Uuid,
    token: &str,
) -> Result<Option<VersionRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {VERSION_COLUMNS} FROM secret_versions v WHERE v.secret_id = ?1 AND v.client_token = ?2"
        ))?
        .query_row(params![secret_id, token], version_from_row)
        .optional()?)
}

/// Every version of a secret, newest first, without ciphertext.
pub fn versions(conn: &Connection, secret_id: Uuid) -> Result<Vec<VersionMeta>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, created_at, key_id, key_version FROM secret_versions
         WHERE secret_id = ?1 ORDER BY created_at DESC, rowid DESC",
    )?;
    let rows = stmt.query_map([secret_id], |r| {
        Ok(VersionMeta {
            id: r.get(0)?,
            created_at: r.get(1)?,
            key_id: r.get(2)?,
            key_version: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[derive(Debug, Clone)]
pub struct VersionMeta {
    pub id: Uuid,
    pub created_at: i64,
    pub key_id: Uuid,
    pub key_version: u32,
}

/// Which version a label row names, whether or not that version belongs to the secret.
pub fn label_target(
    conn: &Connection,
    secret_id: Uuid,
    label: &str,
) -> Result<Option<Uuid>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT version_id FROM staging_labels WHERE secret_id = ?1 AND label = ?2",
        )?
        .query_row(params![secret_id, label], |r| r.get(0))
        .optional()?)
}

/// All labels of a secret as (label, version id).
pub fn labels(conn: &Connection, secret_id: Uuid) -> Result<Vec<(String, Uuid)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT label, version_id FROM staging_labels WHERE secret_id = ?1 ORDER BY label",
    )?;
    let rows = stmt.query_map([secret_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn labels_of_version(conn: &Connection, version_id: Uuid) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT label FROM staging_labels WHERE version_id = ?1 ORDER BY label")?;
    let rows = stmt.query_map([version_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Puts a label on a version, taking it off whichever version had it.
pub fn set_label(
    tx: &Transaction<'_>,
    secret_id: Uuid,
    label: &str,
    version_id: Uuid,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO staging_labels (secret_id, label, version_id) VALUES (?1, ?2, ?3)
         ON CONFLICT (secret_id, label) DO UPDATE SET version_id = excluded.version_id",
    )?
    .execute(params![secret_id, label, version_id])?;
    Ok(())
}

pub fn remove_label(tx: &Transaction<'_>, secret_id: Uuid, label: &str) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM staging_labels WHERE secret_id = ?1 AND label = ?2")?
        .execute(params![secret_id, label])?;
    Ok(())
}

/// Deletes versions that carry no label and are not among the newest `keep`.
pub fn prune_versions(
    tx: &Transaction<'_>,
    secret_id: Uuid,
    keep: u32,
) -> Result<usize, StoreError> {
    Ok(tx
        .prepare_cached(
            "DELETE FROM secret_versions WHERE id IN (
                SELECT v.id FROM secret_versions v
                WHERE v.secret_id = ?1
                  AND NOT EXISTS (SELECT 1 FROM staging_labels l WHERE l.version_id = v.id)
                  AND v.id NOT IN (
                      SELECT id FROM secret_versions WHERE secret_id = ?1
                      ORDER BY created_at DESC, rowid DESC LIMIT ?2))",
        )?
        .execute(params![secret_id, keep])?)
}

/// Filters for [`list`], already validated by the vault.
#[derive(Debug, Default)]
pub struct ListFilter<'a> {
    pub name_prefix: Option<&'a str>,
    pub description_contains: Option<&'a str>,
    pub tag_key: Option<&'a str>,
    pub tag_value: Option<&'a str>,
    pub text: Option<&'a str>,
    /// None: live only; Some(true): deleted only; Some(false): both.
    pub deleted_only: Option<bool>,
    pub by_changed: bool,
    /// Keyset cursor: the sort key of the last row of the previous page.
    pub after_name: Option<&'a str>,
    pub after_changed: Option<i64>,
    pub limit: u32,
}

/// One page of secrets in sort order; keyset paging keeps every page as cheap as the first.
///
/// The most selective filter drives the query: the trigram index for text of three or
/// more characters, else the tag index, else the name index. Driving from the name index
/// with a rare tag or text would walk most of the table to fill one page.
pub fn list(conn: &Connection, filter: &ListFilter<'_>) -> Result<Vec<SecretRow>, StoreError> {
    let columns = SECRET_COLUMNS
        .split(", ")
        .map(|c| format!("s.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
    let mut push = |value: Box<dyn rusqlite::ToSql>| {
        args.push(value);
        args.len()
    };
    let text = filter.text.filter(|t| !t.is_empty());
    let indexed_text = text.filter(|t| t.chars().count() >= 3);
    let mut sql = match (indexed_text, filter.tag_key) {
        (Some(text), _) => {
            let n = push(Box::new(format!("\"{}\"", text.replace('"', "\"\""))));
            format!(
                "SELECT {columns} FROM secret_search f CROSS JOIN secrets s ON s.rowid = f.rowid
                 WHERE secret_search MATCH ?{n}"
            )
        }
        (None, Some(key)) => {
            let k = push(Box::new(key.to_owned()));
            let mut sql = format!(
                "SELECT {columns} FROM secret_tags t CROSS JOIN secrets s ON s.id = t.secret_id
                 WHERE t.key = ?{k}"
            );
            if let Some(value) = filter.tag_value {
                let v = push(Box::new(value.to_owned()));
                sql.push_str(&format!(" AND t.value = ?{v}"));
            }
            sql
        }
        (None, None) => format!("SELECT {columns} FROM secrets s WHERE 1 = 1"),
    };
    match filter.deleted_only {
        None => sql.push_str(" AND s.deleted_at IS NULL"),
        Some(true) => sql.push_str(" AND s.deleted_at IS NOT NULL"),
        Some(false) => {}
    }
    if let (Some(_), Some(key)) = (indexed_text, filter.tag_key) {
        let k = push(Box::new(key.to_owned()));
        match filter.tag_value {
            Some(value) => {
                let v = push(Box::new(value.to_owned()));
                sql.push_str(&format!(
                    " AND EXISTS (SELECT 1 FROM secret_tags t WHERE t.secret_id = s.id AND t.key = ?{k} AND t.value = ?{v})"
                ));
            }
            None => sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM secret_tags t WHERE t.secret_id = s.id AND t.key = ?{k})"
            )),
        }
    }
    if let Some(text) = text.filter(|_| indexed_text.is_none()) {
        // One or two characters: too short for trigrams, but such a filter matches so
        // much that a scan fills a page quickly.
        let n = push(Box::new(like_pattern(text)));
        sql.push_str(&format!(
            " AND (s.name LIKE ?{n} ESCAPE '\\' OR s.description LIKE ?{n} ESCAPE '\\'
                  OR EXISTS (SELECT 1 FROM secret_tags t2 WHERE t2.secret_id = s.id
                             AND (t2.key LIKE ?{n} ESCAPE '\\' OR t2.value LIKE ?{n} ESCAPE '\\')))"
        ));
    }
    if let Some(prefix) = filter.name_prefix {
        // A range on the unique name index rather than LIKE, which ignores case.
        let lo = push(Box::new(prefix.to_owned()));
        let hi = push(Box::new(format!("{prefix}\u{10FFFF}")));
        sql.push_str(&format!(" AND s.name >= ?{lo} AND s.name < ?{hi}"));
    }
    if let Some(text) = filter.description_contains {
        let n = push(Box::new(like_pattern(text)));
        sql.push_str(&format!(" AND s.description LIKE ?{n} ESCAPE '\\'"));
    }
    if filter.by_changed {
        if let (Some(changed), Some(name)) = (filter.after_changed, filter.after_name) {
            let c = push(Box::new(changed));
            let n = push(Box::new(name.to_owned()));
            sql.push_str(&format!(
                " AND (s.changed_at < ?{c} OR (s.changed_at = ?{c} AND s.name > ?{n}))"
            ));
        }
        sql.push_str(" ORDER BY s.changed_at DESC, s.name ASC");
    } else {
        if let Some(name) = filter.after_name {
            let n = push(Box::new(name.to_owned()));
            sql.push_str(&format!(" AND s.name > ?{n}"));
        }
        sql.push_str(" ORDER BY s.name ASC");
    }
    let l = push(Box::new(filter.limit));
    sql.push_str(&format!(" LIMIT ?{l}"));
    let mut stmt = conn.prepare_cached(&sql)?;
    let refs: Vec<&dyn rusqlite::ToSql> = args.iter().map(|a| a.as_ref()).collect();
    let rows = stmt.query_map(refs.as_slice(), secret_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn like_pattern(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    escaped.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    escaped
}

/// How many secret versions use a key (any version of it).
pub fn versions_using_key(conn: &Connection, key_id: Uuid) -> Result<u64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM secret_versions WHERE key_id = ?1")?
        .query_row([key_id], |r| r.get(0))?)
}
