//! The vault service: the one API the app and the CLI are shells over.

pub mod access_keys;
pub mod audit;
mod context;
pub mod envelope;
pub mod error;
mod failed_unlocks;
mod integrity;
mod key_metadata;
mod keyring;
mod keys;
mod lifecycle;
mod nonce_budget;
pub mod read_audit;
pub mod regions;
pub mod replication;
pub mod rewrap;
mod rollback;
pub mod rotation;
mod secrets;
pub mod team;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::Transaction;
use uuid::Uuid;

pub use audit::{Actor, AuditEntry, AuditEvent, AuditFinding, AuditVerification};
pub use error::{Error, Result};
pub use secrets::{CreateSecret, PutValue};

use crate::store::{meta, Store, StoreError};
use integrity::Integrity;
use keyring::Keyring;

/// Reads are audited in batches: at most this many wait in memory…
const READ_AUDIT_BATCH: usize = 128;
/// …for at most this long, before they are written. Writes flush them at once.
const READ_AUDIT_DELAY: Duration = Duration::from_secs(1);

/// Keeps the newest versions of a secret (plus every labelled one) and prunes the rest.
pub const VERSIONS_KEPT: u32 = 100;

/// The vault file's default location: `$COFFER_VAULT`, else
/// `$XDG_DATA_HOME/coffer/vault.db`, else `~/.local/share/coffer/vault.db`.
pub fn default_vault_path() -> PathBuf {
    if let Some(path) = std::env::var_os("COFFER_VAULT").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data_home.join("coffer").join("vault.db")
}

/// An open vault: locked until [`Vault::unlock`], then able to do everything.
pub struct Vault {
    store: Store,
    vault_id: Uuid,
    keyring: Option<Keyring>,
    actor: Actor,
    pending_reads: Vec<AuditEvent>,
    pending_since: Option<Instant>,
    /// How many times this handle's keys were wiped: a shell that shares the handle (the
    /// app with its agent socket) compares it with its own locks to notice one made
    /// elsewhere, however briefly the vault was unlocked in between.
    locks: u64,
    /// Fsyncs read entries committed without a sync of their own (`audit.reads`).
    wal_syncer: read_audit::WalSyncer,
}

impl Vault {
    /// Opens an existing vault file, locked.
    pub fn open(path: &Path) -> Result<Vault> {
        let store = Store::open(path)?;
        let id = meta::require(store.conn(), meta::VAULT_ID)?;
        let vault_id =
            Uuid::from_slice(&id).map_err(|_| StoreError::Missing { what: "vault id" })?;
        Ok(Vault {
            store,
            vault_id,
            keyring: None,
            actor: Actor::current(),
            pending_reads: Vec::new(),
            pending_since: None,
            locks: 0,
            wal_syncer: read_audit::WalSyncer::new(path),
        })
    }

    pub fn id(&self) -> Uuid {
        self.vault_id
    }

    pub fn path(&self) -> &Path {
        self.store.path()
    }

    pub fn is_unlocked(&self) -> bool {
        self.keyring.is_some()
    }

    /// Sets who the audit log names for the following operations (the agent acts for
    /// its clients).
    /// Returns the actor it replaces, so a server can restore it after a request.
    pub fn set_actor(&mut self, actor: Actor) -> Actor {
        std::mem::replace(&mut self.actor, actor)
    }

    /// Forgets every key: they are wiped from memory. Pending read audits are written
    /// (and batched ones fsynced) first.
    pub fn lock(&mut self) -> Result<()> {
        let flushed = self.flush_audit().and_then(|()| self.sync_read_audit());
        if self.keyring.take().is_some() {
            self.locks += 1;
        }
        flushed
    }

    /// How many times [`Vault::lock`] wiped keys on this handle.
    pub fn lock_count(&self) -> u64 {
        self.locks
    }

    /// Audit entries, newest first; optionally only those about one secret.
    pub fn audit_list(
        &mut self,
        secret: Option<&str>,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        self.require_unlocked()?;
        if !(1..=10_000).contains(&limit) {
            return Err(Error::invalid("limit", "use 1 to 10000"));
        }
        self.flush_audit()?;
        audit::list(self.store.conn(), secret, before_seq, limit)
    }

    /// Verifies the whole audit chain and its head.
    pub fn audit_verify(&mut self) -> Result<AuditVerification> {
        self.flush_audit()?;
        let keyring = self.keyring.as_ref().ok_or(Error::Locked)?;
        audit::verify(self.store.conn(), keyring.audit_key())
    }

    /// What the TPM at `tcti` is (maker, software or hardware, lockout state).
    pub fn tpm_info(tcti: &str) -> Result<crate::tpm::TpmInfo> {
        Ok(crate::tpm::Tpm::connect(tcti)?.info()?)
    }

    /// Records that the agent refused a client of another user.
    pub fn record_refused_client(&mut self, peer: Actor) -> Result<()> {
        let own = std::mem::replace(&mut self.actor, peer);
        let event = AuditEvent::new("agent_connect").failed("forbidden");
        let result = self.write(event, |_, _, _| Ok(()));
        self.actor = own;
        result
    }

    /// Checks SQLite's own consistency of the file.
    pub fn check_integrity(&self) -> Result<()> {
        Ok(self.store.integrity_check()?)
    }

    /// Writes read events that are waiting in memory.
    pub fn flush_audit(&mut self) -> Result<()> {
        if self.pending_reads.is_empty() {
            return Ok(());
        }
        let Some(keyring) = self.keyring.as_ref() else {
            return Err(Error::Locked);
        };
        let tx = self.store.write()?;
        touch_accessed(&tx, &self.pending_reads)?;
        audit::append(&tx, keyring.audit_key(), &self.actor, &self.pending_reads)?;
        tx.commit().map_err(StoreError::from)?;
        self.pending_reads.clear();
        self.pending_since = None;
        Ok(())
    }

    fn queue_read(&mut self, mut event: AuditEvent) -> Result<()> {
        event.actor = Some(self.actor.clone());
        self.pending_reads.push(event);
        let since = *self.pending_since.get_or_insert_with(Instant::now);
        if self.pending_reads.len() >= READ_AUDIT_BATCH || since.elapsed() >= READ_AUDIT_DELAY {
            self.flush_audit()?;
        }
        Ok(())
    }

    /// Runs one write in one transaction, with its audit entry (and any pending read
    /// entries) committed atomically alongside it. A failed write is rolled back whole,
    /// and its failure is audited in a transaction of its own.
    fn write<T>(
        &mut self,
        mut event: AuditEvent,
        op: impl FnOnce(&Transaction<'_>, &mut Keyring, &mut AuditEvent) -> Result<T>,
    ) -> Result<T> {
        let Vault {
            store,
            keyring,
            actor,
            pending_reads,
            pending_since,
            vault_id: _,
            locks: _,
            wal_syncer: _,
        } = self;
        let keyring = keyring.as_mut().ok_or(Error::Locked)?;
        let integrity = keyring.integrity();
        let tx = store.write()?;
        let outcome = check_rows(&tx, &integrity, &event)
            .and_then(|()| op(&tx, keyring, &mut event))
            .and_then(|value| seal_rows(&tx, &integrity, &event).map(|()| value));
        let error = match outcome {
            Ok(value) => {
                touch_accessed(&tx, pending_reads)?;
                // Rollback counter: the file moves ahead here, the TPM after the commit.
                let bump = rollback::stage_bump(
                    &tx,
                    &keyring.rollback,
                    keyring.audit_key(),
                    keyring.vault_id(),
                )?;
                pending_reads.push(event);
                let appended = audit::append(&tx, keyring.audit_key(), actor, pending_reads)
                    .and_then(|()| tx.commit().map_err(|e| StoreError::from(e).into()));
                if appended.is_ok() {
                    keyring.finish_rollback_bump(store, bump);
                }
                // Whatever happened, this write's own event must not linger as a "read".
                pending_reads.pop();
                appended?;
                pending_reads.clear();
                *pending_since = None;
                return Ok(value);
            }
            Err(error) => error,
        };
        drop(tx);
        // A busy vault would only keep us waiting again to record that it was busy.
        if !matches!(error, Error::Store(StoreError::Busy { .. })) {
            event.result = error.code().to_owned();
            pending_reads.push(event);
            let recorded = store.write().map_err(Error::from).and_then(|tx| {
                touch_accessed(&tx, pending_reads)?;
                audit::append(&tx, keyring.audit_key(), actor, pending_reads)?;
                tx.commit().map_err(StoreError::from)?;
                Ok(())
            });
            if recorded.is_ok() {
                pending_reads.clear();
                *pending_since = None;
            } else {
                pending_reads.pop();
            }
        }
        Err(error)
    }
}

/// Before a write: the secret and key it names up front must be as Coffer left them, so
/// that resealing them afterwards cannot adopt an edit made outside Coffer. (Writes that
/// find their secret or key by name check it in that lookup.)
fn check_rows(tx: &Transaction<'_>, integrity: &Integrity, event: &AuditEvent) -> Result<()> {
    if let Some(id) = event.secret_id {
        if let Some(row) = crate::store::secrets::secret_by_id(tx, id)? {
            integrity.check_secret(tx, &row)?;
        }
    }
    if let Some(id) = event.key_id {
        if let Some(row) = crate::store::keys::key_by_id(tx, id)? {
            integrity.check_key(tx, &row)?;
        }
    }
    Ok(())
}

/// After a write: MAC the secret and key it touched as the transaction leaves them.
fn seal_rows(tx: &Transaction<'_>, integrity: &Integrity, event: &AuditEvent) -> Result<()> {
    if let Some(id) = event.secret_id {
        integrity.seal_secret(tx, id)?;
    }
    if let Some(id) = event.key_id {
        integrity.seal_key(tx, id)?;
    }
    Ok(())
}

fn touch_accessed(tx: &Transaction<'_>, events: &[AuditEvent]) -> Result<()> {
    let mut seen = Vec::new();
    for event in events {
        if event.operation == "get_secret_value" && event.result == "ok" {
            if let Some(id) = event.secret_id {
                if !seen.contains(&id) {
                    seen.push(id);
                    crate::store::secrets::set_accessed_day(tx, id, event.at.day())?;
                }
            }
        }
    }
    Ok(())
}

impl Drop for Vault {
    fn drop(&mut self) {
        // Best effort: a vault dropped while unlocked still records its reads.
        let _ = self.flush_audit();
    }
}
