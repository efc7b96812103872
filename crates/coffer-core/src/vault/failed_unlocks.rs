//! Failed unlocks that the audit log cannot lose, and cannot be made up.
//!
//! A failed unlock is recorded while the vault is locked, so its entry has no MAC until the
//! next successful unlock chains it. Until then, whoever can write the file could delete
//! those entries (hiding a run of PIN guesses) or add fake ones. So each vault owns a
//! second TPM NV counter, which anyone may increment (its auth value is empty: a process
//! that has just failed to unlock has no key) but nobody can decrement. A failed unlock
//! increments it and writes the value reached into its entry (`attempt=N`), both under
//! the vault's write lock, so the counter and the entries move together.
//!
//! The next successful unlock accounts for every increment since the value it last
//! accounted for (stored under a MAC keyed from the audit key): each must have exactly one
//! entry. Increments without an entry mean entries were deleted (or could not be
//! written); entries whose value the counter never reached, or that repeat one, were
//! forged. Either is written into the chained log as a `failed_unlock_check` entry with
//! result `tampered`, which `audit verify` reports from then on.
//!
//! What this cannot see: guesses made directly against the TPM, without Coffer (anyone
//! can ask the TPM to unseal a blob copied from the file). The TPM's dictionary-attack
//! lockout limits those; `status` says whether that brake is effective.

use rusqlite::Connection;
use uuid::Uuid;

use super::error::Result;
use super::keyring::AuditKey;
use super::rollback::{candidates_from, hmac, CounterRecord, Record};
use crate::store::audit as rows;
use crate::store::meta;
use crate::tpm::{NvCounterAuth, Tpm, TpmError};

/// The owner-hierarchy range for these counters, next to the rollback counters'.
const INDEX_BASE: u32 = 0x0151_0000;

/// The operation and detail of the chained entry that records the accounting.
pub const CHECK_OPERATION: &str = "failed_unlock_check";
const ATTEMPT_PREFIX: &str = "attempt=";

/// What the file says about its failed-unlock counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredAttempts {
    pub index: u32,
    /// The counter value up to which failed unlocks have been accounted for.
    pub accounted: u64,
}

fn counter_id(audit_key: &AuditKey, vault_id: Uuid) -> NvCounterAuth {
    NvCounterAuth {
        auth: Vec::new(),
        policy: hmac(
            audit_key.0.as_ref(),
            &[
                b"coffer.failed-unlock-counter-policy.v1",
                vault_id.as_bytes(),
            ],
        ),
    }
}

const RECORD: CounterRecord = CounterRecord {
    meta_key: meta::FAILED_UNLOCK_COUNTER,
    domain: b"coffer.failed-unlock-counter.v1",
};

/// The counter's index as the file names it, unauthenticated: all a locked process can
/// know. Pointing it elsewhere only makes the next unlock report the entries as forged.
pub fn index_for_locked(conn: &Connection) -> Result<Option<u32>> {
    RECORD.index_unauthenticated(conn)
}

/// What the file says, checked: `Err(())` when the record is there but was altered.
fn read_stored(
    conn: &Connection,
    audit_key: &AuditKey,
    vault_id: Uuid,
) -> Result<Option<std::result::Result<StoredAttempts, ()>>> {
    Ok(match RECORD.read(conn, audit_key, vault_id)? {
        Record::Missing => None,
        Record::Tampered => Some(Err(())),
        Record::Valid { index, value } => Some(Ok(StoredAttempts {
            index,
            accounted: value,
        })),
    })
}

pub fn write_stored(
    conn: &Connection,
    audit_key: &AuditKey,
    vault_id: Uuid,
    stored: StoredAttempts,
) -> Result<()> {
    RECORD.write(conn, audit_key, vault_id, stored.index, stored.accounted)
}

/// This vault's counter on `tpm`: the one it already has there, else a new one. `None`
/// when the TPM has no room or wants an owner password Coffer does not have: the vault
/// then works as before, with failed unlocks recorded but not counted.
pub fn establish(tpm: &mut Tpm, audit_key: &AuditKey, vault_id: Uuid) -> Option<StoredAttempts> {
    let id = counter_id(audit_key, vault_id);
    if let Some(existing) = find(tpm, &id, vault_id) {
        return Some(existing);
    }
    tpm.define_counter(&candidates_from(INDEX_BASE, vault_id), &id)
        .ok()
        .map(|(index, value)| StoredAttempts {
            index,
            accounted: value,
        })
}

/// This vault's counter if the TPM has it (recognised by its vault-specific policy).
fn find(tpm: &mut Tpm, id: &NvCounterAuth, vault_id: Uuid) -> Option<StoredAttempts> {
    candidates_from(INDEX_BASE, vault_id)
        .into_iter()
        .find_map(|index| match tpm.read_counter(index, id) {
            Ok(Some(value)) => Some(StoredAttempts {
                index,
                accounted: value,
            }),
            _ => None,
        })
}

/// What a successful unlock has to do about failed unlocks, decided before it takes the
/// vault's write lock, so that an unlock with nothing to account for writes nothing.
pub enum Plan {
    /// The counter has not moved and no entry waits.
    Nothing,
    /// The vault has no counter yet and one was just defined: record it (and chain any
    /// entries from before, as earlier versions did).
    Adopt(StoredAttempts),
    /// No counter can be had on this TPM; entries waiting are chained as they are.
    ChainOnly,
    /// Compare the counter with the entries, under the write lock ([`account`]).
    Check,
}

pub fn plan(
    conn: &Connection,
    tpm: &mut Tpm,
    audit_key: &AuditKey,
    vault_id: Uuid,
    has_unchained: bool,
) -> Result<Plan> {
    let id = counter_id(audit_key, vault_id);
    Ok(match read_stored(conn, audit_key, vault_id)? {
        Some(Ok(stored)) => match tpm.read_counter(stored.index, &id) {
            Ok(Some(value)) if value == stored.accounted && !has_unchained => Plan::Nothing,
            Ok(_) | Err(TpmError::NvCounterForeign { .. }) => Plan::Check,
            Err(error) => return Err(error.into()),
        },
        Some(Err(())) => Plan::Check,
        // A record deleted from the file, while the TPM still has the counter, is itself
        // something to report.
        None if find(tpm, &id, vault_id).is_some() => Plan::Check,
        None => match tpm.define_counter(&candidates_from(INDEX_BASE, vault_id), &id) {
            Ok((index, value)) => Plan::Adopt(StoredAttempts {
                index,
                accounted: value,
            }),
            Err(_) if has_unchained => Plan::ChainOnly,
            Err(_) => Plan::Nothing,
        },
    })
}

/// For a process whose unlock just failed, holding the vault's write lock: counts the
/// attempt on the TPM and returns the entry detail that records the value reached.
/// Best effort: without a counter (or a TPM that answers) the entry has no value, and
/// the next unlock reports it as not counted.
pub fn count_attempt(conn: &Connection, tcti: &str) -> String {
    let counted = index_for_locked(conn).ok().flatten().and_then(|index| {
        Tpm::connect(tcti)
            .and_then(|mut tpm| tpm.increment_open_counter(index))
            .ok()
    });
    counted
        .map(|value| format!("{ATTEMPT_PREFIX}{value}"))
        .unwrap_or_default()
}

/// Whether `detail` is what a locked vault writes into a failed unlock's entry.
pub fn is_attempt_detail(detail: &str) -> bool {
    detail.is_empty()
        || detail.strip_prefix(ATTEMPT_PREFIX).is_some_and(|n| {
            !n.is_empty() && n.len() <= 20 && n.bytes().all(|b| b.is_ascii_digit())
        })
}

fn attempt_value(detail: &str) -> Option<u64> {
    detail.strip_prefix(ATTEMPT_PREFIX)?.parse().ok()
}

/// The outcome of comparing the TPM's count with the entries waiting to be chained.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Accounting {
    /// Failed unlocks with an entry the counter backs.
    pub counted: u64,
    /// Increments of the counter with no entry: entries deleted, or never written.
    pub missing: u64,
    /// Entries (by sequence number) the counter does not back: forged or repeated.
    pub unbacked: Vec<i64>,
    /// Why the counter could not be used at all (record altered, counter gone).
    pub problem: Option<String>,
}

impl Accounting {
    pub fn is_clean(&self) -> bool {
        self.missing == 0 && self.unbacked.is_empty() && self.problem.is_none()
    }

    /// One line for the audit entry (and `audit verify`), naming no value.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!(
            "{} failed unlock(s) counted by the TPM",
            self.counted
        )];
        if let Some(problem) = &self.problem {
            parts.push(problem.clone());
        }
        if self.missing > 0 {
            parts.push(format!(
                "{} failed unlock(s) the TPM counted have no entry in the log (deleted, or not written)",
                self.missing
            ));
        }
        if !self.unbacked.is_empty() {
            let seqs: Vec<String> = self.unbacked.iter().map(i64::to_string).collect();
            parts.push(format!(
                "entries {} claim failed unlocks the TPM did not count (forged, or its counter was unreachable)",
                seqs.join(", ")
            ));
        }
        parts.join("; ")
    }
}

/// Inside the unlocking write (holding the vault's write lock, so no failed unlock can
/// slip in between): reads the TPM's count, compares it with the failed-unlock entries
/// waiting to be chained, and moves the accounted value up to the count. Returns `None`
/// when there is nothing to report (no attempts since, and nothing wrong).
pub fn account(
    conn: &Connection,
    tpm: &mut Tpm,
    audit_key: &AuditKey,
    vault_id: Uuid,
) -> Result<Option<Accounting>> {
    let tail = rows::tail(conn)?;
    let after = tail.last_chained.as_ref().map(|(seq, _)| *seq).unwrap_or(0);
    let waiting: Vec<rows::AuditRow> = rows::unchained_after(conn, after)?
        .into_iter()
        .filter(|row| row.operation == "unlock" && row.result != "ok")
        .collect();
    let mut accounting = Accounting::default();
    let id = counter_id(audit_key, vault_id);
    let stored = match read_stored(conn, audit_key, vault_id)? {
        Some(Ok(stored)) => Some(stored),
        Some(Err(())) => {
            accounting.problem =
                Some("the failed-unlock counter's record in the file was altered".to_owned());
            None
        }
        None => None,
    };
    let current = match stored {
        Some(stored) => match tpm.read_counter(stored.index, &id) {
            Ok(Some(value)) if value >= stored.accounted => Some((stored, value)),
            Ok(Some(_)) => {
                accounting.problem = Some(
                    "the TPM's failed-unlock counter is behind what the file accounted for, so it is not the counter this vault used (the TPM was cleared or changed)"
                        .to_owned(),
                );
                None
            }
            Ok(None) | Err(TpmError::NvCounterForeign { .. }) => {
                accounting.problem = Some(format!(
                    "the TPM no longer has this vault's failed-unlock counter (NV index {:#010x}): it was deleted or the TPM was cleared",
                    stored.index
                ));
                None
            }
            Err(error) => return Err(error.into()),
        },
        None => None,
    };
    match current {
        Some((stored, value)) => {
            let mut seen = std::collections::BTreeSet::new();
            for row in &waiting {
                match attempt_value(&row.detail) {
                    Some(n) if n > stored.accounted && n <= value && seen.insert(n) => {
                        accounting.counted += 1
                    }
                    _ => accounting.unbacked.push(row.seq),
                }
            }
            accounting.missing = (value - stored.accounted).saturating_sub(accounting.counted);
            if value != stored.accounted {
                write_stored(
                    conn,
                    audit_key,
                    vault_id,
                    StoredAttempts {
                        accounted: value,
                        ..stored
                    },
                )?;
            }
        }
        None => {
            // No usable counter: a vault from before counters, or one whose counter or
            // record was lost. Take one now, so that from here on failed unlocks count.
            accounting.counted = waiting.len() as u64;
            if accounting.problem.is_none() {
                if let Some(existing) = find(tpm, &id, vault_id) {
                    // The TPM has this vault's counter but the file has no record of it:
                    // the record was deleted, and with it what it had accounted for.
                    accounting.problem = Some(format!(
                        "the record of the failed-unlock counter (NV index {:#010x}) was removed from the file",
                        existing.index
                    ));
                }
            }
            if let Some(fresh) = establish(tpm, audit_key, vault_id) {
                write_stored(conn, audit_key, vault_id, fresh)?;
            }
        }
    }
    if waiting.is_empty() && accounting.is_clean() {
        return Ok(None);
    }
    Ok(Some(accounting))
}

/// The accounting entries in the chained log that found something wrong, for `verify`.
pub fn is_tampered_check(row: &rows::AuditRow) -> bool {
    row.operation == CHECK_OPERATION && row.result != "ok"
}
