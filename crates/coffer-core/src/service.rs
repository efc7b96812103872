//! The vault's operations as serializable requests.
//!
//! The CLI turns its arguments into a [`Request`] and runs it either against a vault it
//! unlocked itself or, through the agent's socket, against the agent's unlocked vault. Both
//! paths end in [`execute`], so every operation exists once whichever way it is reached.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::{Zeroize, Zeroizing};

use crate::model::{
    DeletedFilter, Deletion, KeyDescription, ListQuery, Page, SecretDescription, SecretSummary,
    SecretValue, SecretVersionInfo, SortBy, Timestamp, VersionSelector, VersionWritten,
};
use crate::names::{SecretName, StagingLabel};
use crate::rotation::{
    RotationHistoryEntry, RotationInfo, RotationOutcome, RotationSettings, Step,
};
use crate::vault::access_keys::AccessKeyInfo;
use crate::vault::envelope::EncryptionContext;
use crate::vault::regions::{PeerContact, PeerInfo, RegionIdentity};
use crate::vault::replication::SecretReplication;
use crate::vault::replication::{AckImport, BundleExport, BundleImport};
use crate::vault::rewrap::RewrapProgress;
use crate::vault::rotation::{DueReport, KeyRotationInfo};
use crate::vault::team::{Exposure, TeamInfo, TeamRemoval, TeamRole};
use crate::vault::{AuditEntry, AuditVerification, CreateSecret, Error, PutValue, Result, Vault};

/// A secret value on the wire: text as is, binary as base64. Wiped when dropped.
#[derive(Serialize, Deserialize, Default)]
pub struct WireValue {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
}

impl Drop for WireValue {
    fn drop(&mut self) {
        self.text.zeroize();
        self.base64.zeroize();
    }
}

impl std::fmt::Debug for WireValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WireValue(<redacted>)")
    }
}

impl WireValue {
    pub fn from_value(value: &SecretValue) -> Self {
        match value {
            SecretValue::Text(text) => WireValue {
                text: Some(text.to_string()),
                base64: None,
            },
            SecretValue::Binary(bytes) => WireValue {
                text: None,
                base64: Some(BASE64.encode(bytes.as_slice())),
            },
        }
    }

    pub fn to_value(&self) -> Result<SecretValue> {
        match (&self.text, &self.base64) {
            (Some(text), None) => Ok(SecretValue::Text(Zeroizing::new(text.clone()))),
            (None, Some(encoded)) => BASE64
                .decode(encoded)
                .map(|bytes| SecretValue::Binary(Zeroizing::new(bytes)))
                .map_err(|_| Error::invalid("value", "the binary value is not valid base64")),
            _ => Err(Error::invalid(
                "value",
                "give exactly one of text or base64",
            )),
        }
    }
}

/// Binary data that is not secret (ciphertexts), as base64.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Blob(pub String);

impl Blob {
    pub fn encode(bytes: &[u8]) -> Self {
        Blob(BASE64.encode(bytes))
    }

    pub fn decode(&self) -> Result<Vec<u8>> {
        BASE64
            .decode(self.0.trim())
            .map_err(|_| Error::invalid("ciphertext", "it is not valid base64"))
    }
}

#[derive(Serialize, Deserialize, Debug, Default, Clone)]
pub struct ListRequest {
    pub name_prefix: Option<String>,
    pub description_contains: Option<String>,
    pub tag_key: Option<String>,
    pub tag_value: Option<String>,
    pub text: Option<String>,
    /// "exclude" (default), "include" or "only".
    pub deleted: Option<String>,
    /// "name" (default) or "changed".
    pub sort: Option<String>,
    pub limit: Option<u32>,
    pub next_token: Option<String>,
}

/// Every operation a client can ask of an unlocked vault.
#[derive(Serialize, Deserialize, Debug)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Ping,
    Lock,
    CreateSecret {
        name: String,
        description: String,
        key: Option<String>,
        tags: BTreeMap<String, String>,
        value: Option<WireValue>,
        client_token: Option<String>,
    },
    GetSecretValue {
        name: String,
        label: Option<String>,
        version_id: Option<Uuid>,
    },
    PutSecretValue {
        name: String,
        value: WireValue,
        labels: Vec<String>,
        client_token: Option<String>,
    },
    DescribeSecret {
        name: String,
    },
    ListSecretVersions {
        name: String,
    },
    ListSecrets(ListRequest),
    UpdateSecret {
        name: String,
        description: Option<String>,
        key: Option<String>,
    },
    UpdateVersionStage {
        name: String,
        label: String,
        move_to: Option<Uuid>,
        remove_from: Option<Uuid>,
    },
    TagSecret {
        name: String,
        tags: BTreeMap<String, String>,
    },
    UntagSecret {
        name: String,
        keys: Vec<String>,
    },
    /// `recovery_window_days: None` means force deletion without recovery.
    DeleteSecret {
        name: String,
        recovery_window_days: Option<u32>,
    },
    RestoreSecret {
        name: String,
    },
    BatchGetSecretValues {
        names: Vec<String>,
    },
    CreateKey {
        description: String,
        alias: Option<String>,
    },
    ListKeys,
    DescribeKey {
        key: String,
    },
    RotateKey {
        key: String,
    },
    EnableKey {
        key: String,
    },
    DisableKey {
        key: String,
    },
    ScheduleKeyDeletion {
        key: String,
        days: u32,
    },
    CancelKeyDeletion {
        key: String,
    },
    CreateAlias {
        alias: String,
        key: String,
    },
    DeleteAlias {
        alias: String,
    },
    Encrypt {
        key: String,
        plaintext: WireValue,
        context: EncryptionContext,
    },
    Decrypt {
        ciphertext: Blob,
        context: EncryptionContext,
    },
    ReEncrypt {
        ciphertext: Blob,
        source_context: EncryptionContext,
        destination_key: String,
        destination_context: EncryptionContext,
    },
    GenerateDataKey {
        key: String,
        bytes: usize,
        context: EncryptionContext,
        with_plaintext: bool,
    },
    AuditList {
        secret: Option<String>,
        limit: u32,
    },
    AuditVerify,
    /// Needs the current PIN as well: the server proves it with a TPM unseal, so a
    /// process that merely reaches an unlocked agent cannot lock the owner out.
    ChangePin {
        current_pin: WireValue,
        new_pin: WireValue,
    },
    /// Re-seals every key with no PIN (unlock policy unattended). Needs the current PIN,
    /// proven like [`Request::ChangePin`]'s.
    MakeUnattended {
        current_pin: WireValue,
    },
    /// How the vault unlocks (checked against its MAC).
    UnlockPolicy,
    /// Sets a secret's rotation schedule, window and rotator (turning rotation on).
    ConfigureRotation {
        name: String,
        settings: RotationSettings,
    },
    /// Rotates now, or resumes the rotation in progress; `stop_after` stops after that
    /// step as if the process had died (tests).
    RotateSecret {
        name: String,
        stop_after: Option<Step>,
    },
    CancelRotation {
        name: String,
    },
    RotationStatus {
        name: String,
    },
    RotationHistory {
        name: String,
        limit: u32,
    },
    ListRotations,
    /// Runs what is due at `now` (default: the current time).
    RunDue {
        now: Option<Timestamp>,
    },
    /// Re-wraps one batch of a key's data keys under its newest version.
    RewrapKeyBatch {
        key: String,
        batch: u32,
    },
    RetireKeyVersion {
        key: String,
        version: u32,
    },
    EnableKeyRotation {
        key: String,
        period_days: u32,
    },
    DisableKeyRotation {
        key: String,
    },
    KeyRotationStatus {
        key: String,
    },
    /// The team this vault is in (`Response::Team(None)`: none).
    TeamShow,
    TeamCreate {
        name: String,
    },
    TeamInvite {
        member: String,
        url: String,
        fingerprint: String,
    },
    TeamJoin {
        team: String,
        owner: String,
        url: String,
        fingerprint: String,
    },
    TeamShare {
        prefix: String,
        member: String,
        role: TeamRole,
    },
    TeamUnshare {
        prefix: String,
        member: String,
    },
    TeamRemove {
        member: String,
        rotate: bool,
    },
    TeamMovePrimary {
        prefix: String,
        to: String,
    },
    TeamExposures,
    /// This vault's region name and fingerprint (made at first use).
    RegionIdentity,
    RegionRename {
        name: String,
    },
    RegionAdd {
        name: String,
        url: String,
        fingerprint: String,
    },
    RegionRemove {
        name: String,
    },
    RegionList,
    /// Contacts a paired region over pinned TLS.
    RegionPing {
        name: String,
    },
    /// What a region has not acknowledged, as a signed bundle for carrying by hand.
    RegionExport {
        name: String,
    },
    /// Applies a bundle from a primary region; answers the acknowledgement to carry back.
    RegionImport {
        bundle: String,
    },
    /// Takes a region's acknowledgement of a bundle: the outbox moves on.
    RegionImportAck {
        ack: String,
    },
    /// An acknowledgement of what is applied from a region, without a bundle.
    RegionAck {
        name: String,
    },
    /// Replicates a secret to a paired region (under `key` there).
    ReplicateSecret {
        name: String,
        region: String,
        key: Option<String>,
    },
    /// Stops replicating a secret to a region; the copy there is deleted when reached.
    RemoveSecretRegion {
        name: String,
        region: String,
    },
    /// Makes a replica a secret of its own in this vault.
    PromoteSecret {
        name: String,
    },
    /// A new access key for the AWS-compatible API; its secret is answered once.
    AccessKeyCreate {
        name: String,
        policy: Option<String>,
    },
    AccessKeyImport {
        id: String,
        secret: WireValue,
        name: Option<String>,
        policy: Option<String>,
    },
    AccessKeyList,
    AccessKeySetEnabled {
        key: String,
        enabled: bool,
    },
    AccessKeySetPolicy {
        key: String,
        policy: Option<String>,
    },
    AccessKeyDelete {
        key: String,
    },
    SettingGet {
        name: String,
    },
    SecretPolicyGet {
        name: String,
    },
    SecretPolicyPut {
        name: String,
        policy: String,
        block_public: bool,
    },
    SecretPolicyDelete {
        name: String,
    },
    UpdateKeyDescription {
        key: String,
        description: String,
    },
    KeyTags {
        key: String,
    },
    TagKey {
        key: String,
        tags: BTreeMap<String, String>,
    },
    UntagKey {
        key: String,
        keys: Vec<String>,
    },
    KeyPolicyGet {
        key: String,
    },
    KeyPolicyPut {
        key: String,
        policy: String,
    },
    SettingSet {
        name: String,
        value: String,
    },
}

/// A value read from the vault, as sent to a client.
#[derive(Serialize, Deserialize, Debug)]
pub struct ValueRead {
    pub name: SecretName,
    pub version_id: Uuid,
    pub labels: Vec<StagingLabel>,
    pub created_at: String,
    pub value: WireValue,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct BatchError {
    pub name: String,
    pub code: String,
    pub message: String,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct DataKeyMaterial {
    pub key_id: Uuid,
    pub plaintext: Option<WireValue>,
    pub ciphertext: Blob,
}

/// The answer to a [`Request`].
#[derive(Serialize, Deserialize, Debug)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum Response {
    Done,
    Pong {
        vault_id: Uuid,
        /// The serving process, so `coffer status` can name it.
        pid: u32,
    },
    UnlockPolicy {
        policy: crate::vault::UnlockPolicy,
        /// How `status` shows it.
        description: String,
    },
    Written(VersionWritten),
    Value(ValueRead),
    Values {
        values: Vec<ValueRead>,
        errors: Vec<BatchError>,
    },
    Secret(Box<SecretDescription>),
    Versions(Vec<SecretVersionInfo>),
    Secrets(Page<SecretSummary>),
    Deleted {
        purge_at: Option<String>,
    },
    Key(Box<KeyDescription>),
    Keys(Vec<KeyDescription>),
    KeyDeletion {
        deletion_at: String,
    },
    Ciphertext(Blob),
    Plaintext {
        key_id: Uuid,
        key_version: u32,
        plaintext: WireValue,
    },
    DataKey(DataKeyMaterial),
    Audit(Vec<AuditEntry>),
    AuditVerified(AuditVerification),
    Rotation(Box<RotationInfo>),
    Rotated(RotationOutcome),
    RotationHistory(Vec<RotationHistoryEntry>),
    Rotations(Vec<RotationInfo>),
    Due(DueReport),
    Rewrap(RewrapProgress),
    KeyRotation(KeyRotationInfo),
    Team(Option<Box<TeamInfo>>),
    TeamRemoved(TeamRemoval),
    Exposures(Vec<Exposure>),
    Region(RegionIdentity),
    Peer(PeerInfo),
    Peers(Vec<PeerInfo>),
    Contact(PeerContact),
    BundleExported(BundleExport),
    BundleImported(BundleImport),
    AckImported(AckImport),
    Replication(SecretReplication),
    AccessKeyCreated {
        key: AccessKeyInfo,
        secret: WireValue,
    },
    AccessKey(AccessKeyInfo),
    AccessKeys(Vec<AccessKeyInfo>),
    Setting {
        name: String,
        value: String,
    },
    SecretPolicy(Option<String>),
    Tags(BTreeMap<String, String>),
    KeyPolicy(Option<String>),
}

fn context_bytes(value: &WireValue) -> Result<Zeroizing<Vec<u8>>> {
    let value = value.to_value()?;
    Ok(Zeroizing::new(value.as_bytes().to_vec()))
}

fn value_read(read: crate::model::SecretRead) -> ValueRead {
    ValueRead {
        name: read.name,
        version_id: read.version_id,
        labels: read.labels,
        created_at: read.created_at.rfc3339(),
        value: WireValue::from_value(&read.value),
    }
}

fn list_query(request: ListRequest) -> Result<ListQuery> {
    Ok(ListQuery {
        name_prefix: request.name_prefix,
        description_contains: request.description_contains,
        tag: request.tag_key.map(|key| (key, request.tag_value)),
        text: request.text,
        deleted: match request.deleted.as_deref() {
            None | Some("exclude") => DeletedFilter::Exclude,
            Some("include") => DeletedFilter::Include,
            Some("only") => DeletedFilter::Only,
            Some(other) => {
                return Err(Error::invalid(
                    "deleted filter",
                    format!("{other:?}; use exclude, include or only"),
                ))
            }
        },
        sort: match request.sort.as_deref() {
            None | Some("name") => SortBy::Name,
            Some("changed") => SortBy::ChangedDesc,
            Some(other) => {
                return Err(Error::invalid(
                    "sort order",
                    format!("{other:?}; use name or changed"),
                ))
            }
        },
        limit: request.limit,
        next_token: request.next_token,
    })
}

/// Runs one request against an unlocked vault.
pub fn execute(vault: &mut Vault, request: Request) -> Result<Response> {
    let response = match request {
        Request::Ping => Response::Pong {
            vault_id: vault.id(),
            pid: std::process::id(),
        },
        Request::TeamShow => Response::Team(vault.team()?.map(Box::new)),
        Request::TeamCreate { name } => Response::Team(Some(Box::new(vault.team_create(&name)?))),
        Request::TeamInvite {
            member,
            url,
            fingerprint,
        } => Response::Team(Some(Box::new(vault.team_invite(
            &member,
            &url,
            &fingerprint,
        )?))),
        Request::TeamJoin {
            team,
            owner,
            url,
            fingerprint,
        } => Response::Team(Some(Box::new(vault.team_join(
            &team,
            &owner,
            &url,
            &fingerprint,
        )?))),
        Request::TeamShare {
            prefix,
            member,
            role,
        } => Response::Team(Some(Box::new(vault.team_share(&prefix, &member, role)?))),
        Request::TeamUnshare { prefix, member } => {
            Response::Team(Some(Box::new(vault.team_unshare(&prefix, &member)?)))
        }
        Request::TeamRemove { member, rotate } => {
            Response::TeamRemoved(vault.team_remove(&member, rotate)?)
        }
        Request::TeamMovePrimary { prefix, to } => {
            Response::Team(Some(Box::new(vault.team_move_primary(&prefix, &to)?)))
        }
        Request::TeamExposures => Response::Exposures(vault.team_exposures()?),
        Request::RegionIdentity => Response::Region(vault.region_identity()?),
        Request::RegionRename { name } => Response::Region(vault.set_region_name(&name)?),
        Request::RegionAdd {
            name,
            url,
            fingerprint,
        } => Response::Peer(vault.add_peer(&name, &url, &fingerprint)?),
        Request::RegionRemove { name } => {
            vault.remove_peer(&name)?;
            Response::Done
        }
        Request::RegionList => Response::Peers(vault.peers()?),
        Request::RegionPing { name } => Response::Contact(vault.contact_peer(&name)?),
        Request::RegionExport { name } => Response::BundleExported(vault.export_bundle(&name)?),
        Request::RegionImport { bundle } => Response::BundleImported(vault.import_bundle(&bundle)?),
        Request::RegionImportAck { ack } => Response::AckImported(vault.import_bundle_ack(&ack)?),
        Request::RegionAck { name } => Response::BundleImported(vault.acknowledge_region(&name)?),
        Request::ReplicateSecret { name, region, key } => {
            Response::Replication(vault.replicate_secret(&name, &region, key.as_deref())?)
        }
        Request::RemoveSecretRegion { name, region } => {
            vault.remove_secret_region(&name, &region)?;
            Response::Done
        }
        Request::PromoteSecret { name } => {
            vault.promote_secret(&name)?;
            Response::Done
        }
        Request::AccessKeyCreate { name, policy } => {
            let (key, secret) = vault.create_access_key(&name, policy.as_deref())?;
            Response::AccessKeyCreated {
                key,
                secret: WireValue::from_value(&SecretValue::Text(secret)),
            }
        }
        Request::AccessKeyImport {
            id,
            secret,
            name,
            policy,
        } => {
            let secret = secret.to_value()?;
            Response::AccessKey(vault.import_access_key(
                &id,
                secret.as_bytes(),
                name.as_deref(),
                policy.as_deref(),
            )?)
        }
        Request::AccessKeyList => Response::AccessKeys(vault.list_access_keys()?),
        Request::AccessKeySetEnabled { key, enabled } => {
            Response::AccessKey(vault.set_access_key_enabled(&key, enabled)?)
        }
        Request::AccessKeySetPolicy { key, policy } => {
            Response::AccessKey(vault.set_access_key_policy(&key, policy.as_deref())?)
        }
        Request::AccessKeyDelete { key } => {
            vault.delete_access_key(&key)?;
            Response::Done
        }
        Request::SecretPolicyGet { name } => Response::SecretPolicy(vault.secret_policy(&name)?),
        Request::SecretPolicyPut {
            name,
            policy,
            block_public,
        } => {
            vault.put_secret_policy(&name, &policy, block_public)?;
            Response::Done
        }
        Request::SecretPolicyDelete { name } => {
            vault.delete_secret_policy(&name)?;
            Response::Done
        }
        Request::UpdateKeyDescription { key, description } => {
            vault.update_key_description(&key, &description)?;
            Response::Done
        }
        Request::KeyTags { key } => Response::Tags(vault.key_tags(&key)?),
        Request::TagKey { key, tags } => {
            vault.tag_key(&key, &tags)?;
            Response::Done
        }
        Request::UntagKey { key, keys } => {
            vault.untag_key(&key, &keys)?;
            Response::Done
        }
        Request::KeyPolicyGet { key } => Response::KeyPolicy(vault.key_policy(&key)?),
        Request::KeyPolicyPut { key, policy } => {
            vault.put_key_policy(&key, &policy)?;
            Response::Done
        }
        Request::SettingGet { name } => Response::Setting {
            value: vault.setting(&name)?,
            name,
        },
        Request::SettingSet { name, value } => Response::Setting {
            value: vault.set_setting(&name, &value)?,
            name,
        },
        Request::Lock => {
            vault.lock()?;
            Response::Done
        }
        Request::CreateSecret {
            name,
            description,
            key,
            tags,
            value,
            client_token,
        } => {
            let value = value.as_ref().map(WireValue::to_value).transpose()?;
            Response::Written(vault.create_secret(CreateSecret {
                name,
                description,
                key,
                tags,
                value,
                client_token,
            })?)
        }
        Request::GetSecretValue {
            name,
            label,
            version_id,
        } => {
            let selector = match (label, version_id) {
                (Some(label), None) => VersionSelector::Label(StagingLabel::parse(&label)?),
                (None, Some(id)) => VersionSelector::Id(id),
                (None, None) => VersionSelector::default(),
                (Some(_), Some(_)) => {
                    return Err(Error::invalid(
                        "version",
                        "give a label or a version id, not both",
                    ))
                }
            };
            let read = vault.get_secret_value(&name, &selector)?;
            // A value leaves the engine only after its read is on record (committed;
            // fsynced now or within a bounded delay, as `audit.reads` says).
            vault.commit_read_audit()?;
            Response::Value(value_read(read))
        }
        Request::PutSecretValue {
            name,
            value,
            labels,
            client_token,
        } => {
            let labels = labels
                .iter()
                .map(|l| StagingLabel::parse(l))
                .collect::<Result<Vec<_>, _>>()?;
            let put = PutValue {
                value: value.to_value()?,
                labels,
                client_token,
            };
            Response::Written(vault.put_secret_value(&name, put)?)
        }
        Request::DescribeSecret { name } => {
            Response::Secret(Box::new(vault.describe_secret(&name)?))
        }
        Request::ListSecretVersions { name } => {
            Response::Versions(vault.list_secret_versions(&name)?)
        }
        Request::ListSecrets(list) => Response::Secrets(vault.list_secrets(&list_query(list)?)?),
        Request::UpdateSecret {
            name,
            description,
            key,
        } => {
            vault.update_secret(&name, description, key)?;
            Response::Done
        }
        Request::UpdateVersionStage {
            name,
            label,
            move_to,
            remove_from,
        } => {
            vault.update_version_stage(&name, &label, move_to, remove_from)?;
            Response::Done
        }
        Request::TagSecret { name, tags } => {
            vault.tag_secret(&name, &tags)?;
            Response::Done
        }
        Request::UntagSecret { name, keys } => {
            vault.untag_secret(&name, &keys)?;
            Response::Done
        }
        Request::DeleteSecret {
            name,
            recovery_window_days,
        } => {
            let deletion = recovery_window_days
                .map(Deletion::RecoveryWindow)
                .unwrap_or(Deletion::Force);
            let purge_at = vault.delete_secret(&name, deletion)?;
            Response::Deleted {
                purge_at: purge_at.map(Timestamp::rfc3339),
            }
        }
        Request::RestoreSecret { name } => {
            vault.restore_secret(&name)?;
            Response::Done
        }
        Request::BatchGetSecretValues { names } => {
            let results = vault.batch_get_secret_values(&names);
            vault.commit_read_audit()?;
            let mut values = Vec::new();
            let mut errors = Vec::new();
            for (name, result) in results {
                match result {
                    Ok(read) => values.push(value_read(read)),
                    Err(error) => errors.push(BatchError {
                        name,
                        code: error.code().to_owned(),
                        message: error.to_string(),
                    }),
                }
            }
            Response::Values { values, errors }
        }
        Request::CreateKey { description, alias } => {
            Response::Key(Box::new(vault.create_key(&description, alias.as_deref())?))
        }
        Request::ListKeys => Response::Keys(vault.list_keys()?),
        Request::DescribeKey { key } => Response::Key(Box::new(vault.describe_key(&key)?)),
        Request::RotateKey { key } => Response::Key(Box::new(vault.rotate_key(&key)?)),
        Request::EnableKey { key } => {
            vault.enable_key(&key)?;
            Response::Done
        }
        Request::DisableKey { key } => {
            vault.disable_key(&key)?;
            Response::Done
        }
        Request::ScheduleKeyDeletion { key, days } => {
            let at = vault.schedule_key_deletion(&key, days)?;
            Response::KeyDeletion {
                deletion_at: at.rfc3339(),
            }
        }
        Request::CancelKeyDeletion { key } => {
            vault.cancel_key_deletion(&key)?;
            Response::Done
        }
        Request::CreateAlias { alias, key } => {
            vault.create_alias(&alias, &key)?;
            Response::Done
        }
        Request::DeleteAlias { alias } => {
            vault.delete_alias(&alias)?;
            Response::Done
        }
        Request::Encrypt {
            key,
            plaintext,
            context,
        } => {
            let plain = context_bytes(&plaintext)?;
            let blob = vault.encrypt(&key, &plain, &context)?;
            vault.commit_read_audit()?;
            Response::Ciphertext(Blob::encode(&blob))
        }
        Request::Decrypt {
            ciphertext,
            context,
        } => {
            let (plain, with) = vault.decrypt(&ciphertext.decode()?, &context)?;
            vault.commit_read_audit()?;
            Response::Plaintext {
                key_id: with.key_id,
                key_version: with.key_version,
                plaintext: WireValue::from_value(&SecretValue::Binary(plain)),
            }
        }
        Request::ReEncrypt {
            ciphertext,
            source_context,
            destination_key,
            destination_context,
        } => {
            let blob = vault.re_encrypt(
                &ciphertext.decode()?,
                &source_context,
                &destination_key,
                &destination_context,
            )?;
            vault.commit_read_audit()?;
            Response::Ciphertext(Blob::encode(&blob))
        }
        Request::GenerateDataKey {
            key,
            bytes,
            context,
            with_plaintext,
        } => {
            let generated = vault.generate_data_key(&key, bytes, &context, with_plaintext)?;
            vault.commit_read_audit()?;
            Response::DataKey(DataKeyMaterial {
                key_id: generated.key_id,
                plaintext: generated
                    .plaintext
                    .map(|p| WireValue::from_value(&SecretValue::Binary(p))),
                ciphertext: Blob::encode(&generated.ciphertext),
            })
        }
        Request::AuditList { secret, limit } => {
            Response::Audit(vault.audit_list(secret.as_deref(), None, limit)?)
        }
        Request::AuditVerify => Response::AuditVerified(vault.audit_verify()?),
        Request::ChangePin {
            current_pin,
            new_pin,
        } => {
            let current = current_pin.to_value()?;
            let current = std::str::from_utf8(current.as_bytes())
                .map_err(|_| Error::invalid("current PIN", "it must be text"))?;
            let new = new_pin.to_value()?;
            let new = std::str::from_utf8(new.as_bytes())
                .map_err(|_| Error::invalid("new PIN", "it must be text"))?;
            vault.change_pin(current, new)?;
            Response::Done
        }
        Request::MakeUnattended { current_pin } => {
            let current = current_pin.to_value()?;
            let current = std::str::from_utf8(current.as_bytes())
                .map_err(|_| Error::invalid("current PIN", "it must be text"))?;
            vault.make_unattended(current)?;
            Response::Done
        }
        Request::UnlockPolicy => {
            let policy = vault.unlock_policy()?;
            Response::UnlockPolicy {
                policy,
                description: policy.describe().to_owned(),
            }
        }
        Request::ConfigureRotation { name, settings } => {
            Response::Rotation(Box::new(vault.configure_rotation(&name, &settings)?))
        }
        Request::RotateSecret { name, stop_after } => {
            Response::Rotated(vault.rotate_secret_until(&name, stop_after)?)
        }
        Request::CancelRotation { name } => {
            Response::Rotation(Box::new(vault.cancel_rotation(&name)?))
        }
        Request::RotationStatus { name } => {
            Response::Rotation(Box::new(vault.rotation_info(&name)?))
        }
        Request::RotationHistory { name, limit } => {
            Response::RotationHistory(vault.rotation_history(&name, limit)?)
        }
        Request::ListRotations => Response::Rotations(vault.list_rotations()?),
        Request::RunDue { now } => {
            Response::Due(vault.run_due(now.unwrap_or_else(Timestamp::now))?)
        }
        Request::RewrapKeyBatch { key, batch } => {
            Response::Rewrap(vault.rewrap_key_batch(&key, batch)?)
        }
        Request::RetireKeyVersion { key, version } => {
            vault.retire_key_version(&key, version)?;
            Response::Done
        }
        Request::EnableKeyRotation { key, period_days } => {
            Response::KeyRotation(vault.enable_key_rotation(&key, period_days)?)
        }
        Request::DisableKeyRotation { key } => {
            vault.disable_key_rotation(&key)?;
            Response::Done
        }
        Request::KeyRotationStatus { key } => {
            Response::KeyRotation(vault.key_rotation_status(&key)?)
        }
    };
    Ok(response)
}
