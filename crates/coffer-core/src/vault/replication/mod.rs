//! Replica regions: which secrets go where, the read-only copies a replica keeps, and
//! promotion of a copy to a secret of its own.
//!
//! A primary records every change of a replicated secret in its outbox in the same
//! transaction as the change (`store::record_change` fans it out); a [`Replicator`]
//! (`coffer daemon`'s, and the app's while unlocked) sends the outbox to each region
//! through `coffer-sync` ([`push`]); a replica verifies, opens and re-wraps what it
//! receives and stores it as a read-only copy ([`inbound`]).

pub mod bundle;
pub mod inbound;
pub(crate) mod payload;
pub mod push;
#[cfg(test)]
mod tests;
mod wire;

use rusqlite::{Connection, Transaction};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::{Error, Result};
use super::{AuditEvent, Vault};
use crate::model::Timestamp;
use crate::names::SecretName;
use crate::region::{RegionError, RegionName};
use crate::store::replication::{self as rows, OutboxKind, OutboxRow};
use crate::store::secrets as secret_rows;
use crate::store::{peers as peer_rows, record_local_change, StoreError};

pub use bundle::{AckImport, BundleExport, BundleImport};
pub use inbound::Inbound;
pub use push::{greet, push, Contacts, HeldVault, Pusher, Replicator};
pub use wire::{NotApplied, CONTACT_PATH};

/// A secret's place in replication, as `describe` shows it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SecretReplication {
    /// Set on a replica: the region whose copy this is. Writes here are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_region: Option<String>,
    /// Set on a replica: when a change from the primary was last applied here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied: Option<Timestamp>,
    /// On a primary: each region the secret is replicated to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<RegionReplication>,
}

/// Like Secrets Manager's `ReplicationStatus`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RegionReplication {
    pub region: String,
    /// The key the copy is wrapped under there (its default key when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub status: ReplicationStatus,
    /// Why the region could not apply the last change, when `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub last_synced: Option<Timestamp>,
    /// Changes of this secret the region has not acknowledged yet.
    pub pending: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicationStatus {
    InSync,
    InProgress,
    Failed,
}

/// The replication facts of one secret, for `describe`.
pub(super) fn replication_of(
    conn: &Connection,
    secret_id: Uuid,
) -> Result<Option<SecretReplication>> {
    let follows = rows::replica_of(conn, secret_id)?;
    let mut regions = Vec::new();
    for row in rows::replicas_of(conn, secret_id)? {
        let pending = rows::pending_for(conn, &row.region, secret_id)?;
        // With changes pending, a region that cannot be reached is failing too.
        let link_error = match peer_rows::by_name(conn, &row.region)? {
            None => Some(format!(
                "region {} is not paired; pair it again with `coffer region add`",
                row.region
            )),
            Some(peer) if pending > 0 => peer.last_error,
            Some(_) => None,
        };
        let message = row.last_error.or(link_error);
        let status = match (&message, pending) {
            (Some(_), _) => ReplicationStatus::Failed,
            (None, 0) => ReplicationStatus::InSync,
            (None, _) => ReplicationStatus::InProgress,
        };
        regions.push(RegionReplication {
            region: row.region,
            key: row.replica_key,
            status,
            message,
            last_synced: row.synced_at.map(Timestamp),
            pending,
        });
    }
    if follows.is_none() && regions.is_empty() {
        return Ok(None);
    }
    Ok(Some(SecretReplication {
        last_applied: follows.as_ref().map(|f| Timestamp(f.applied_at)),
        primary_region: follows.map(|f| f.primary_region),
        regions,
    }))
}

/// `store::record_change` for the vault's own writes: a change to a secret that is a
/// replica of another region is refused here, naming the primary, before anything is
/// written. (Replicated changes are applied with [`record_local_change`].)
pub(super) fn record_change(
    tx: &Transaction<'_>,
    at: i64,
    entity: &str,
    entity_id: &[u8],
    operation: &str,
) -> Result<i64> {
    if entity == "secret" {
        if let Ok(id) = Uuid::from_slice(entity_id) {
            if let Some(follows) = rows::replica_of(tx, id)? {
                let name = secret_rows::secret_by_id(tx, id)?
                    .map(|row| row.name)
                    .unwrap_or_else(|| id.to_string());
                return Err(Error::ReplicaReadOnly {
                    name,
                    primary_region: follows.primary_region,
                });
            }
        }
    }
    Ok(crate::store::record_change(
        tx, at, entity, entity_id, operation,
    )?)
}

impl Vault {
    /// Replicates a secret to a paired region: every version it has now, and from now on
    /// every change, under `key` there (the region's default key when absent).
    pub fn replicate_secret(
        &mut self,
        name: &str,
        region: &str,
        key: Option<&str>,
    ) -> Result<SecretReplication> {
        let name = SecretName::parse(name)?;
        let region = RegionName::parse(region)?;
        let key = key.map(check_key_reference).transpose()?;
        self.require_unlocked()?;
        let event = AuditEvent::new("replicate_secret")
            .secret(None, name.as_str())
            .detail(format!("region={region}"));
        let id = self.write(event, |tx, keyring, event| {
            let integrity = keyring.integrity();
            let peer = peer_rows::by_name(tx, region.as_str())?.ok_or_else(|| {
                Error::from(RegionError::UnknownPeer {
                    name: region.to_string(),
                })
            })?;
            integrity.check_peer(&peer)?;
            let secret = secret_rows::find_by_name(tx, name.as_str())?.ok_or_else(|| {
                Error::SecretNotFound {
                    name: name.to_string(),
                }
            })?;
            integrity.check_secret(tx, &secret)?;
            event.secret_id = Some(secret.id);
            if let Some(follows) = rows::replica_of(tx, secret.id)? {
                return Err(Error::ReplicaReadOnly {
                    name: secret.name,
                    primary_region: follows.primary_region,
                });
            }
            if rows::replica(tx, secret.id, region.as_str())?.is_some() {
                return Err(Error::AlreadyReplicated {
                    name: secret.name,
                    region: region.to_string(),
                });
            }
            let now = Timestamp::now().millis();
            rows::insert_replica(
                tx,
                &rows::ReplicaRow {
                    secret_id: secret.id,
                    region: region.to_string(),
                    replica_key: key.clone(),
                    added_at: now,
                    synced_at: None,
                    last_error: None,
                    mac: integrity
                        .replica_tag(secret.id, region.as_str(), key.as_deref())
                        .to_vec(),
                },
            )?;
            queue_full_copy(tx, region.as_str(), secret.id, now)?;
            Ok(secret.id)
        })?;
        replication_of(self.store.conn(), id)?.ok_or(Error::Store(StoreError::Missing {
            what: "replication row",
        }))
    }

    /// Stops replicating a secret to a region; the region deletes its copy when the
    /// daemon next reaches it.
    pub fn remove_secret_region(&mut self, name: &str, region: &str) -> Result<()> {
        let name = SecretName::parse(name)?;
        let region = RegionName::parse(region)?;
        self.require_unlocked()?;
        let event = AuditEvent::new("remove_secret_region")
            .secret(None, name.as_str())
            .detail(format!("region={region}"));
        self.write(event, |tx, keyring, event| {
            let secret = secret_rows::find_by_name(tx, name.as_str())?.ok_or_else(|| {
                Error::SecretNotFound {
                    name: name.to_string(),
                }
            })?;
            keyring.integrity().check_secret(tx, &secret)?;
            event.secret_id = Some(secret.id);
            if !rows::delete_replica(tx, secret.id, region.as_str())? {
                return Err(Error::NotReplicated {
                    name: secret.name,
                    region: region.to_string(),
                });
            }
            rows::drop_pending(tx, region.as_str(), secret.id)?;
            let now = Timestamp::now().millis();
            let seq =
                record_local_change(tx, now, "secret", secret.id.as_bytes(), "remove_region")?;
            rows::push_outbox(
                tx,
                region.as_str(),
                &OutboxRow {
                    seq,
                    secret_id: secret.id,
                    kind: OutboxKind::Remove,
                    ..OutboxRow::default()
                },
            )?;
            Ok(())
        })
    }

    /// Makes a replica a secret of its own here: it stops following its primary and
    /// accepts writes. Its versions keep their ciphertexts (bound to the primary's vault
    /// id, which each version row records).
    pub fn promote_secret(&mut self, name: &str) -> Result<()> {
        let name = SecretName::parse(name)?;
        self.require_unlocked()?;
        let event = AuditEvent::new("promote_secret").secret(None, name.as_str());
        self.write(event, |tx, keyring, event| {
            let secret = secret_rows::find_by_name(tx, name.as_str())?.ok_or_else(|| {
                Error::SecretNotFound {
                    name: name.to_string(),
                }
            })?;
            keyring.integrity().check_secret(tx, &secret)?;
            event.secret_id = Some(secret.id);
            let Some(follows) = rows::replica_of(tx, secret.id)? else {
                return Err(Error::NotAReplica { name: secret.name });
            };
            event.detail = format!("was_replica_of={}", follows.primary_region);
            rows::delete_replica_of(tx, secret.id)?;
            let now = Timestamp::now().millis();
            let seq = record_local_change(tx, now, "secret", secret.id.as_bytes(), "promote")?;
            let mut row = secret;
            row.changed_at = now;
            secret_rows::update_secret(tx, &row, seq)?;
            // `Vault::write` re-MACs the row without the replica binding.
            Ok(())
        })
    }
}

/// Queues a whole copy of a secret for one region: one entry per version, oldest first
/// (each carries one ciphertext, so no entry outgrows a payload). Every entry also
/// carries the secret's whole state as of sending, so the last one completes the copy;
/// a secret without versions gets one entry with its state alone.
pub(crate) fn queue_full_copy(
    tx: &Transaction<'_>,
    region: &str,
    secret_id: Uuid,
    now: i64,
) -> Result<()> {
    let mut versions = secret_rows::versions(tx, secret_id)?;
    versions.sort_by_key(|v| v.created_at);
    let mut ids: Vec<Option<Uuid>> = versions.into_iter().map(|v| Some(v.id)).collect();
    if ids.is_empty() {
        ids.push(None);
    }
    for version_id in ids {
        let seq = record_local_change(tx, now, "secret", secret_id.as_bytes(), "replicate")?;
        rows::push_outbox(
            tx,
            region,
            &OutboxRow {
                seq,
                secret_id,
                kind: OutboxKind::State,
                version_id,
                ..OutboxRow::default()
            },
        )?;
    }
    Ok(())
}

/// A region was paired (again): whatever it held before is unknown, so every secret
/// replicated to it is queued whole, and both sides' positions start afresh. (Applying a
/// copy it already has changes nothing.)
pub(super) fn region_paired(tx: &Transaction<'_>, region: &str) -> Result<()> {
    rows::forget_region(tx, region)?;
    let now = Timestamp::now().millis();
    for secret_id in rows::secrets_replicated_to(tx, region)? {
        queue_full_copy(tx, region, secret_id, now)?;
    }
    Ok(())
}

/// A region was unpaired: nothing more is sent to it or taken from it. Which secrets
/// were meant for it is kept, for when it is paired again.
pub(super) fn region_unpaired(tx: &Transaction<'_>, region: &str) -> Result<()> {
    Ok(rows::forget_region(tx, region)?)
}

/// A key reference for the replica's side: it is resolved there, so only its form is
/// checked here.
fn check_key_reference(reference: &str) -> Result<String> {
    let valid = (1..=256).contains(&reference.len())
        && (reference.starts_with("alias/") || Uuid::parse_str(reference).is_ok())
        && reference.chars().all(|c| c.is_ascii_graphic());
    if valid {
        Ok(reference.to_owned())
    } else {
        Err(Error::invalid(
            "replica key",
            format!("{reference:?}; give a key id or alias/NAME as the replica region knows it"),
        ))
    }
}
