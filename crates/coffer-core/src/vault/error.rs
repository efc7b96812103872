//! The engine's error type. Every message is one sentence that says what went wrong and
//! how to fix it, and none ever contains a secret value, key, PIN or recovery code.

use uuid::Uuid;

use crate::crypto::recovery::RecoveryError;
use crate::model::Timestamp;
use crate::names::NameError;
use crate::store::StoreError;
use crate::tpm::TpmError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Tpm(#[from] TpmError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Recovery(#[from] RecoveryError),
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// Boxed: its messages carry fingerprints and addresses, and every `Result` of the
    /// engine would otherwise grow by them.
    #[error(transparent)]
    Region(Box<crate::region::RegionError>),
    /// Boxed like `Region`: its messages carry names and the primary's refusal.
    #[error(transparent)]
    Team(Box<crate::vault::team::TeamError>),
    #[error("the vault is locked; unlock it with your PIN first")]
    Locked,
    #[error("{what} is not valid: {reason}")]
    InvalidArgument { what: &'static str, reason: String },
    #[error("no secret named {name:?}; `coffer secret list` shows the secrets in this vault")]
    SecretNotFound { name: String },
    #[error(
        "a secret named {name:?} already exists; use `coffer secret put` to add a new version"
    )]
    SecretExists { name: String },
    #[error("secret {name:?} is scheduled for deletion on {purge_at}; restore it with `coffer secret restore {name}` first")]
    SecretDeleted { name: String, purge_at: Timestamp },
    #[error("secret {name:?} is not scheduled for deletion, so there is nothing to restore")]
    SecretNotDeleted { name: String },
    #[error(
        "secret {name:?} has no version {version_id}; `coffer secret versions {name}` lists them"
    )]
    VersionNotFound { name: String, version_id: Uuid },
    #[error("secret {name:?} has no version labelled {label}; `coffer secret versions {name}` lists the labels")]
    LabelNotFound { name: String, label: String },
    #[error("label {label} is on version {current} of secret {name:?}; to move it, also name that version as the one to remove it from (--remove-from {current})")]
    LabelOnOtherVersion {
        name: String,
        label: String,
        current: Uuid,
    },
    #[error("label {label} is not on version {version_id} of secret {name:?}")]
    LabelNotOnVersion {
        name: String,
        label: String,
        version_id: Uuid,
    },
    #[error("CURRENT cannot be removed from a version, only moved to another one (--move-to VERSION_ID)")]
    CurrentCannotBeRemoved,
    #[error("the value is {size} bytes, more than the {max}-byte limit for a secret value; store a reference to a file instead, or split it")]
    ValueTooLarge { size: usize, max: usize },
    #[error("the value is empty; a secret value needs at least one byte")]
    EmptyValue,
    #[error("idempotency token {token:?} was already used for a different value of secret {name:?}; use a new token for a new value")]
    TokenReused { name: String, token: String },
    #[error("secret {name:?} version {version_id} failed its integrity check: the database row was altered or moved; restore the vault file from a backup")]
    Tampered { name: String, version_id: Uuid },
    #[error("secret {name:?} failed its integrity check: its name, key, description, staging labels or deletion state were altered outside Coffer, so it is not read; restore the vault file from a backup")]
    SecretRowTampered { name: String },
    #[error("key {key_id} failed its integrity check: its state, default flag, deletion date or aliases were altered outside Coffer, so it is not used; restore the vault file from a backup")]
    KeyRowTampered { key_id: Uuid },
    #[error("the vault's key-protection settings (recovery key, recovery parameters, PCR binding) failed their integrity check: they were altered outside Coffer; run `coffer recover` with your recovery code to set them again, or restore a backup")]
    SettingsTampered,
    #[error("key {key_id} version {version} failed its integrity check: the stored key row was altered; run `coffer recover` or restore a backup")]
    KeyTampered { key_id: Uuid, version: u32 },
    #[error("no key {reference:?}; `coffer key list` shows the keys and aliases")]
    KeyNotFound { reference: String },
    #[error("key {key_id} is disabled; enable it with `coffer key enable {key_id}` to use it")]
    KeyDisabled { key_id: Uuid },
    #[error("key {key_id} is scheduled for deletion; cancel that with `coffer key cancel-deletion {key_id}` to use it")]
    KeyPendingDeletion { key_id: Uuid },
    #[error("the default key cannot be disabled or deleted; every secret without an explicit key depends on it")]
    DefaultKeyProtected,
    #[error("key {key_id} still protects {count} secret versions; move those secrets to another key first")]
    KeyInUse { key_id: Uuid, count: u64 },
    #[error("alias {alias} already points at key {key_id}; delete it first with `coffer key delete-alias {alias}`")]
    AliasExists { alias: String, key_id: Uuid },
    #[error("this ciphertext was not produced by this vault, or it was altered; check that you passed the right file and encryption context")]
    CiphertextInvalid,
    #[error("the audit log was altered at entry {seq}: {reason}")]
    AuditTampered { seq: i64, reason: String },
    #[error("this vault file is older than the last one this TPM saw (rollback counter {stored}, the TPM is at {current}): an older copy replaced it, and changes made since are missing; restore the newest copy, or if you mean to keep this one run `coffer recover --accept-rollback` with your recovery code")]
    Rollback { stored: u64, current: u64 },
    #[error("this vault's rollback counter record was removed from the file although the TPM holds its counter, so the file may be an older copy; restore the newest copy, or run `coffer recover --accept-rollback` with your recovery code to keep this one")]
    RollbackStateMissing,
    #[error("this vault's rollback counter record failed its integrity check: it was altered outside Coffer; restore the newest copy, or run `coffer recover --accept-rollback` with your recovery code")]
    RollbackStateTampered,
    #[error("key {key_id} version {version} has made as many encryptions as Coffer allows under one key version (random nonces must not repeat); rotate it with `coffer key rotate {key_id}` and encrypt again")]
    KeyVersionExhausted { key_id: Uuid, version: u32 },
    #[error("the PIN must be {min} to {max} characters long")]
    PinLength { min: usize, max: usize },
    #[error("{weakness}, so the PIN alone must resist guessing: use at least {min} characters, or give the TPM a lockout password (`tpm2_changeauth -c lockout`) and keep the lockout interval above 0")]
    PinTooShortForTpm { min: usize, weakness: &'static str },
    #[error(transparent)]
    Rotation(#[from] crate::rotation::RotationError),
    #[error("secret {name:?} is a read-only replica of region {primary_region}: change it there, or make it a secret of its own here with `coffer secret promote {name}`")]
    ReplicaReadOnly {
        name: String,
        primary_region: String,
    },
    #[error("secret {name:?} is not a replica of another region, so there is nothing to promote")]
    NotAReplica { name: String },
    #[error("secret {name:?} is already replicated to region {region}")]
    AlreadyReplicated { name: String, region: String },
    #[error("secret {name:?} is not replicated to region {region}; `coffer secret describe {name}` lists its regions")]
    NotReplicated { name: String, region: String },
    #[error("secret {name:?}'s replication to region {region} failed its integrity check: the row was altered outside Coffer, so nothing is sent; remove the region from the secret and add it again")]
    ReplicaRowTampered { name: String, region: String },
    #[error("a replication change from region {region} was refused: {reason}; nothing of it was applied")]
    ReplicationRefused { region: String, reason: String },
    #[error("access key {id} failed its integrity check: its name, policy or enabled flag was altered outside Coffer, so it is not used; delete it with `coffer access-key delete {id}` and create a new one, or restore a backup")]
    AccessKeyTampered { id: String },
    #[error("the vault setting {name} failed its integrity check: it was altered outside Coffer; set it again with `coffer config set`")]
    SettingTampered { name: &'static str },
    #[error("no access key {reference:?}; `coffer access-key list` shows them")]
    AccessKeyNotFound { reference: String },
    #[error("{what} {value:?} is already used by another access key; choose another")]
    AccessKeyExists { what: &'static str, value: String },
    #[error("key {key_id} version {version} still wraps {count} data keys; re-wrap them under the newest version first (`coffer key rewrap {key_id}`)")]
    KeyVersionInUse {
        key_id: Uuid,
        version: u32,
        count: u64,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::region::RegionError> for Error {
    fn from(error: crate::region::RegionError) -> Self {
        Error::Region(Box::new(error))
    }
}

impl Error {
    pub fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            what,
            reason: reason.into(),
        }
    }

    /// A short machine-readable code for JSON output and the app's error mapping.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Tpm(TpmError::Unreachable { .. })
            | Error::Tpm(TpmError::NoAnswer { .. })
            | Error::Tpm(TpmError::ConnectionLost { .. }) => "tpm_unreachable",
            Error::Tpm(TpmError::WrongPin { .. }) => "wrong_pin",
            Error::Tpm(TpmError::Lockout { .. }) => "tpm_lockout",
            Error::Tpm(TpmError::PcrMismatch { .. }) => "pcr_mismatch",
            Error::Tpm(TpmError::ForeignKey) | Error::Tpm(TpmError::PrimaryMismatch { .. }) => {
                "foreign_tpm"
            }
            Error::Tpm(TpmError::InvalidPcr { .. }) => "invalid_argument",
            Error::Tpm(TpmError::Malformed { .. }) => "vault_corrupt",
            Error::Tpm(TpmError::NvCounterMissing { .. })
            | Error::Tpm(TpmError::NvCounterForeign { .. })
            | Error::Rollback { .. }
            | Error::RollbackStateMissing => "rollback",
            Error::Tpm(TpmError::OutOfMemory { .. }) | Error::Tpm(TpmError::Busy { .. }) => {
                "tpm_busy"
            }
            Error::Tpm(_) => "tpm",
            Error::Store(StoreError::Busy { .. }) => "vault_busy",
            Error::Store(StoreError::NotFound { .. }) => "vault_not_found",
            Error::Store(StoreError::AlreadyExists { .. }) => "vault_exists",
            Error::Store(StoreError::Corrupt { .. }) | Error::Store(StoreError::Missing { .. }) => {
                "vault_corrupt"
            }
            Error::Store(_) => "storage",
            Error::Recovery(_) => "recovery_code",
            Error::Region(error) => error.code(),
            Error::Team(error) => error.code(),
            Error::InvalidName(_)
            | Error::InvalidArgument { .. }
            | Error::PinLength { .. }
            | Error::PinTooShortForTpm { .. } => "invalid_argument",
            Error::Locked => "locked",
            Error::SecretNotFound { .. } => "secret_not_found",
            Error::SecretExists { .. } => "secret_exists",
            Error::SecretDeleted { .. } => "secret_deleted",
            Error::SecretNotDeleted { .. } => "secret_not_deleted",
            Error::VersionNotFound { .. } => "version_not_found",
            Error::LabelNotFound { .. } => "label_not_found",
            Error::LabelOnOtherVersion { .. }
            | Error::LabelNotOnVersion { .. }
            | Error::CurrentCannotBeRemoved => "label_conflict",
            Error::ValueTooLarge { .. } => "value_too_large",
            Error::EmptyValue => "empty_value",
            Error::TokenReused { .. } => "token_reused",
            Error::Tampered { .. }
            | Error::KeyTampered { .. }
            | Error::SecretRowTampered { .. }
            | Error::KeyRowTampered { .. }
            | Error::SettingsTampered
            | Error::RollbackStateTampered => "tampered",
            Error::KeyNotFound { .. } => "key_not_found",
            Error::KeyDisabled { .. }
            | Error::KeyPendingDeletion { .. }
            | Error::KeyVersionExhausted { .. } => "key_unavailable",
            Error::DefaultKeyProtected | Error::KeyInUse { .. } | Error::AliasExists { .. } => {
                "key_conflict"
            }
            Error::CiphertextInvalid => "ciphertext_invalid",
            Error::AuditTampered { .. } => "audit_tampered",
            Error::Rotation(error) => error.code(),
            Error::KeyVersionInUse { .. } => "key_conflict",
            Error::ReplicaReadOnly { .. } => "replica_read_only",
            Error::NotAReplica { .. } | Error::AlreadyReplicated { .. } => "region_conflict",
            Error::NotReplicated { .. } => "region_not_found",
            Error::ReplicaRowTampered { .. } => "tampered",
            Error::ReplicationRefused { .. } => "peer_untrusted",
            Error::AccessKeyTampered { .. } | Error::SettingTampered { .. } => "tampered",
            Error::AccessKeyNotFound { .. } => "access_key_not_found",
            Error::AccessKeyExists { .. } => "access_key_exists",
        }
    }
}
