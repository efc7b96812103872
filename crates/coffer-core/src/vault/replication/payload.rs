//! What one outbox entry carries: the secret's state, signed by the primary, with the
//! version the change made as ciphertext plus its data key sealed to the replica.
//!
//! Built when sent, from the secret as it is then: an entry says "this is the secret
//! now", so applying entries in order converges on the primary whatever happened in
//! between, and applying one twice changes nothing.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{Connection, Transaction};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::super::context;
use super::super::error::{Error, Result};
use super::super::integrity::Integrity;
use super::super::keyring::Keyring;
use super::super::secrets::{default_key, resolve_key, usable};
use crate::crypto::DataKey;
use crate::region::sealed::{
    b64, seal_data_key, ReplicaContext, SealPurpose, SealedDataKey, SignedPayload,
};
use crate::region::Identity;
use crate::store::keys::{self as key_rows, KeyRow};
use crate::store::replication::{self as rows, OutboxKind, OutboxRow, ReplicaOf};
use crate::store::secrets::{self as secret_rows, SecretRow, VersionRow};
use crate::store::{record_local_change, StoreError};
use crate::vault::team::TeamSender;

/// The signed body of one entry.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ChangeBody {
    pub primary_vault: Uuid,
    pub primary_region: String,
    pub replica_vault: Uuid,
    pub replica_region: String,
    /// The entry's seq: a body cannot be replayed as another entry.
    pub seq: u64,
    pub secret_id: Uuid,
    pub change: Change,
    /// The team member whose write the primary applied (absent: the primary's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The revision of the team state the sender held (absent: in no team). A member
    /// whose state is older waits for the owner's instead of refusing a folder's new
    /// primary it has not heard of yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_revision: Option<u64>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    State(Box<SecretState>),
    /// Delete the copy (the region was removed from the secret, or it was purged).
    Remove,
    /// The team's state as its owner holds it (`secret_id` is the team's id), and what
    /// changed. `None`: the team is gone.
    Team(Box<TeamChange>),
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct TeamChange {
    pub state: Option<crate::vault::team::TeamState>,
    pub note: String,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct SecretState {
    pub name: String,
    pub description: String,
    pub tags: BTreeMap<String, String>,
    pub created_at: i64,
    pub changed_at: i64,
    pub deleted_at: Option<i64>,
    pub purge_at: Option<i64>,
    /// The key the replica wraps its copy under (its default key when absent).
    pub replica_key: Option<String>,
    pub labels: Vec<(String, Uuid)>,
    /// Every version the primary holds; the replica drops the others.
    pub version_ids: Vec<Uuid>,
    /// The versions this entry carries.
    pub versions: Vec<ReplicaVersion>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ReplicaVersion {
    pub id: Uuid,
    pub created_at: i64,
    /// The vault whose id the ciphertext's associated data names.
    pub value_vault: Uuid,
    #[serde(with = "b64")]
    pub ciphertext: Vec<u8>,
    pub sealed_key: SealedDataKey,
}

/// Both ends of a link, as the primary sees them.
pub struct LinkEnds<'a> {
    pub identity: &'a Identity,
    pub own_vault: Uuid,
    pub own_region: &'a str,
    pub peer_vault: Uuid,
    pub peer_region: &'a str,
    pub peer_hpke: [u8; 32],
    /// The revision of the team state this vault holds, read once per round.
    pub team_revision: Option<u64>,
}

/// Builds the signed payload of one outbox entry (on the primary).
pub fn build(
    conn: &Connection,
    keyring: &mut Keyring,
    ends: &LinkEnds<'_>,
    entry: &OutboxRow,
) -> Result<Vec<u8>> {
    let integrity = keyring.integrity();
    let secret = match entry.kind {
        OutboxKind::Remove | OutboxKind::Team => None,
        OutboxKind::State => secret_rows::secret_by_id(conn, entry.secret_id)?,
    };
    let change = match secret {
        None if entry.kind == OutboxKind::Team => Change::Team(Box::new(TeamChange {
            state: crate::vault::team::state::load(conn, &integrity)?,
            note: entry.note.clone().unwrap_or_default(),
        })),
        // Purged since, or removed from the region: the copy goes.
        None => Change::Remove,
        Some(secret) => {
            integrity.check_secret(conn, &secret)?;
            let replica_key = match rows::replica(conn, secret.id, ends.peer_region)? {
                Some(row) if !integrity.replica_intact(&row) => {
                    return Err(Error::ReplicaRowTampered {
                        name: secret.name,
                        region: ends.peer_region.to_owned(),
                    })
                }
                Some(row) => row.replica_key,
                None => None,
            };
            let mut versions = Vec::new();
            if let Some(version_id) = entry.version_id {
                if let Some(row) = secret_rows::version_by_id(conn, secret.id, version_id)? {
                    versions.push(seal_version(conn, keyring, ends, &secret, &row)?);
                }
            }
            Change::State(Box::new(SecretState {
                tags: secret_rows::tags(conn, secret.id)?,
                labels: secret_rows::labels(conn, secret.id)?,
                version_ids: secret_rows::versions(conn, secret.id)?
                    .into_iter()
                    .map(|v| v.id)
                    .collect(),
                name: secret.name,
                description: secret.description,
                created_at: secret.created_at,
                changed_at: secret.changed_at,
                deleted_at: secret.deleted_at,
                purge_at: secret.purge_at,
                replica_key,
                versions,
            }))
        }
    };
    let body = ChangeBody {
        primary_vault: ends.own_vault,
        primary_region: ends.own_region.to_owned(),
        replica_vault: ends.peer_vault,
        replica_region: ends.peer_region.to_owned(),
        seq: entry.seq as u64,
        secret_id: entry.secret_id,
        change,
        author: entry.author.clone(),
        team_revision: ends.team_revision,
    };
    let body = serde_json::to_vec(&body).map_err(|e| StoreError::Missing {
        what: if e.is_io() { "memory" } else { "payload" },
    })?;
    let signed = SignedPayload::sign(ends.identity, body)?;
    serde_json::to_vec(&signed).map_err(|_| Error::from(StoreError::Missing { what: "payload" }))
}

/// A version's ciphertext as stored, and its data key re-sealed to the replica.
fn seal_version(
    conn: &Connection,
    keyring: &mut Keyring,
    ends: &LinkEnds<'_>,
    secret: &SecretRow,
    row: &VersionRow,
) -> Result<ReplicaVersion> {
    let tampered = || Error::Tampered {
        name: secret.name.clone(),
        version_id: row.id,
    };
    let kek = keyring.kek(conn, row.key_id, row.key_version)?;
    let dek = DataKey::unwrap(
        kek,
        context::data_key(
            ends.own_vault,
            row.key_id,
            row.key_version,
            secret.id,
            row.id,
        )
        .as_bytes(),
        &row.wrapped_dek,
    )
    .map_err(|_| tampered())?;
    let sealed_key = seal_data_key(
        &dek,
        &ends.peer_hpke,
        &ReplicaContext {
            purpose: SealPurpose::Replica,
            primary_vault: ends.own_vault,
            primary_region: ends.own_region.to_owned(),
            replica_vault: ends.peer_vault,
            replica_region: ends.peer_region.to_owned(),
            secret_id: secret.id,
            version_id: row.id,
        },
    )?;
    Ok(ReplicaVersion {
        id: row.id,
        created_at: row.created_at,
        value_vault: row.origin_vault.unwrap_or(ends.own_vault),
        ciphertext: row.ciphertext.clone(),
        sealed_key,
    })
}

/// Who sent a batch, as the replica knows it.
pub struct Sender<'a> {
    pub region: &'a str,
    pub ca: &'a rustls_pki_types::CertificateDer<'static>,
}

/// This vault, receiving.
pub struct Receiving<'a> {
    pub identity: &'a Identity,
    pub vault_id: Uuid,
    pub region: &'a str,
}

/// The keys a batch's copies are wrapped under, resolved once per batch rather than per
/// entry: the batch is one write transaction, so no key can change while it runs.
#[derive(Default)]
pub struct BatchKeys {
    /// By the entry's key reference (`None`: the default key): the key and its newest
    /// version, or why it cannot be used.
    resolved: HashMap<Option<String>, std::result::Result<(KeyRow, u32), String>>,
}

impl BatchKeys {
    fn get(
        &mut self,
        tx: &Transaction<'_>,
        integrity: &Integrity,
        reference: &Option<String>,
    ) -> Result<std::result::Result<(KeyRow, u32), String>> {
        if let Some(found) = self.resolved.get(reference) {
            return Ok(found.clone());
        }
        let key = match reference {
            Some(reference) => resolve_key(tx, integrity, reference),
            None => default_key(tx, integrity),
        };
        let found = match key.and_then(|key| usable(&key).map(|()| key)) {
            Ok(key) => {
                let version = key_rows::newest_key_version(tx, key.id)?
                    .ok_or(StoreError::Missing {
                        what: "key version",
                    })?
                    .version;
                Ok((key, version))
            }
            Err(error) => Err(error.to_string()),
        };
        self.resolved.insert(reference.clone(), found.clone());
        Ok(found)
    }
}

/// What applying one entry did.
pub enum Applied {
    /// The copy of this secret (named) now matches the primary, or is gone; `author`
    /// names the team member whose write it was.
    Updated {
        secret_id: Uuid,
        name: String,
        author: Option<String>,
    },
    /// The team's state changed (what changed, as the owner described it).
    Team { note: String },
    /// Nothing happened, for a reason the primary should show.
    Refused { secret_id: Uuid, reason: String },
}

/// Checks, without any key of this vault, that a payload is signed by the sender and
/// addressed to this exact entry of this vault and region; returns its body. Run on
/// receipt (also by a locked replica, before keeping it) and again when applying.
pub fn verify(
    from: &Sender<'_>,
    vault_id: Uuid,
    region: &str,
    seq: u64,
    secret: [u8; 16],
    payload: &[u8],
) -> Result<ChangeBody> {
    let refused = |reason: &str| Error::ReplicationRefused {
        region: from.region.to_owned(),
        reason: format!("entry {seq}: {reason}"),
    };
    let signed: SignedPayload =
        serde_json::from_slice(payload).map_err(|_| refused("the payload is not readable"))?;
    let body = signed
        .verified_body(from.ca)
        .ok_or_else(|| refused("it is not signed by the region's pinned identity"))?;
    let body: ChangeBody =
        serde_json::from_slice(body).map_err(|_| refused("the signed body is not readable"))?;
    if body.primary_region != from.region
        || body.replica_vault != vault_id
        || body.replica_region != region
    {
        return Err(refused("it is addressed to another vault or region"));
    }
    if body.seq != seq || body.secret_id.as_bytes() != &secret {
        return Err(refused("it was signed for another entry"));
    }
    Ok(body)
}

/// Verifies, opens and applies one entry inside the replica's transaction. A payload
/// that is not signed by the sender or not addressed to this exact entry and vault is an
/// error: the whole batch is refused and nothing of it stays.
pub fn apply(
    tx: &Transaction<'_>,
    keyring: &mut Keyring,
    from: &Sender<'_>,
    to: &Receiving<'_>,
    keys: &mut BatchKeys,
    entry: &coffer_sync::WireEntry,
) -> Result<Applied> {
    let body = verify(
        from,
        to.vault_id,
        to.region,
        entry.seq,
        entry.secret.0,
        &entry.payload,
    )?;
    let secret_id = body.secret_id;
    let author = body.author.clone();
    let change = match body.change {
        Change::Team(change) => {
            return crate::vault::team::apply_state(
                tx,
                &keyring.integrity(),
                from.region,
                to.region,
                *change,
            )
        }
        change => change,
    };
    let existing = secret_rows::secret_by_id(tx, secret_id)?;
    let follows = rows::replica_of(tx, secret_id)?;
    // A team folder's secrets come from the folder's primary and from no other region.
    let team_name = match (&change, &existing) {
        (Change::State(state), _) => Some(state.name.clone()),
        (_, Some(row)) => Some(row.name.clone()),
        _ => None,
    };
    let sender = match &team_name {
        Some(name) => crate::vault::team::check_sender(
            tx,
            &keyring.integrity(),
            name,
            from.region,
            to.region,
            body.team_revision,
        )?,
        None => TeamSender::OutsideTeam,
    };
    if let TeamSender::Refused(reason) = sender {
        return Ok(Applied::Refused { secret_id, reason });
    }
    let from_folder_primary = sender == TeamSender::FolderPrimary;
    if let Some(row) = &existing {
        keyring.integrity().check_secret(tx, row)?;
        match &follows {
            Some(f) if f.primary_region == from.region => {}
            // A copy of a team folder whose primary moved: it follows the new one now.
            Some(_) if from_folder_primary => {}
            _ => {
                return Ok(Applied::Refused {
                    secret_id,
                    reason: format!(
                        "region {} has a secret {:?} of its own with this id (promoted there); it no longer follows",
                        to.region, row.name
                    ),
                })
            }
        }
    }
    let now = crate::model::Timestamp::now().millis();
    let state = match change {
        Change::Remove => {
            if let Some(row) = existing {
                record_local_change(tx, now, "secret", secret_id.as_bytes(), "replica_remove")?;
                secret_rows::purge_secret(tx, secret_id)?;
                return Ok(Applied::Updated {
                    secret_id,
                    name: row.name,
                    author,
                });
            }
            return Ok(Applied::Refused {
                secret_id,
                reason: "nothing to remove".into(),
            });
        }
        Change::State(state) => *state,
        // Taken above; a body cannot be both.
        Change::Team(_) => {
            return Ok(Applied::Refused {
                secret_id,
                reason: "a team change arrived where a secret's was expected".into(),
            })
        }
    };
    if let Some(other) = secret_rows::find_by_name(tx, &state.name)? {
        if other.id != secret_id {
            return Ok(Applied::Refused {
                secret_id,
                reason: format!(
                    "region {} already has another secret named {:?}",
                    to.region, state.name
                ),
            });
        }
    }
    let (key, key_version) = match keys.get(tx, &keyring.integrity(), &state.replica_key)? {
        Ok(found) => found,
        Err(reason) => return Ok(Applied::Refused { secret_id, reason }),
    };
    let seq_here = record_local_change(tx, now, "secret", secret_id.as_bytes(), "replica_apply")?;
    let row = SecretRow {
        id: secret_id,
        name: state.name.clone(),
        description: state.description,
        key_id: key.id,
        created_at: state.created_at,
        changed_at: state.changed_at,
        accessed_day: None,
        deleted_at: state.deleted_at,
        purge_at: state.purge_at,
        mac: Vec::new(),
    };
    // (Each statement also updates the search index: no update right after an insert
    // unless there is a deletion state to set.)
    if existing.is_none() {
        secret_rows::insert_secret(tx, &row, seq_here)?;
    }
    if existing.is_some() || row.deleted_at.is_some() || row.purge_at.is_some() {
        secret_rows::update_secret(tx, &row, seq_here)?;
    }
    for tag in secret_rows::tags(tx, secret_id)?.keys() {
        if !state.tags.contains_key(tag) {
            secret_rows::remove_tag(tx, secret_id, tag)?;
        }
    }
    for (tag, value) in &state.tags {
        secret_rows::set_tag(tx, secret_id, tag, value)?;
    }
    rows::set_replica_of(
        tx,
        secret_id,
        &ReplicaOf {
            primary_region: from.region.to_owned(),
            primary_vault: body.primary_vault,
            applied_at: now,
        },
    )?;
    if !state.versions.is_empty() {
        for version in &state.versions {
            if secret_rows::version_by_id(tx, secret_id, version.id)?.is_some() {
                continue;
            }
            let dek = to.identity.open_data_key(
                &version.sealed_key,
                &ReplicaContext {
                    purpose: SealPurpose::Replica,
                    primary_vault: body.primary_vault,
                    primary_region: from.region.to_owned(),
                    replica_vault: to.vault_id,
                    replica_region: to.region.to_owned(),
                    secret_id,
                    version_id: version.id,
                },
            )?;
            let kek = keyring.kek(tx, key.id, key_version)?;
            let wrapped_dek = dek.wrap(
                kek,
                context::data_key(to.vault_id, key.id, key_version, secret_id, version.id)
                    .as_bytes(),
            );
            secret_rows::insert_version(
                tx,
                &VersionRow {
                    id: version.id,
                    secret_id,
                    created_at: version.created_at,
                    key_id: key.id,
                    key_version,
                    wrapped_dek,
                    ciphertext: version.ciphertext.clone(),
                    client_token: None,
                    origin_vault: (version.value_vault != to.vault_id)
                        .then_some(version.value_vault),
                },
                seq_here,
            )?;
        }
    }
    for version in secret_rows::versions(tx, secret_id)? {
        if !state.version_ids.contains(&version.id) {
            rows::delete_version(tx, version.id)?;
        }
    }
    for (label, version_id) in secret_rows::labels(tx, secret_id)? {
        if !state.labels.contains(&(label.clone(), version_id)) {
            secret_rows::remove_label(tx, secret_id, &label)?;
        }
    }
    for (label, version_id) in &state.labels {
        // A label whose version comes in a later entry is set by that entry.
        if secret_rows::version_by_id(tx, secret_id, *version_id)?.is_some() {
            secret_rows::set_label(tx, secret_id, label, *version_id)?;
        }
    }
    keyring.integrity().seal_secret(tx, secret_id)?;
    Ok(Applied::Updated {
        secret_id,
        name: state.name,
        author,
    })
}
