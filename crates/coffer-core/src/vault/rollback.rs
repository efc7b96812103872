//! Detecting that the vault file was replaced by an older copy of itself.
//!
//! Every MAC in the file still verifies in an old copy, so the file alone cannot tell. The
//! TPM can: each vault owns a monotonic NV counter (see `tpm::nv`), and the file stores the
//! counter's index and the last value it saw, under a MAC keyed from the audit key. At
//! unlock the two must agree. A copy taken before the counter last moved holds a lower
//! value, and is refused until the owner accepts it with the recovery code.
//!
//! The counter moves at the first write of each unlocked session, and then at most once per
//! [`BUMP_INTERVAL`] while the session lasts, so a hardware TPM's NV sees a few writes an
//! hour at most. Writes made since the last bump are in the window this leaves: a copy
//! taken after the bump can replace the file without being noticed.
//!
//! The stored value is written (inside the write's transaction) before the TPM counter is
//! incremented (after the commit). A crash in between leaves the file ahead, which the next
//! unlock catches up; the file can never be behind the TPM except by rollback. The TPM is
//! only ever moved up to a value already committed to the file, and only while holding the
//! vault's write lock, so concurrent processes neither overshoot nor race each other.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rusqlite::Connection;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::error::{Error, Result};
use super::keyring::AuditKey;
use crate::store::{meta, Store};
use crate::tpm::{NvCounterAuth, Tpm, TpmError};

/// The counter moves at most this often during one unlocked session.
pub const BUMP_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// The owner-hierarchy NV indexes a vault may use: a base in the owner range plus 16 bits
/// from the vault id, and a few neighbours in case another vault took that one.
const INDEX_BASE: u32 = 0x0150_0000;
const CANDIDATES: u32 = 4;

/// What the vault file says about its counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredCounter {
    pub index: u32,
    pub value: u64,
}

/// Per-session state, held by the keyring.
#[derive(Debug, Default)]
pub struct SessionCounter {
    last_bump: Option<Instant>,
    /// The TPM did not follow the file's last bump; the next unlock completes it.
    stalled: bool,
}

pub(super) fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        std::process::abort()
    };
    for part in parts {
        mac.update(&(part.len() as u32).to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn counter_auth(audit_key: &AuditKey, vault_id: Uuid) -> NvCounterAuth {
    NvCounterAuth {
        auth: hmac(
            audit_key.0.as_ref(),
            &[b"coffer.nv-counter-auth.v1", vault_id.as_bytes()],
        )
        .to_vec(),
        policy: hmac(
            audit_key.0.as_ref(),
            &[b"coffer.nv-counter-policy.v1", vault_id.as_bytes()],
        ),
    }
}

fn candidates(vault_id: Uuid) -> Vec<u32> {
    candidates_from(INDEX_BASE, vault_id)
}

/// The indexes a vault may use in the 64 Ki range at `base`: 16 bits from the vault id,
/// and a few neighbours in case another vault took that one.
pub(super) fn candidates_from(base: u32, vault_id: Uuid) -> Vec<u32> {
    let digest = Sha256::digest(vault_id.as_bytes());
    let start = u32::from(u16::from_be_bytes([digest[0], digest[1]]));
    (0..CANDIDATES)
        .map(|i| base | ((start + i) & 0xffff))
        .collect()
}

/// Where and under which MAC domain a vault keeps one of its TPM counters' record in
/// `vault_meta`: the NV index, the value last seen, and an audit-key HMAC over both.
pub(super) struct CounterRecord {
    pub(super) meta_key: &'static str,
    pub(super) domain: &'static [u8],
}

pub(super) const ROLLBACK_RECORD: CounterRecord = CounterRecord {
    meta_key: meta::ROLLBACK_COUNTER,
    domain: b"coffer.rollback-counter.v1",
};

/// What the file holds for a counter.
pub(super) enum Record {
    Missing,
    /// There, but not as Coffer wrote it.
    Tampered,
    Valid {
        index: u32,
        value: u64,
    },
}

impl CounterRecord {
    fn tag(&self, audit_key: &AuditKey, vault_id: Uuid, index: u32, value: u64) -> [u8; 32] {
        hmac(
            audit_key.0.as_ref(),
            &[
                self.domain,
                vault_id.as_bytes(),
                &index.to_be_bytes(),
                &value.to_be_bytes(),
            ],
        )
    }

    fn decode(bytes: &[u8]) -> Option<(u32, u64, &[u8])> {
        if bytes.len() != 4 + 8 + 32 {
            return None;
        }
        let index = u32::from_be_bytes(bytes[0..4].try_into().ok()?);
        let value = u64::from_be_bytes(bytes[4..12].try_into().ok()?);
        Some((index, value, &bytes[12..]))
    }

    pub(super) fn read(
        &self,
        conn: &Connection,
        audit_key: &AuditKey,
        vault_id: Uuid,
    ) -> Result<Record> {
        let Some(bytes) = meta::get(conn, self.meta_key)? else {
            return Ok(Record::Missing);
        };
        let Some((index, value, mac)) = Self::decode(&bytes) else {
            return Ok(Record::Tampered);
        };
        let expected = self.tag(audit_key, vault_id, index, value);
        Ok(
            if bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], mac)) {
                Record::Valid { index, value }
            } else {
                Record::Tampered
            },
        )
    }

    /// The index as the file names it, without the MAC check: all a locked process can do.
    pub(super) fn index_unauthenticated(&self, conn: &Connection) -> Result<Option<u32>> {
        Ok(meta::get(conn, self.meta_key)?
            .as_deref()
            .and_then(Self::decode)
            .map(|(index, _, _)| index))
    }

    pub(super) fn write(
        &self,
        conn: &Connection,
        audit_key: &AuditKey,
        vault_id: Uuid,
        index: u32,
        value: u64,
    ) -> Result<()> {
        let mut bytes = Vec::with_capacity(44);
        bytes.extend_from_slice(&index.to_be_bytes());
        bytes.extend_from_slice(&value.to_be_bytes());
        bytes.extend_from_slice(&self.tag(audit_key, vault_id, index, value));
        meta::set(conn, self.meta_key, &bytes)?;
        Ok(())
    }
}

/// The stored counter, `None` if the vault has none yet; refused if its MAC is wrong.
pub fn read_stored(
    conn: &Connection,
    audit_key: &AuditKey,
    vault_id: Uuid,
) -> Result<Option<StoredCounter>> {
    match ROLLBACK_RECORD.read(conn, audit_key, vault_id)? {
        Record::Missing => Ok(None),
        Record::Tampered => Err(Error::RollbackStateTampered),
        Record::Valid { index, value } => Ok(Some(StoredCounter { index, value })),
    }
}

pub fn write_stored(
    conn: &Connection,
    audit_key: &AuditKey,
    vault_id: Uuid,
    counter: StoredCounter,
) -> Result<()> {
    ROLLBACK_RECORD.write(conn, audit_key, vault_id, counter.index, counter.value)
}

/// Defines this vault's counter on `tpm` (at `init`, or for a vault that has none yet).
pub fn establish(tpm: &mut Tpm, audit_key: &AuditKey, vault_id: Uuid) -> Result<StoredCounter> {
    let (index, value) =
        tpm.define_counter(&candidates(vault_id), &counter_auth(audit_key, vault_id))?;
    Ok(StoredCounter { index, value })
}

/// How the rollback code reaches the TPM: a connection the caller holds, or one opened
/// per use. Per use lets `catch_up` take the vault's write lock before the TPM's client
/// lock, the order every write follows (a write may unseal a key while holding the
/// vault's lock), so two processes never wait on each other's lock.
pub enum TpmAccess<'a> {
    Held(&'a mut Tpm),
    Connect(&'a str),
}

impl TpmAccess<'_> {
    fn with<T>(&mut self, op: impl FnOnce(&mut Tpm) -> Result<T>) -> Result<T> {
        match self {
            TpmAccess::Held(tpm) => op(tpm),
            TpmAccess::Connect(tcti) => op(&mut Tpm::connect(tcti)?),
        }
    }
}

/// What unlocking found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// File and TPM agree.
    InSync,
    /// The vault predates rollback detection: it needs a counter.
    NoCounter,
}

/// Compares the file's counter with the TPM's, and catches the TPM up if a process
/// committed a bump but has not (or never will) increment it. A file behind the TPM is
/// [`Error::Rollback`].
pub fn check(
    store: &mut Store,
    tpm: &mut TpmAccess<'_>,
    audit_key: &AuditKey,
    vault_id: Uuid,
) -> Result<Verdict> {
    let id = counter_auth(audit_key, vault_id);
    let candidate = read_stored(store.conn(), audit_key, vault_id)?;
    // The TPM first, then the file: every TPM value was committed to the file before the
    // TPM reached it, so a file read after the TPM read is never legitimately behind it.
    let current = match candidate {
        Some(stored) => Some(
            tpm.with(|t| Ok(t.read_counter(stored.index, &id)?))?
                .ok_or(TpmError::NvCounterMissing {
                    index: stored.index,
                })?,
        ),
        None => None,
    };
    let Some(stored) = read_stored(store.conn(), audit_key, vault_id)? else {
        // No record: fine for a vault from before counters, unless this vault already has
        // a counter on the TPM, which means the record was deleted from the file.
        for index in candidates(vault_id) {
            match tpm.with(|t| Ok(t.read_counter(index, &id)?)) {
                Ok(Some(_)) => return Err(Error::RollbackStateMissing),
                Ok(None) | Err(Error::Tpm(TpmError::NvCounterForeign { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        return Ok(Verdict::NoCounter);
    };
    let current = match current {
        Some(current) if candidate.map(|c| c.index) == Some(stored.index) => current,
        _ => return Err(Error::RollbackStateTampered),
    };
    if stored.value < current {
        return Err(Error::Rollback {
            stored: stored.value,
            current,
        });
    }
    if stored.value > current {
        catch_up(store, tpm, audit_key, vault_id)?;
    }
    Ok(Verdict::InSync)
}

/// Under the vault's write lock: increments the TPM counter until it reaches the value
/// committed to the file. Idempotent, so any process may run it.
fn catch_up(
    store: &mut Store,
    tpm: &mut TpmAccess<'_>,
    audit_key: &AuditKey,
    vault_id: Uuid,
) -> Result<()> {
    let id = counter_auth(audit_key, vault_id);
    let tx = store.write()?;
    let Some(stored) = read_stored(&tx, audit_key, vault_id)? else {
        return Ok(());
    };
    tpm.with(|tpm| {
        let mut current =
            tpm.read_counter(stored.index, &id)?
                .ok_or(TpmError::NvCounterMissing {
                    index: stored.index,
                })?;
        while current < stored.value {
            current = tpm.increment_counter(stored.index, &id)?;
        }
        Ok(())
    })?;
    // Nothing was written: dropping the transaction releases the lock.
    drop(tx);
    Ok(())
}

/// For `recover`: the counter value the recovered vault stores. A vault without a counter
/// on this TPM gets one; a rolled-back vault, one whose record was removed or altered, or
/// whose index holds something else, is refused unless `accept_rollback`, in which case
/// the file is re-synced to the TPM.
pub fn settle_for_recovery(
    store: &mut Store,
    tpm: &mut Tpm,
    audit_key: &AuditKey,
    vault_id: Uuid,
    accept_rollback: bool,
) -> Result<StoredCounter> {
    let id = counter_auth(audit_key, vault_id);
    let refusal = match check(store, &mut TpmAccess::Held(tpm), audit_key, vault_id) {
        Ok(Verdict::InSync) => {
            return read_stored(store.conn(), audit_key, vault_id)?
                .ok_or(Error::RollbackStateMissing);
        }
        // No counter on this TPM: the usual reason to recover is a new or cleared TPM,
        // where the old counter is gone with the old seeds. Nothing can tell whether this
        // file was the newest there; from here on the new counter guards it.
        Ok(Verdict::NoCounter) | Err(Error::Tpm(TpmError::NvCounterMissing { .. })) => {
            return establish(tpm, audit_key, vault_id)
        }
        Err(
            error @ (Error::Rollback { .. }
            | Error::RollbackStateMissing
            | Error::RollbackStateTampered
            | Error::Tpm(TpmError::NvCounterForeign { .. })),
        ) => error,
        Err(other) => return Err(other),
    };
    if !accept_rollback {
        return Err(refusal);
    }
    // Re-sync to this vault's counter if the TPM has it, else make a new one.
    for index in candidates(vault_id) {
        match tpm.read_counter(index, &id) {
            Ok(Some(value)) => return Ok(StoredCounter { index, value }),
            Ok(None) | Err(TpmError::NvCounterForeign { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    establish(tpm, audit_key, vault_id)
}

/// Inside a write's transaction: moves the file's counter one ahead if this session has
/// not done so lately. Returns what to increment the TPM to after the commit.
pub fn stage_bump(
    conn: &Connection,
    session: &SessionCounter,
    audit_key: &AuditKey,
    vault_id: Uuid,
) -> Result<Option<StoredCounter>> {
    if session.stalled
        || session
            .last_bump
            .is_some_and(|at| at.elapsed() < BUMP_INTERVAL)
    {
        return Ok(None);
    }
    let Some(stored) = read_stored(conn, audit_key, vault_id)? else {
        return Ok(None);
    };
    let next = StoredCounter {
        value: stored.value.saturating_add(1),
        ..stored
    };
    write_stored(conn, audit_key, vault_id, next)?;
    Ok(Some(next))
}

/// After the commit: increments the TPM counter to match the file. Best effort: if the
/// TPM does not answer, the file stays ahead and the next unlock catches the TPM up.
pub fn finish_bump(
    store: &mut Store,
    tcti: &str,
    session: &mut SessionCounter,
    audit_key: &AuditKey,
    vault_id: Uuid,
    staged: Option<StoredCounter>,
) {
    if staged.is_none() {
        return;
    }
    let done = catch_up(store, &mut TpmAccess::Connect(tcti), audit_key, vault_id);
    match done {
        Ok(()) => session.last_bump = Some(Instant::now()),
        Err(_) => session.stalled = true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_stay_in_the_owner_range() {
        for _ in 0..64 {
            for index in candidates(Uuid::new_v4()) {
                assert_eq!(index >> 24, 0x01);
                assert!((0x0150_0000..=0x0150_ffff).contains(&index));
            }
        }
    }

    #[test]
    fn the_stored_value_is_authenticated() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE vault_meta (name TEXT PRIMARY KEY, value BLOB)")
            .unwrap();
        let key = AuditKey::generate();
        let vault_id = Uuid::new_v4();
        let counter = StoredCounter {
            index: 0x0150_0001,
            value: 41,
        };
        write_stored(&conn, &key, vault_id, counter).unwrap();
        assert_eq!(read_stored(&conn, &key, vault_id).unwrap(), Some(counter));
        // Editing the value without the audit key breaks the MAC.
        let mut bytes = meta::get(&conn, meta::ROLLBACK_COUNTER).unwrap().unwrap();
        bytes[11] = 42;
        meta::set(&conn, meta::ROLLBACK_COUNTER, &bytes).unwrap();
        assert!(matches!(
            read_stored(&conn, &key, vault_id),
            Err(Error::RollbackStateTampered)
        ));
    }
}
