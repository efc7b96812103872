//! Re-wrapping data keys under a key's newest version, and retiring old key versions.
//!
//! A re-wrap opens each data key with the KEK version that wrapped it and wraps it again
//! under the newest version (the AAD names key id and version, so the wrapping is bound
//! to its new key version); the value ciphertexts are not touched. Work goes in batches,
//! one transaction (with one audit entry) each, choosing rows still under an older
//! version, so a re-wrap killed at any moment simply continues where it stopped.

use uuid::Uuid;

use super::audit::AuditEvent;
use super::context;
use super::error::{Error, Result};
use super::keyring::Keyring;
use super::Vault;
use crate::crypto::DataKey;
use crate::model::Timestamp;
use crate::store::rotation::{self as rows, StaleDataKey};
use crate::store::{keys as key_rows, record_change, StoreError};

/// Data keys re-wrapped per transaction.
pub const REWRAP_BATCH: u32 = 1000;

/// Pause between two batches of a long re-wrap, so that other writers (another
/// process's write, a reader's audit flush) get the write lock: SQLite's busy handler
/// polls with growing sleeps and would otherwise keep missing the moment it is free.
pub const REWRAP_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// How far a re-wrap has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RewrapProgress {
    pub key_id: Uuid,
    pub to_version: u32,
    /// Re-wrapped by this call so far.
    pub done: u64,
    /// Still under an older version.
    pub remaining: u64,
}

/// Re-wraps `stale` under (`key_id`, `version`) inside `tx`, recording `change_seq` on
/// every row it changes.
pub(super) fn rewrap_rows(
    tx: &rusqlite::Transaction<'_>,
    keyring: &mut Keyring,
    vault_id: Uuid,
    stale: &[StaleDataKey],
    key_id: Uuid,
    version: u32,
    change_seq: i64,
) -> Result<()> {
    let mut opened = Vec::with_capacity(stale.len());
    for row in stale {
        let kek = keyring.kek(tx, row.key_id, row.key_version)?;
        let aad = context::data_key(
            vault_id,
            row.key_id,
            row.key_version,
            row.secret_id,
            row.version_id,
        );
        let dek = DataKey::unwrap(kek, aad.as_bytes(), &row.wrapped_dek).map_err(|_| {
            Error::Tampered {
                name: format!("(secret id {})", row.secret_id),
                version_id: row.version_id,
            }
        })?;
        opened.push(dek);
    }
    let kek = keyring.kek(tx, key_id, version)?;
    for (row, dek) in stale.iter().zip(&opened) {
        let aad = context::data_key(vault_id, key_id, version, row.secret_id, row.version_id);
        let wrapped = dek.wrap(kek, aad.as_bytes());
        rows::set_wrapped_dek(tx, row.version_id, key_id, version, &wrapped, change_seq)?;
    }
    Ok(())
}

/// Re-wraps every data key of one secret under `key_id`'s newest version (used when a
/// secret moves to another key).
pub(super) fn rewrap_secret(
    tx: &rusqlite::Transaction<'_>,
    keyring: &mut Keyring,
    vault_id: Uuid,
    secret_id: Uuid,
    key_id: Uuid,
    change_seq: i64,
) -> Result<usize> {
    let newest = key_rows::newest_key_version(tx, key_id)?
        .ok_or(StoreError::Missing {
            what: "key version",
        })?
        .version;
    let stale = rows::stale_of_secret(tx, secret_id, key_id, newest)?;
    rewrap_rows(tx, keyring, vault_id, &stale, key_id, newest, change_seq)?;
    Ok(stale.len())
}

/// Runs re-wrap batches until none is left: adds them up, reports after each, and
/// pauses between two so that other writers get the write lock. Where a batch runs is
/// the caller's: in this process, through the agent, or in the app, which lets go of
/// the vault between batches.
pub fn drive_rewrap<E>(
    mut batch: impl FnMut() -> std::result::Result<RewrapProgress, E>,
    progress: &mut dyn FnMut(&RewrapProgress),
) -> std::result::Result<RewrapProgress, E> {
    let mut total: Option<RewrapProgress> = None;
    loop {
        let step = batch()?;
        let sum = RewrapProgress {
            done: total.map_or(0, |t| t.done) + step.done,
            ..step
        };
        progress(&sum);
        total = Some(sum);
        if step.remaining == 0 || step.done == 0 {
            return Ok(sum);
        }
        std::thread::sleep(REWRAP_PAUSE);
    }
}

impl Vault {
    /// Re-wraps up to `batch` data keys of `key` under its newest version, in one
    /// transaction; `done` is how many, `remaining` how many are still under older ones.
    pub fn rewrap_key_batch(&mut self, key: &str, batch: u32) -> Result<RewrapProgress> {
        if !(1..=100_000).contains(&batch) {
            return Err(Error::invalid("batch size", "use 1 to 100000"));
        }
        let vault_id = self.vault_id;
        let event = AuditEvent::new("rewrap_key");
        self.write(event, |tx, keyring, event| {
            let key = super::secrets::resolve_key(tx, &keyring.integrity(), key)?;
            super::secrets::usable(&key)?;
            event.key_id = Some(key.id);
            let newest = key_rows::newest_key_version(tx, key.id)?
                .ok_or(StoreError::Missing {
                    what: "key version",
                })?
                .version;
            let stale = rows::stale_under_key(tx, key.id, newest, batch)?;
            if !stale.is_empty() {
                let seq = record_change(
                    tx,
                    Timestamp::now().millis(),
                    "key",
                    key.id.as_bytes(),
                    "rewrap",
                )?;
                rewrap_rows(tx, keyring, vault_id, &stale, key.id, newest, seq)?;
            }
            let remaining = rows::count_stale_under_key(tx, key.id, newest)?;
            event.detail = format!(
                "to_version={newest} rewrapped={} remaining={remaining}",
                stale.len()
            );
            Ok(RewrapProgress {
                key_id: key.id,
                to_version: newest,
                done: stale.len() as u64,
                remaining,
            })
        })
    }

    /// Re-wraps every data key of `key` under its newest version, batch by batch,
    /// calling `progress` after each batch.
    pub fn rewrap_key(
        &mut self,
        key: &str,
        batch: u32,
        progress: &mut dyn FnMut(&RewrapProgress),
    ) -> Result<RewrapProgress> {
        drive_rewrap(|| self.rewrap_key_batch(key, batch), progress)
    }

    /// Deletes an old key version's sealed KEK and its recovery wrapping, once no data
    /// key is wrapped under it. The newest version cannot be retired. Ciphertexts from
    /// `encrypt`/`generate_data_key` under that version can no longer be decrypted.
    pub fn retire_key_version(&mut self, key: &str, version: u32) -> Result<()> {
        let event = AuditEvent::new("retire_key_version").detail(format!("version={version}"));
        self.write(event, |tx, keyring, event| {
            let key = super::secrets::resolve_key(tx, &keyring.integrity(), key)?;
            event.key_id = Some(key.id);
            let newest = key_rows::newest_key_version(tx, key.id)?
                .ok_or(StoreError::Missing {
                    what: "key version",
                })?
                .version;
            if key_rows::key_version(tx, key.id, version)?.is_none() {
                return Err(Error::invalid(
                    "key version",
                    format!("key {} has no version {version} (`coffer key describe {}` lists them)", key.id, key.id),
                ));
            }
            if version == newest {
                return Err(Error::invalid(
                    "key version",
                    format!("version {version} is the newest of key {}; rotate the key first, re-wrap, then retire the old version", key.id),
                ));
            }
            let count = rows::count_under_key_version(tx, key.id, version)?;
            if count > 0 {
                return Err(Error::KeyVersionInUse {
                    key_id: key.id,
                    version,
                    count,
                });
            }
            record_change(
                tx,
                Timestamp::now().millis(),
                "key",
                key.id.as_bytes(),
                "retire_version",
            )?;
            rows::delete_key_version(tx, key.id, version)?;
            Ok(())
        })
    }
}
