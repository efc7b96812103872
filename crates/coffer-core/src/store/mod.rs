//! The vault file: one SQLite database per vault, holding only ciphertext, wrapped keys,
//! sealed blobs and metadata.
//!
//! Files are created 0600 inside a 0700 directory. WAL with `synchronous=FULL` makes every
//! acknowledged transaction survive a crash or a power cut, and lets the app and several
//! CLI processes share one vault: readers never block, writers queue on SQLite's lock up
//! to the busy timeout.

pub mod access_keys;
pub mod audit;
pub mod keys;
pub mod meta;
pub mod peers;
pub mod replication;
pub mod rotation;
pub mod schema;
pub mod secrets;
pub mod teams;

use std::fs::{self, DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

/// Refuses a vault whose directory others can write (they could swap the file or plant
/// its `-wal`), and `-wal`/`-shm` files left by another user (SQLite would read them as
/// part of the vault).
fn check_location(path: &Path) -> Result<(), StoreError> {
    let unsafe_location = |reason: String| StoreError::UnsafeLocation {
        path: path.to_path_buf(),
        reason,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    crate::runtime::check_private_dir(&dir, "the vault's directory")
        .map_err(|e| unsafe_location(e.to_string()))?;
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = PathBuf::from(file);
        match fs::symlink_metadata(&file) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(unsafe_location(format!(
                    "{} is a symbolic link; point COFFER_VAULT at the real file",
                    file.display()
                )))
            }
            Ok(meta) if std::os::unix::fs::MetadataExt::uid(&meta) != uid => {
                return Err(unsafe_location(format!(
                    "{} belongs to uid {}, not to you; remove it if it is not part of your vault",
                    file.display(),
                    std::os::unix::fs::MetadataExt::uid(&meta)
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("refusing the vault at {path}: {reason}")]
    UnsafeLocation { path: PathBuf, reason: String },
    #[error("no vault at {path}: create one with `coffer init` or point COFFER_VAULT / --vault at an existing vault file")]
    NotFound { path: PathBuf },
    #[error("a vault already exists at {path}; choose another path with --vault or remove the old file first")]
    AlreadyExists { path: PathBuf },
    #[error("cannot prepare the vault location {path}: {source}")]
    Filesystem {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the vault is busy: another Coffer process held its write lock for more than {timeout_ms} ms; retry, or raise COFFER_BUSY_TIMEOUT_MS")]
    Busy { timeout_ms: u64 },
    #[error(
        "the vault file is damaged or is not a Coffer vault ({detail}); restore it from a backup"
    )]
    Corrupt { detail: String },
    #[error("the vault file was written by a newer Coffer (schema {found}, this build supports up to {supported}); upgrade Coffer")]
    NewerSchema { found: u32, supported: u32 },
    #[error("the vault file is missing required data ({what}); it may be damaged, restore it from a backup")]
    Missing { what: &'static str },
    #[error("upgrading the vault file from schema {from} to {to} failed ({cause}); the file is unchanged{}", backup.as_ref().map(|b| format!(", and the copy made before the upgrade is at {}", b.display())).unwrap_or_default())]
    MigrationFailed {
        from: u32,
        to: u32,
        backup: Option<PathBuf>,
        cause: String,
    },
    #[error("the vault file was not upgraded from schema {from} to {to}: a copy could not be made first at {} ({cause}); free some space or fix the directory's permissions, then open it again", backup.display())]
    BackupFailed {
        from: u32,
        to: u32,
        backup: PathBuf,
        cause: String,
    },
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        match error.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => StoreError::Busy {
                timeout_ms: busy_timeout().as_millis() as u64,
            },
            Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => {
                StoreError::Corrupt {
                    detail: error.to_string(),
                }
            }
            _ => StoreError::Sqlite(error),
        }
    }
}

pub use crate::runtime::busy_timeout;

/// An open vault file.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Creates a new, empty vault file (and its 0700 directory), failing if one exists.
    pub fn create(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|source| StoreError::Filesystem {
                        path: dir.to_path_buf(),
                        source,
                    })?;
            }
        }
        // Create the file ourselves so it is 0600 from its first byte; SQLite gives its
        // -wal and -shm companions the same mode as the database file.
        check_location(path)?;
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
        {
            // Permissions are set on the file we created, never through a path that could
            // have become a symlink since.
            Ok(file) => file
                .set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(|source| StoreError::Filesystem {
                    path: path.to_path_buf(),
                    source,
                })?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::AlreadyExists {
                    path: path.to_path_buf(),
                })
            }
            Err(source) => {
                return Err(StoreError::Filesystem {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
        Self::connect(path, true)
    }

    /// Opens an existing vault file, upgrading its schema if this build is newer.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if !path.is_file() {
            return Err(StoreError::NotFound {
                path: path.to_path_buf(),
            });
        }
        check_location(path)?;
        Self::connect(path, false)
    }

    fn connect(path: &Path, creating: bool) -> Result<Store, StoreError> {
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(busy_timeout())?;
        // Before anything writes to it: an existing file without Coffer's schema (empty,
        // or some other database) is reported, never silently turned into a new vault.
        if !creating {
            let version: u32 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
            if version == 0 {
                return Err(StoreError::Corrupt {
                    detail: "the file is empty or is not a Coffer vault".to_owned(),
                });
            }
        }
        // journal_mode answers with a row, so it is queried rather than updated.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt {
                detail: format!("could not switch to WAL mode (got {mode})"),
            });
        }
        conn.execute_batch(
            "PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA secure_delete = ON;",
        )?;
        // A copy from before an upgrade stays beside the file, named for its schema.
        schema::migrate(&mut conn, path)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the write-ahead log into the file and empties it, so that pages a purge just
    /// overwrote (`secure_delete`) do not live on as old copies in the WAL. Best effort:
    /// a reader holding a snapshot can keep part of the log until it finishes.
    pub fn checkpoint(&self) {
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Starts a write transaction, taking the write lock up front so that a transaction
    /// never fails half-way because another writer got in first.
    pub fn write(&mut self) -> Result<Transaction<'_>, StoreError> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    /// Switches this connection's commits between `synchronous=NORMAL` (appended to the
    /// write-ahead log without an fsync) and the default `FULL`. Only batched read audits
    /// use NORMAL, for their own transaction (see `vault::read_audit`).
    pub fn set_synchronous_normal(&self, normal: bool) -> Result<(), StoreError> {
        self.conn.execute_batch(if normal {
            "PRAGMA synchronous = NORMAL;"
        } else {
            "PRAGMA synchronous = FULL;"
        })?;
        Ok(())
    }

    /// Starts a read transaction: a consistent snapshot across several queries.
    pub fn read(&mut self) -> Result<Transaction<'_>, StoreError> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)?)
    }

    /// Runs SQLite's own consistency check; used after crashes in tests and by `coffer doctor`.
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        let result: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if result == "ok" {
            Ok(())
        } else {
            Err(StoreError::Corrupt { detail: result })
        }
    }
}

/// Records one change in the vault's change sequence and returns its number, which the
/// changed row also stores; replication ships changes in this order.
pub fn record_change(
    tx: &Transaction<'_>,
    at: i64,
    entity: &str,
    entity_id: &[u8],
    operation: &str,
) -> Result<i64, StoreError> {
    tx.prepare_cached(
        "INSERT INTO changes (at, entity, entity_id, operation) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(rusqlite::params![at, entity, entity_id, operation])?;
    let seq = tx.last_insert_rowid();
    if entity == "secret" {
        // Same transaction: a replicated secret's change is in its outbox or not at all.
        replication::fan_out(tx, seq, entity_id)?;
    }
    Ok(seq)
}

/// Records a change without queueing it for any region (a replica applying its
/// primary's change, or a change queued for one region only).
pub fn record_local_change(
    tx: &Transaction<'_>,
    at: i64,
    entity: &str,
    entity_id: &[u8],
    operation: &str,
) -> Result<i64, StoreError> {
    tx.prepare_cached(
        "INSERT INTO changes (at, entity, entity_id, operation) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(rusqlite::params![at, entity, entity_id, operation])?;
    Ok(tx.last_insert_rowid())
}

/// The newest change's number (0 for a vault with none).
pub fn last_change_seq(conn: &Connection) -> Result<i64, StoreError> {
    let max: Option<i64> = conn
        .prepare_cached("SELECT max(seq) FROM changes")?
        .query_row([], |r| r.get(0))?;
    Ok(max.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_private_file_in_private_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/vault.db");
        let store = Store::create(&path).unwrap();
        let dir_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        let file_mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert_eq!(file_mode & 0o777, 0o600);
        store.integrity_check().unwrap();
        drop(store);
        assert!(matches!(
            Store::create(&path),
            Err(StoreError::AlreadyExists { .. })
        ));
        Store::open(&path).unwrap();
    }

    #[test]
    fn garbage_file_is_reported_as_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.db");
        fs::write(&path, vec![0x42u8; 8192]).unwrap();
        let err = Store::open(&path).err().unwrap();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    }

    #[test]
    fn a_vault_others_could_tamper_with_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let vaults = dir.path().join("vaults");
        let path = vaults.join("vault.db");
        drop(Store::create(&path).unwrap());
        // A directory others can write: they could swap the file or plant its WAL.
        fs::set_permissions(&vaults, fs::Permissions::from_mode(0o777)).unwrap();
        let err = Store::open(&path).err().unwrap();
        assert!(matches!(err, StoreError::UnsafeLocation { .. }), "{err:?}");
        assert!(err.to_string().contains("chmod go-w"), "{err}");
        assert!(matches!(
            Store::create(&vaults.join("other.db")),
            Err(StoreError::UnsafeLocation { .. })
        ));
        fs::set_permissions(&vaults, fs::Permissions::from_mode(0o700)).unwrap();
        Store::open(&path).unwrap();
        // A vault path that is a symlink is not followed.
        let link = vaults.join("link.db");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let err = Store::open(&link).err().unwrap();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        // SAFETY: getuid has no preconditions.
        if unsafe { libc::getuid() } == 0 {
            // A -wal file of another user's would be read as part of the vault.
            let wal = vaults.join("vault.db-wal");
            fs::write(&wal, b"").unwrap();
            std::os::unix::fs::chown(&wal, Some(65534), Some(65534)).unwrap();
            let err = Store::open(&path).err().unwrap();
            assert!(err.to_string().contains("uid 65534"), "{err}");
        }
    }

    #[test]
    fn missing_file_says_how_to_create_one() {
        let dir = tempfile::tempdir().unwrap();
        let err = Store::open(&dir.path().join("none.db")).err().unwrap();
        assert!(err.to_string().contains("coffer init"));
    }
}
