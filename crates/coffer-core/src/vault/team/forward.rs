//! A member's write to a team folder, applied by the folder's primary.
//!
//! The member encrypts the value itself, with a fresh data key, exactly as a version is
//! stored (associated data: the member's vault id, the secret and the version), and seals
//! the data key to the primary with HPKE, bound to both vaults, both regions, the secret
//! and the version. So the value crosses the link only as the ciphertext it will be
//! stored as, and the primary keeps that ciphertext as it came (recording the member's
//! vault id, as a replica does for its primary's). The primary learns who wrote from the
//! pinned TLS link, checks that member's role in the folder, and applies the write in one
//! transaction whose outbox entries name the member as author; the change then reaches
//! every member, the writer included, signed by the primary.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::TeamError;
use super::{state, FolderState, TeamRole};
use crate::crypto::DataKey;
use crate::model::{SecretValue, VersionWritten};
use crate::names::{SecretName, StagingLabel};
use crate::region::sealed::{b64, seal_data_key, ReplicaContext, SealPurpose, SealedDataKey};
use crate::region::transport::{self, Caller, Link, Target};
use crate::region::{Fingerprint, PeerUrl, RegionError};
use crate::store::replication::as_author;
use crate::store::secrets as secret_rows;
use crate::vault::context;
use crate::vault::error::{Error, Result};
use crate::vault::secrets::{apply_forwarded, Forwarded};
use crate::vault::{AuditEvent, Vault};

/// Where a member sends its writes (under the listener's replication prefix).
pub const WRITE_PATH: &str = "/coffer/v1/sync/team/write";

/// A new secret's fields, when the write creates it.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct NewSecret {
    pub description: String,
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
}

/// One write, as the member sends it.
#[derive(Serialize, Deserialize, Debug)]
pub struct ForwardedWrite {
    pub author_vault: Uuid,
    /// The vault it is meant for: another vault answering at that address refuses it.
    pub primary_vault: Uuid,
    pub name: String,
    pub secret_id: Uuid,
    /// Present when the write creates the secret.
    pub create: Option<NewSecret>,
    pub version_id: Uuid,
    pub labels: Vec<String>,
    #[serde(with = "b64")]
    pub ciphertext: Vec<u8>,
    pub sealed_key: SealedDataKey,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct WriteAnswer {
    pub secret_id: Uuid,
    pub version_id: Uuid,
    pub labels: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct WriteRefusal {
    pub code: String,
    pub message: String,
}

impl WriteRefusal {
    /// How a vault answers a team request: the result as JSON, or the error's code and
    /// sentence with the HTTP status its code stands for.
    pub(crate) fn answer<T: Serialize>(outcome: Result<T>) -> (u16, Vec<u8>) {
        match outcome {
            Ok(answer) => (200, serde_json::to_vec(&answer).unwrap_or_default()),
            Err(error) => {
                let code = error.code();
                let refusal = WriteRefusal {
                    code: code.to_owned(),
                    message: error.to_string(),
                };
                (
                    http_status(code),
                    serde_json::to_vec(&refusal).unwrap_or_default(),
                )
            }
        }
    }

    /// The refusal in a non-200 answer; an answer that is not one is shown as it came
    /// (cut short), so the caller still gets a sentence.
    pub(crate) fn read(status: u16, answer: &[u8]) -> WriteRefusal {
        serde_json::from_slice(answer).unwrap_or_else(|_| WriteRefusal {
            code: "team_refused".into(),
            message: format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&answer[..answer.len().min(300)])
            ),
        })
    }
}

/// The engine's codes a primary may answer with, as static strings for [`Error::code`].
const KNOWN_CODES: &[&str] = &[
    "forbidden",
    "team_not_found",
    "team_conflict",
    "secret_not_found",
    "secret_exists",
    "secret_deleted",
    "invalid_argument",
    "value_too_large",
    "empty_value",
    "locked",
    "replica_read_only",
    "peer_untrusted",
    "key_unavailable",
    "vault_busy",
];

pub(crate) fn static_code(code: &str) -> &'static str {
    KNOWN_CODES
        .iter()
        .find(|known| **known == code)
        .copied()
        .unwrap_or("team_refused")
}

pub(crate) fn http_status(code: &str) -> u16 {
    match code {
        "forbidden" | "peer_untrusted" => 403,
        "team_not_found" | "secret_not_found" => 404,
        "team_conflict" | "secret_exists" | "secret_deleted" | "replica_read_only" => 409,
        "invalid_argument" | "value_too_large" | "empty_value" => 400,
        "locked" | "vault_busy" => 503,
        _ => 500,
    }
}

/// What a member is about to write.
pub(crate) enum Intent<'a> {
    Put {
        value: &'a SecretValue,
        labels: &'a [StagingLabel],
    },
    Create {
        value: &'a SecretValue,
        new: NewSecret,
    },
}

impl Vault {
    /// An open link to a team peer. The outer error is this vault's (locked, tampered
    /// pairing), the inner one the network's: callers say which peer could not be reached.
    pub(crate) fn team_link(
        &mut self,
        region: &str,
    ) -> Result<std::result::Result<Link, RegionError>> {
        let peer = self.peer_row(region)?;
        let (own_region, identity) = self.identity()?;
        let url = PeerUrl::parse(&peer.url)?;
        let pinned = Fingerprint::from_bytes(&peer.fingerprint).ok_or_else(|| {
            RegionError::PeerTampered {
                name: region.to_owned(),
            }
        })?;
        let hello = identity.hello(&own_region, self.vault_id)?;
        let (config, verifier) = crate::region::tls::client_config(&identity, pinned)?;
        Ok(transport::connect(
            Caller {
                config,
                verifier,
                hello: &hello,
                fingerprint: identity.fingerprint()?,
            },
            Target {
                name: region,
                url: &url,
                pinned,
            },
        ))
    }

    /// The folder whose primary a write of `name` must go to, if it is a team folder
    /// this vault is not the primary of.
    pub(crate) fn team_route(&mut self, name: &str) -> Result<Option<FolderState>> {
        let integrity = self.integrity()?;
        let Some(state) = state::load(self.store.conn(), &integrity)? else {
            return Ok(None);
        };
        let Some(folder) = state.folder_of(name) else {
            return Ok(None);
        };
        let own = integrity.region_name(self.store.conn())?;
        if own.as_deref() == Some(folder.primary_region.as_str()) {
            if let Some(from) = &folder.handover_from {
                let own = own.unwrap_or_default();
                if !super::primary::holds(
                    self.store.conn(),
                    &integrity,
                    &state,
                    &folder.prefix,
                    &own,
                )? {
                    return Err(TeamError::Moving {
                        prefix: folder.prefix.clone(),
                        from: from.clone(),
                        to: own,
                    }
                    .into());
                }
            }
            return Ok(None);
        }
        Ok(Some(folder.clone()))
    }

    /// Sends a write to the folder's primary and waits for its answer. Nothing is
    /// written here: the new version arrives with the primary's next replication.
    pub(crate) fn forward_write(
        &mut self,
        folder: &FolderState,
        name: &SecretName,
        intent: Intent<'_>,
    ) -> Result<VersionWritten> {
        let local = secret_rows::find_by_name(self.store.conn(), name.as_str())?;
        let (secret_id, create, value, labels) = match intent {
            Intent::Put { value, labels } => {
                let Some(copy) = local else {
                    return Err(Error::SecretNotFound {
                        name: name.to_string(),
                    });
                };
                self.integrity()?.check_secret(self.store.conn(), &copy)?;
                (copy.id, None, value, labels.to_vec())
            }
            Intent::Create { value, new } => {
                if local.is_some() {
                    return Err(Error::SecretExists {
                        name: name.to_string(),
                    });
                }
                (Uuid::new_v4(), Some(new), value, Vec::new())
            }
        };
        let unreachable = |cause: String| TeamError::PrimaryUnreachable {
            name: name.to_string(),
            prefix: folder.prefix.clone(),
            primary: folder.primary_region.clone(),
            cause,
        };
        let primary = folder.primary_region.as_str();
        let mut link = self
            .team_link(primary)?
            .map_err(|e| unreachable(e.to_string()))?;
        let (own_region, _) = self.identity()?;
        let primary_vault = link.contact.hello.vault_id;
        let primary_hpke = link
            .contact
            .hello
            .hpke_key()
            .ok_or_else(|| RegionError::Protocol {
                name: primary.to_owned(),
                reason: "its hello carries no X25519 key".into(),
            })?;
        let version_id = Uuid::new_v4();
        let dek = DataKey::generate();
        let ciphertext = dek.seal(
            context::secret_value(self.vault_id, secret_id, version_id).as_bytes(),
            &value.encode(),
        );
        let sealed_key = seal_data_key(
            &dek,
            &primary_hpke,
            &ReplicaContext {
                purpose: SealPurpose::ForwardedWrite,
                primary_vault: self.vault_id,
                primary_region: own_region.to_string(),
                replica_vault: primary_vault,
                replica_region: primary.to_owned(),
                secret_id,
                version_id,
            },
        )?;
        drop(dek);
        let created = create.is_some();
        let write = ForwardedWrite {
            author_vault: self.vault_id,
            primary_vault,
            name: name.to_string(),
            secret_id,
            create,
            version_id,
            labels: labels.iter().map(|l| l.as_str().to_owned()).collect(),
            ciphertext,
            sealed_key,
        };
        let body =
            serde_json::to_vec(&write).map_err(|e| Error::invalid("write", e.to_string()))?;
        let (status, answer) = link
            .exchange(WRITE_PATH, body)
            .map_err(|e| unreachable(e.to_string()))?;
        let operation = if created {
            "create_secret"
        } else {
            "put_secret_value"
        };
        if status != 200 {
            let refusal = WriteRefusal::read(status, &answer);
            let error: Error = TeamError::RefusedByPrimary {
                name: name.to_string(),
                prefix: folder.prefix.clone(),
                primary: primary.to_owned(),
                code: static_code(&refusal.code),
                message: refusal.message,
            }
            .into();
            let event = AuditEvent::new(operation)
                .secret(None, name.as_str())
                .failed(error.code())
                .detail(format!("forwarded to={primary}"));
            let _ = self.write(event, |_, _, _| Ok(()));
            return Err(error);
        }
        let answer: WriteAnswer =
            serde_json::from_slice(&answer).map_err(|_| RegionError::Protocol {
                name: primary.to_owned(),
                reason: "its answer to a write is not readable".into(),
            })?;
        let mut event = AuditEvent::new(operation)
            .secret(Some(answer.secret_id), name.as_str())
            .detail(format!("forwarded to={primary}"));
        event.version_id = Some(answer.version_id);
        self.write(event, |_, _, _| Ok(()))?;
        Ok(VersionWritten {
            name: name.clone(),
            secret_id: answer.secret_id,
            version_id: answer.version_id,
            labels: answer
                .labels
                .iter()
                .filter_map(|l| StagingLabel::parse(l).ok())
                .collect(),
            created: true,
            applied_by: Some(primary.to_owned()),
        })
    }

    /// Answers a member's write (the listener's handler, for a caller whose pinned TLS
    /// identity is `caller`): status and JSON body.
    pub fn answer_team_write(&mut self, caller: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let outcome = serde_json::from_slice::<ForwardedWrite>(body)
            .map_err(|e| Error::invalid("team write", e.to_string()))
            .and_then(|write| self.apply_team_write(caller, write));
        WriteRefusal::answer(outcome)
    }

    fn apply_team_write(&mut self, caller: &str, write: ForwardedWrite) -> Result<WriteAnswer> {
        let (own_region, identity) = self.identity()?;
        let state = self.team_state()?.ok_or(TeamError::NoTeam)?;
        if write.primary_vault != self.vault_id {
            return Err(Error::invalid(
                "team write",
                "it is addressed to another vault; check the member's pairing",
            ));
        }
        let name = SecretName::parse(&write.name)?;
        let labels = write
            .labels
            .iter()
            .map(|l| StagingLabel::parse(l))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let folder = state
            .folder_of(name.as_str())
            .filter(|f| f.primary_region == own_region.as_str());
        if let Some(moving) = folder {
            let held = super::primary::holds(
                self.store.conn(),
                &self.integrity()?,
                &state,
                &moving.prefix,
                own_region.as_str(),
            )?;
            if !held {
                return Err(TeamError::Moving {
                    prefix: moving.prefix.clone(),
                    from: moving.handover_from.clone().unwrap_or_default(),
                    to: own_region.to_string(),
                }
                .into());
            }
        }
        let role = folder.and_then(|f| state.effective_role(caller, &f.prefix));
        let Some(folder) = folder.filter(|_| role.is_some_and(TeamRole::may_write)) else {
            let prefix = folder.map_or_else(String::new, |f| f.prefix.clone());
            let fix = match (role, folder) {
                (_, None) => format!(
                    "{name} is in no team folder whose primary is region {own_region}"
                ),
                (Some(_), Some(_)) => format!(
                    "an admin can make it a writer with `coffer team share {prefix} --member {caller} --role writer`"
                ),
                (None, Some(_)) => format!(
                    "the owner can share the folder with it: `coffer team share {prefix} --member {caller} --role writer`"
                ),
            };
            return Err(TeamError::RoleRefused {
                member: caller.to_owned(),
                role,
                prefix,
                name: name.to_string(),
                fix,
            }
            .into());
        };
        let dek = identity.open_data_key(
            &write.sealed_key,
            &ReplicaContext {
                purpose: SealPurpose::ForwardedWrite,
                primary_vault: write.author_vault,
                primary_region: caller.to_owned(),
                replica_vault: self.vault_id,
                replica_region: own_region.to_string(),
                secret_id: write.secret_id,
                version_id: write.version_id,
            },
        )?;
        // The value must open as stored, or every member would hold a version none can read.
        let plain = dek
            .open(
                context::secret_value(write.author_vault, write.secret_id, write.version_id)
                    .as_bytes(),
                &write.ciphertext,
            )
            .map_err(|_| Error::ReplicationRefused {
                region: caller.to_owned(),
                reason: "the value does not open with the data key sent with it".into(),
            })?;
        let value = SecretValue::decode(plain).ok_or_else(|| Error::ReplicationRefused {
            region: caller.to_owned(),
            reason: "the value is not a secret value".into(),
        })?;
        crate::vault::secrets::check_value(&value)?;
        drop(value);
        let operation = if write.create.is_some() {
            "create_secret"
        } else {
            "put_secret_value"
        };
        let event = AuditEvent::new(operation)
            .secret(None, name.as_str())
            .detail(format!("author={caller} folder={} via=team", folder.prefix));
        let vault_id = self.vault_id;
        let forwarded = Forwarded {
            author_vault: write.author_vault,
            name: &name,
            secret_id: write.secret_id,
            create: write.create.as_ref(),
            version_id: write.version_id,
            labels: &labels,
            ciphertext: write.ciphertext,
            dek: &dek,
        };
        let written = as_author(caller, || {
            self.write(event, |tx, keyring, event| {
                apply_forwarded(tx, keyring, vault_id, &forwarded, event)
            })
        })?;
        Ok(WriteAnswer {
            secret_id: written.secret_id,
            version_id: written.version_id,
            labels: written
                .labels
                .iter()
                .map(|l| l.as_str().to_owned())
                .collect(),
        })
    }
}
