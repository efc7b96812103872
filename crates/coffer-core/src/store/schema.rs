//! Schema migrations, applied in order inside one transaction each.
//!
//! `PRAGMA user_version` records how many have run. Every migration is append-only: a
//! released one is never edited, so any older vault file upgrades the same way.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::StoreError;

/// The migrations, oldest first. Index + 1 is the schema version they bring a file to.
const MIGRATIONS: &[&str] = &[
    // 1: the initial model. UUIDs are stored as 16-byte blobs; times as Unix milliseconds.
    // `change_seq` columns and the `changes` table give replication a total order of
    // every change in this vault.
    r#"
    CREATE TABLE vault_meta (
        name  TEXT PRIMARY KEY,
        value BLOB NOT NULL
    ) STRICT;

    CREATE TABLE keys (
        id            BLOB PRIMARY KEY,
        description   TEXT NOT NULL DEFAULT '',
        state         TEXT NOT NULL CHECK (state IN ('enabled', 'disabled', 'pending_deletion')),
        is_default    INTEGER NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL,
        deletion_at   INTEGER,
        change_seq    INTEGER NOT NULL
    ) STRICT;
    CREATE UNIQUE INDEX keys_one_default ON keys(is_default) WHERE is_default = 1;

    CREATE TABLE key_aliases (
        alias   TEXT PRIMARY KEY,
        key_id  BLOB NOT NULL REFERENCES keys(id) ON DELETE CASCADE
    ) STRICT;

    CREATE TABLE key_versions (
        key_id            BLOB NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
        version           INTEGER NOT NULL,
        sealed            BLOB NOT NULL,
        recovery_wrapped  BLOB NOT NULL,
        wrapped_audit_key BLOB NOT NULL,
        created_at        INTEGER NOT NULL,
        PRIMARY KEY (key_id, version)
    ) STRICT;

    CREATE TABLE secrets (
        id               BLOB PRIMARY KEY,
        name             TEXT NOT NULL UNIQUE,
        description      TEXT NOT NULL DEFAULT '',
        key_id           BLOB NOT NULL REFERENCES keys(id),
        created_at       INTEGER NOT NULL,
        changed_at       INTEGER NOT NULL,
        accessed_day     INTEGER,
        deleted_at       INTEGER,
        purge_at         INTEGER,
        change_seq       INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX secrets_purge ON secrets(purge_at) WHERE purge_at IS NOT NULL;
    CREATE INDEX secrets_changed ON secrets(changed_at);

    CREATE TABLE secret_tags (
        secret_id  BLOB NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
        key        TEXT NOT NULL,
        value      TEXT NOT NULL,
        PRIMARY KEY (secret_id, key)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX secret_tags_by_key ON secret_tags(key, value);

    CREATE TABLE secret_versions (
        id            BLOB PRIMARY KEY,
        secret_id     BLOB NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
        created_at    INTEGER NOT NULL,
        key_id        BLOB NOT NULL,
        key_version   INTEGER NOT NULL,
        wrapped_dek   BLOB NOT NULL,
        ciphertext    BLOB NOT NULL,
        client_token  TEXT,
        change_seq    INTEGER NOT NULL,
        FOREIGN KEY (key_id, key_version) REFERENCES key_versions(key_id, version)
    ) STRICT;
    CREATE INDEX secret_versions_by_secret ON secret_versions(secret_id, created_at);
    CREATE UNIQUE INDEX secret_versions_token ON secret_versions(secret_id, client_token)
        WHERE client_token IS NOT NULL;
    CREATE INDEX secret_versions_by_key ON secret_versions(key_id, key_version);

    CREATE TABLE staging_labels (
        secret_id   BLOB NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
        label       TEXT NOT NULL,
        version_id  BLOB NOT NULL REFERENCES secret_versions(id) ON DELETE CASCADE,
        PRIMARY KEY (secret_id, label)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX staging_labels_by_version ON staging_labels(version_id);

    CREATE TABLE changes (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        at         INTEGER NOT NULL,
        entity     TEXT NOT NULL,
        entity_id  BLOB NOT NULL,
        operation  TEXT NOT NULL
    ) STRICT;

    CREATE TABLE audit_log (
        seq         INTEGER PRIMARY KEY,
        at          INTEGER NOT NULL,
        uid         INTEGER NOT NULL,
        pid         INTEGER NOT NULL,
        process     TEXT NOT NULL,
        operation   TEXT NOT NULL,
        secret_id   BLOB,
        secret_name TEXT,
        version_id  BLOB,
        key_id      BLOB,
        result      TEXT NOT NULL,
        detail      TEXT NOT NULL DEFAULT '',
        mac         BLOB
    ) STRICT;
    CREATE INDEX audit_by_secret ON audit_log(secret_name, seq);
    "#,
    // 2: a trigram index over names, descriptions and tags, so that search-as-you-type
    // finds substrings among 100,000 secrets without a table scan. Triggers keep it in
    // step with every write, whichever code path makes it.
    r#"
    CREATE VIRTUAL TABLE secret_search USING fts5(name, description, tags, tokenize = 'trigram');

    INSERT INTO secret_search (rowid, name, description, tags)
        SELECT s.rowid, s.name, s.description,
               coalesce((SELECT group_concat(t.key || '=' || t.value, char(10))
                         FROM secret_tags t WHERE t.secret_id = s.id), '')
        FROM secrets s;

    CREATE TRIGGER secret_search_insert AFTER INSERT ON secrets BEGIN
        INSERT INTO secret_search (rowid, name, description, tags)
        VALUES (new.rowid, new.name, new.description, '');
    END;
    CREATE TRIGGER secret_search_update AFTER UPDATE OF name, description ON secrets BEGIN
        UPDATE secret_search SET name = new.name, description = new.description
        WHERE rowid = new.rowid;
    END;
    CREATE TRIGGER secret_search_delete AFTER DELETE ON secrets BEGIN
        DELETE FROM secret_search WHERE rowid = old.rowid;
    END;
    CREATE TRIGGER secret_search_tag_insert AFTER INSERT ON secret_tags BEGIN
        UPDATE secret_search
        SET tags = (SELECT coalesce(group_concat(key || '=' || value, char(10)), '')
                    FROM secret_tags WHERE secret_id = new.secret_id)
        WHERE rowid = (SELECT rowid FROM secrets WHERE id = new.secret_id);
    END;
    CREATE TRIGGER secret_search_tag_update AFTER UPDATE ON secret_tags BEGIN
        UPDATE secret_search
        SET tags = (SELECT coalesce(group_concat(key || '=' || value, char(10)), '')
                    FROM secret_tags WHERE secret_id = new.secret_id)
        WHERE rowid = (SELECT rowid FROM secrets WHERE id = new.secret_id);
    END;
    CREATE TRIGGER secret_search_tag_delete AFTER DELETE ON secret_tags BEGIN
        UPDATE secret_search
        SET tags = (SELECT coalesce(group_concat(key || '=' || value, char(10)), '')
                    FROM secret_tags WHERE secret_id = old.secret_id)
        WHERE rowid = (SELECT rowid FROM secrets WHERE id = old.secret_id);
    END;
    "#,
    // 3: rotation. A secret's rotation configuration and the state of the rotation in
    // progress (its token is the PENDING version's idempotency token, `step` the next
    // step to run), so a crash at any step resumes with the same PENDING version; a
    // history of attempts; and automatic rotation periods of keys.
    r#"
    CREATE TABLE secret_rotation (
        secret_id        BLOB PRIMARY KEY REFERENCES secrets(id) ON DELETE CASCADE,
        enabled          INTEGER NOT NULL,
        schedule         TEXT,
        window_ms        INTEGER,
        rotator          TEXT NOT NULL,
        configured_at    INTEGER NOT NULL,
        last_rotated_at  INTEGER,
        next_rotation_at INTEGER,
        token            TEXT,
        step             TEXT CHECK (step IN ('create', 'set', 'test', 'finish')),
        started_at       INTEGER,
        attempts         INTEGER NOT NULL DEFAULT 0,
        last_error       TEXT,
        last_error_at    INTEGER,
        next_retry_at    INTEGER,
        change_seq       INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX secret_rotation_due ON secret_rotation(next_rotation_at) WHERE enabled = 1;

    CREATE TABLE rotation_history (
        seq         INTEGER PRIMARY KEY,
        secret_id   BLOB NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
        at          INTEGER NOT NULL,
        token       TEXT NOT NULL,
        step        TEXT NOT NULL,
        result      TEXT NOT NULL,
        version_id  BLOB,
        error       TEXT
    ) STRICT;
    CREATE INDEX rotation_history_by_secret ON rotation_history(secret_id, seq);

    CREATE TABLE key_rotation (
        key_id           BLOB PRIMARY KEY REFERENCES keys(id) ON DELETE CASCADE,
        period_days      INTEGER NOT NULL,
        enabled_at       INTEGER NOT NULL,
        next_rotation_at INTEGER NOT NULL,
        change_seq       INTEGER NOT NULL
    ) STRICT;
    "#,
    // 4: a MAC of each rotator configuration (which executable gets the values) under the
    // vault's audit key, so a row edited outside Coffer is refused rather than run. Rows
    // from before have none and must be set again.
    r#"
    ALTER TABLE secret_rotation ADD COLUMN rotator_mac BLOB NOT NULL DEFAULT x'';
    "#,
    // 5: a MAC per secret (name, key, deletion state and every staging label) and per
    // key (state, default flag, deletion date and its aliases), under the vault's audit key, so that
    // editing or swapping these rows outside Coffer makes the next read fail instead of
    // returning another secret's value. Rows from before carry none; the first unlock
    // after the upgrade computes them (see `vault::integrity`).
    r#"
    ALTER TABLE secrets ADD COLUMN mac BLOB NOT NULL DEFAULT x'';
    ALTER TABLE keys ADD COLUMN mac BLOB NOT NULL DEFAULT x'';
    "#,
    // 6: paired peers (replica regions). Name, address and pinned fingerprint carry a MAC
    // under the vault's audit key: an edit could otherwise send this vault's replicas to
    // another machine. The contact columns are status only and carry none.
    r#"
    CREATE TABLE peers (
        name          TEXT PRIMARY KEY,
        url           TEXT NOT NULL,
        fingerprint   BLOB NOT NULL,
        added_at      INTEGER NOT NULL,
        last_contact  INTEGER,
        key_exchange  TEXT,
        last_error    TEXT,
        mac           BLOB NOT NULL
    ) STRICT;
    "#,
    // 7: replication. On a primary: the regions each secret is replicated to (MAC'd: an
    // edit could otherwise send a secret to a peer it was never meant for), the outbox
    // (one row per change per region, written in the transaction of the change; a trigger
    // notes the version a change inserted), and what each peer acknowledged. On a replica:
    // which primary a secret follows (bound into the secret's MAC), how far each primary's
    // stream is applied, and per version the vault whose id its value ciphertext is bound to.
    r#"
    CREATE TABLE secret_replicas (
        secret_id    BLOB NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
        region       TEXT NOT NULL,
        replica_key  TEXT,
        added_at     INTEGER NOT NULL,
        synced_at    INTEGER,
        last_error   TEXT,
        mac          BLOB NOT NULL,
        PRIMARY KEY (secret_id, region)
    ) STRICT;
    CREATE TABLE replication_outbox (
        region      TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        secret_id   BLOB NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('state', 'remove')),
        version_id  BLOB,
        PRIMARY KEY (region, seq)
    ) STRICT;
    CREATE INDEX replication_outbox_by_seq ON replication_outbox(seq);
    CREATE INDEX replication_outbox_by_secret ON replication_outbox(secret_id, region);
    CREATE TRIGGER replication_outbox_version AFTER INSERT ON secret_versions BEGIN
        UPDATE replication_outbox SET version_id = new.id
        WHERE seq = new.change_seq AND secret_id = new.secret_id;
    END;
    CREATE TABLE replication_peers (
        region  TEXT PRIMARY KEY,
        acked   INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE secret_replica_of (
        secret_id       BLOB PRIMARY KEY REFERENCES secrets(id) ON DELETE CASCADE,
        primary_region  TEXT NOT NULL,
        primary_vault   BLOB NOT NULL,
        applied_at      INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE replication_inbound (
        region        TEXT PRIMARY KEY,
        applied_upto  INTEGER NOT NULL
    ) STRICT;
    ALTER TABLE secret_versions ADD COLUMN origin_vault BLOB;
    "#,
    // 8: access keys of the AWS-compatible API. The secret half is sealed (AES-256-GCM)
    // under a key derived from the audit key, its associated data binding the key id; the
    // name, policy and enabled flag carry a MAC under the row key, so an edit cannot
    // widen what a key may do or revive a disabled one. Last use is status only.
    r#"
    CREATE TABLE access_keys (
        id             TEXT PRIMARY KEY,
        name           TEXT NOT NULL UNIQUE,
        sealed_secret  BLOB NOT NULL,
        policy         TEXT,
        enabled        INTEGER NOT NULL,
        created_at     INTEGER NOT NULL,
        last_used_at   INTEGER,
        last_used_what TEXT,
        mac            BLOB NOT NULL
    ) STRICT;

    -- Resource policies of secrets (Secrets Manager's PutResourcePolicy), MACed with
    -- their secret's id: an edit cannot grant another key access.
    CREATE TABLE secret_policies (
        secret_id  BLOB PRIMARY KEY REFERENCES secrets(id) ON DELETE CASCADE,
        policy     TEXT NOT NULL,
        mac        BLOB NOT NULL
    ) STRICT;

    -- KMS key policies (MACed with their key's id: they decide who may use the key) and
    -- key tags (labels only, like secret tags).
    CREATE TABLE key_policies (
        key_id  BLOB PRIMARY KEY REFERENCES keys(id) ON DELETE CASCADE,
        policy  TEXT NOT NULL,
        mac     BLOB NOT NULL
    ) STRICT;
    CREATE TABLE key_tags (
        key_id  BLOB NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
        key     TEXT NOT NULL,
        value   TEXT NOT NULL,
        PRIMARY KEY (key_id, key)
    ) STRICT, WITHOUT ROWID;
    "#,
    // 9: a locked replica's inbox (and a primary's cards of air-gapped regions): entries a daemon received while it held the vault
    // locked, kept exactly as signed and sealed (no value or data key in plaintext), with
    // the certificate the sender presented; applied (signature checked again, in order,
    // idempotently) at the next unlock and deleted in that transaction. No MAC: the
    // primary's signature covers each payload, and a deleted row only holds the stream up.
    r#"
    CREATE TABLE replication_inbox (
        region       TEXT NOT NULL,
        seq          INTEGER NOT NULL,
        prev_seq     INTEGER NOT NULL,
        secret_id    BLOB NOT NULL,
        payload      BLOB NOT NULL,
        sender_cert  BLOB NOT NULL,
        received_at  INTEGER NOT NULL,
        PRIMARY KEY (region, seq)
    ) STRICT;
    -- On a primary: the signed hello (vault id, data-key public key) a region sent in its
    -- last bundle acknowledgement, for sealing bundles to a region never connected. No
    -- MAC: its signature is checked against the pinned fingerprint at every use.
    CREATE TABLE replication_peer_cards (
        region  TEXT PRIMARY KEY,
        hello   TEXT NOT NULL
    ) STRICT;
    "#,
    // 10: teams. The outbox also carries a team's state to its members (kind `team`, the
    // team's id in `secret_id`), and each entry names its author: the member whose
    // forwarded write the primary applied (NULL: this vault) and, for team entries, what
    // changed. The team's state itself is a MACed setting (`team.state`). Exposures: which
    // secrets a removed member could read, and since when; a secret stops being exposed
    // once its current version is newer than that.
    r#"
    DROP TRIGGER replication_outbox_version;
    CREATE TABLE replication_outbox_v10 (
        region      TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        secret_id   BLOB NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('state', 'remove', 'team')),
        version_id  BLOB,
        author      TEXT,
        note        TEXT,
        PRIMARY KEY (region, seq)
    ) STRICT;
    INSERT INTO replication_outbox_v10 (region, seq, secret_id, kind, version_id)
        SELECT region, seq, secret_id, kind, version_id FROM replication_outbox;
    DROP TABLE replication_outbox;
    ALTER TABLE replication_outbox_v10 RENAME TO replication_outbox;
    CREATE INDEX replication_outbox_by_seq ON replication_outbox(seq);
    CREATE INDEX replication_outbox_by_secret ON replication_outbox(secret_id, region);
    CREATE TRIGGER replication_outbox_version AFTER INSERT ON secret_versions BEGIN
        UPDATE replication_outbox SET version_id = new.id
        WHERE seq = new.change_seq AND secret_id = new.secret_id;
    END;
    CREATE TABLE secret_exposures (
        secret_id  BLOB NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
        member     TEXT NOT NULL,
        since      INTEGER NOT NULL,
        rotate     INTEGER NOT NULL,
        PRIMARY KEY (secret_id, member)
    ) STRICT;
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the file at `path` up to [`SCHEMA_VERSION`], refusing files written by a newer
/// Coffer.
///
/// An existing vault is first copied beside itself (see [`backup_path`]), and every
/// pending migration runs in one transaction: a migration that fails leaves the file
/// exactly as it was, and the copy is there should a migration that succeeded turn out to
/// be wrong. Returns where the copy went, if one was made.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<Option<PathBuf>, StoreError> {
    migrate_with(conn, path, MIGRATIONS)
}

fn user_version(conn: &Connection) -> Result<u32, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", [], |row| row.get(0))?)
}

fn migrate_with(
    conn: &mut Connection,
    path: &Path,
    migrations: &[&str],
) -> Result<Option<PathBuf>, StoreError> {
    let target = migrations.len() as u32;
    let current = user_version(conn)?;
    if current > target {
        return Err(StoreError::NewerSchema {
            found: current,
            supported: target,
        });
    }
    if current == target {
        return Ok(None);
    }
    // A new file has nothing to keep; an existing one is copied before anything changes.
    let backup = if current > 0 {
        Some(write_backup(conn, path, current, target)?)
    } else {
        None
    };
    let failed = |cause: String| StoreError::MigrationFailed {
        from: current,
        to: target,
        backup: backup.clone(),
        cause,
    };
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Another process may have migrated while we waited for the write lock.
    let now = user_version(&tx)?;
    for sql in migrations.iter().skip(now as usize) {
        tx.execute_batch(sql).map_err(|e| failed(e.to_string()))?;
    }
    tx.pragma_update(None, "user_version", target)
        .map_err(|e| failed(e.to_string()))?;
    tx.commit().map_err(|e| failed(e.to_string()))?;
    Ok(backup)
}

/// Where the copy made before upgrading from `from` goes: beside the vault, named for
/// the schema it holds, never over an earlier copy.
fn backup_path(path: &Path, from: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".schema-{from}.bak"));
    let first = PathBuf::from(&name);
    if !first.exists() {
        return first;
    }
    name.push(format!(".{}", crate::model::Timestamp::now().millis()));
    PathBuf::from(name)
}

/// A consistent copy of the whole vault (WAL included), created 0600 like the vault.
fn write_backup(conn: &Connection, path: &Path, from: u32, to: u32) -> Result<PathBuf, StoreError> {
    let backup = backup_path(path, from);
    let unsaved = |cause: String| StoreError::BackupFailed {
        from,
        to,
        backup: backup.clone(),
        cause,
    };
    // Created empty with its final mode first: VACUUM INTO would create it with the
    // process umask's.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&backup)
        .map_err(|e| unsaved(e.to_string()))?;
    let target = backup
        .to_str()
        .ok_or_else(|| unsaved("the path is not UTF-8".into()))?;
    if let Err(error) = conn.execute("VACUUM INTO ?1", [target]) {
        let _ = std::fs::remove_file(&backup);
        return Err(unsaved(error.to_string()));
    }
    Ok(backup)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn open(path: &Path) -> Connection {
        Connection::open(path).unwrap()
    }

    fn version_of(path: &Path) -> u32 {
        user_version(&open(path)).unwrap()
    }

    #[test]
    fn an_old_vault_is_copied_before_it_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.db");
        let mut conn = open(&path);
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
            .unwrap();
        // A vault as the previous release left it, with data in its WAL.
        assert_eq!(
            migrate_with(&mut conn, &path, &MIGRATIONS[..5]).unwrap(),
            None
        );
        conn.execute(
            "INSERT INTO vault_meta (name, value) VALUES ('probe', x'01')",
            [],
        )
        .unwrap();

        let backup = migrate_with(&mut conn, &path, MIGRATIONS).unwrap().unwrap();
        assert_eq!(backup, dir.path().join("vault.db.schema-5.bak"));
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        assert_eq!(version_of(&backup), 5);
        let kept: Vec<u8> = open(&backup)
            .query_row(
                "SELECT value FROM vault_meta WHERE name = 'probe'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(kept, vec![1]);
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Nothing to do the second time, and no second copy.
        assert_eq!(migrate_with(&mut conn, &path, MIGRATIONS).unwrap(), None);
    }

    #[test]
    fn a_failed_upgrade_leaves_the_file_as_it_was_and_names_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.db");
        let mut conn = open(&path);
        migrate_with(&mut conn, &path, MIGRATIONS).unwrap();
        let mut broken = MIGRATIONS.to_vec();
        broken.push("CREATE TABLE applied_first (x INTEGER);");
        broken.push("CREATE TABLE broken (;");
        let error = migrate_with(&mut conn, &path, &broken).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, StoreError::MigrationFailed { from, to, .. } if from == SCHEMA_VERSION && to == SCHEMA_VERSION + 2),
            "{message}"
        );
        assert!(
            message.contains("vault.db.schema-") && message.contains("unchanged"),
            "{message}"
        );
        // One transaction: the migration before the broken one did not stay either.
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'applied_first'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0);
    }

    #[test]
    fn a_new_file_gets_no_copy_and_a_newer_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.db");
        let mut conn = open(&path);
        assert_eq!(migrate_with(&mut conn, &path, MIGRATIONS).unwrap(), None);
        let copies = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|entry| {
                entry
                    .as_ref()
                    .unwrap()
                    .path()
                    .to_string_lossy()
                    .ends_with(".bak")
            })
            .count();
        assert_eq!(copies, 0);
        let error = migrate_with(&mut conn, &path, &MIGRATIONS[..2]).unwrap_err();
        assert!(matches!(error, StoreError::NewerSchema { .. }), "{error}");
    }
}
