//! How a read's audit entry is committed before the value leaves (`audit.reads`).
//!
//! Every read is on record in the vault file before its value is handed out: its entry
//! is committed (hash-chained and MACed like every entry) in a transaction of its own.
//! What the setting chooses is only *when that commit reaches the disk*:
//!
//! - `durable`: the transaction is committed with `synchronous=FULL`, so the read waits
//!   for one fsync of the write-ahead log (2–3 ms on the development machine).
//! - `batched` (the default): the transaction is committed with `synchronous=NORMAL`:
//!   appended to the write-ahead log without an fsync of its own. The entry survives a
//!   crash or kill of Coffer (the kernel holds it); only a power loss or kernel crash
//!   within [`READ_SYNC_DELAY`] can lose it. A background thread fsyncs the log at most
//!   that long after the first such commit; every write (committed with FULL), locking
//!   the vault and closing it fsync it at once.
//!
//! Writes are never affected: each stays one durable transaction with its audit entry.
//! This is the trade AWS makes too (CloudTrail delivers read events after the fact,
//! not transactionally with the read), and what Coffer's in-process reads already did
//! (they queue their entries in memory). See docs/architecture.md, "Audit of reads".

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::error::{Error, Result};
use super::Vault;
use crate::store::StoreError;

/// The vault setting naming how reads are audited.
pub const AUDIT_READS: &str = "audit.reads";

/// The longest a batched read entry waits for its fsync.
pub const READ_SYNC_DELAY: Duration = Duration::from_millis(100);

/// How a read's audit entry reaches the disk (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadAudit {
    /// One fsync per read, before the value leaves.
    Durable,
    /// Committed before the value leaves, fsynced within [`READ_SYNC_DELAY`].
    #[default]
    Batched,
}

impl ReadAudit {
    pub fn parse(value: &str) -> Result<ReadAudit> {
        match value {
            "durable" => Ok(ReadAudit::Durable),
            "batched" => Ok(ReadAudit::Batched),
            _ => Err(Error::invalid(
                AUDIT_READS,
                format!(
                    "{value:?} is not a choice: use durable (one fsync per read) or batched (fsynced within {} ms)",
                    READ_SYNC_DELAY.as_millis()
                ),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReadAudit::Durable => "durable",
            ReadAudit::Batched => "batched",
        }
    }
}

#[derive(Default)]
struct SyncState {
    /// Batched commits so far, and how many of them an fsync has covered.
    committed: u64,
    synced: u64,
    /// When the oldest commit not yet fsynced was made.
    dirty_since: Option<Instant>,
    stop: bool,
}

struct Shared {
    state: Mutex<SyncState>,
    wake: Condvar,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, SyncState> {
        // The state is counters only: a panic cannot leave it half-updated.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Fsyncs the vault's write-ahead log after batched read commits, off the request path.
///
/// It opens the log by path for each fsync: an fsync through any descriptor flushes the
/// file's pages, whoever wrote them. A log that is gone was checkpointed and removed by
/// SQLite at close, which syncs it first.
pub(super) struct WalSyncer {
    shared: Arc<Shared>,
    wal: PathBuf,
    thread: Option<JoinHandle<()>>,
}

fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

fn fsync(wal: &Path) -> std::io::Result<()> {
    match std::fs::File::open(wal) {
        Ok(file) => file.sync_data(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

impl WalSyncer {
    pub(super) fn new(db: &Path) -> Self {
        WalSyncer {
            shared: Arc::new(Shared {
                state: Mutex::new(SyncState::default()),
                wake: Condvar::new(),
            }),
            wal: wal_path(db),
            thread: None,
        }
    }

    /// Notes one batched commit; the thread fsyncs within [`READ_SYNC_DELAY`].
    fn committed(&mut self) {
        if self.thread.is_none() {
            let (shared, wal) = (Arc::clone(&self.shared), self.wal.clone());
            // Without the thread (no threads left?) the next write, lock or close syncs.
            self.thread = std::thread::Builder::new()
                .name("coffer-wal-sync".into())
                .spawn(move || run(&shared, &wal))
                .ok();
        }
        let mut state = self.shared.state();
        state.committed += 1;
        state.dirty_since.get_or_insert_with(Instant::now);
        self.shared.wake.notify_one();
    }

    /// Fsyncs now if any batched commit is not yet on disk.
    pub(super) fn sync_now(&self) -> std::io::Result<()> {
        let upto = {
            let mut state = self.shared.state();
            if state.synced == state.committed {
                return Ok(());
            }
            state.dirty_since = None;
            state.committed
        };
        let synced = fsync(&self.wal);
        let mut state = self.shared.state();
        match synced {
            Ok(()) => state.synced = state.synced.max(upto),
            Err(_) => {
                state.dirty_since.get_or_insert_with(Instant::now);
            }
        }
        synced
    }

    /// Whether every batched commit so far is covered by an fsync.
    pub(super) fn is_synced(&self) -> bool {
        let state = self.shared.state();
        state.synced == state.committed
    }
}

fn run(shared: &Shared, wal: &Path) {
    let mut state = shared.state();
    loop {
        if state.stop {
            return;
        }
        let Some(since) = state.dirty_since else {
            state = shared
                .wake
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            continue;
        };
        let due = since + READ_SYNC_DELAY;
        let now = Instant::now();
        if now < due {
            state = shared
                .wake
                .wait_timeout(state, due - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
            continue;
        }
        // Cleared before the fsync: a commit made meanwhile marks it dirty again.
        state.dirty_since = None;
        let upto = state.committed;
        drop(state);
        let synced = fsync(wal);
        state = shared.state();
        match synced {
            Ok(()) => state.synced = state.synced.max(upto),
            // Tried again after another delay; lock and close try too.
            Err(_) => {
                state.dirty_since.get_or_insert_with(Instant::now);
            }
        }
    }
}

impl Drop for WalSyncer {
    fn drop(&mut self) {
        let _ = self.sync_now();
        self.shared.state().stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Vault {
    /// How reads are audited here (`audit.reads`; MACed, so an edit is refused).
    pub fn read_audit(&mut self) -> Result<ReadAudit> {
        self.require_unlocked()?;
        let integrity = self.keyring.as_ref().ok_or(Error::Locked)?.integrity();
        match integrity.setting(self.store.conn(), AUDIT_READS)? {
            None => Ok(ReadAudit::default()),
            Some(value) => std::str::from_utf8(&value)
                .ok()
                .and_then(|v| ReadAudit::parse(v).ok())
                .ok_or(Error::SettingTampered { name: AUDIT_READS }),
        }
    }

    /// `audit.reads` as stored, for `coffer status` on a locked vault: its MAC is not
    /// checked here (that needs the keys); every read checks it before relying on it.
    pub fn read_audit_as_stored(&self) -> Result<ReadAudit> {
        Ok(crate::store::meta::get(self.store.conn(), AUDIT_READS)?
            .and_then(|value| ReadAudit::parse(std::str::from_utf8(&value).ok()?).ok())
            .unwrap_or_default())
    }

    /// Commits the read entries waiting in memory before their values leave: durably or
    /// batched, as `audit.reads` says.
    pub fn commit_read_audit(&mut self) -> Result<()> {
        if self.pending_reads.is_empty() {
            return Ok(());
        }
        match self.read_audit()? {
            ReadAudit::Durable => self.flush_audit(),
            ReadAudit::Batched => {
                self.store.set_synchronous_normal(true)?;
                let flushed = self.flush_audit();
                let restored = self.store.set_synchronous_normal(false);
                flushed?;
                restored?;
                self.wal_syncer.committed();
                Ok(())
            }
        }
    }

    /// Fsyncs the write-ahead log now if a batched read entry is not on disk yet.
    pub fn sync_read_audit(&mut self) -> Result<()> {
        self.wal_syncer.sync_now().map_err(|source| {
            Error::from(StoreError::Filesystem {
                path: wal_path(self.store.path()),
                source,
            })
        })
    }

    /// Whether every read entry committed so far is on disk (fsynced).
    pub fn read_audit_synced(&self) -> bool {
        self.wal_syncer.is_synced()
    }
}
