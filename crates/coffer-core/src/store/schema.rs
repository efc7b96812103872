//! Schema migrations, applied in order inside one transaction each.
//!
//! `PRAGMA user_version` records how many have run. Every migration is append-only: a
//! released one is never edited, so any older vault file upgrades the same way.

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
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the file up to [`SCHEMA_VERSION`], refusing files written by a newer Coffer.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: u32 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the write lock.
        let now: u32 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if now as usize > index {
            tx.commit()?;
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as u32 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
