//! What an unlocked vault holds in memory: the TPM connection, the PIN-derived auth
//! value, and the KEKs unsealed so far.
//!
//! KEKs are unsealed lazily: a one-shot `coffer secret get` pays for exactly the key
//! version its secret needs. Dropping the keyring (lock, auto-lock, exit) wipes them all.

use std::collections::HashMap;

use uuid::Uuid;

use super::context;
use super::error::{Error, Result};
use super::integrity::{Integrity, RowKey};
use crate::crypto::{aead, Kek, LockedKey, KEY_LEN};
use crate::store::keys::{self as key_rows, KeyVersionRow};
use crate::tpm::{PinAuth, SealedKek, Tpm};

/// The key that MACs the audit chain: one per vault, wrapped under every key version.
pub struct AuditKey(pub(crate) LockedKey);

pub struct Keyring {
    /// Where the TPM is. A connection is opened per TPM operation and closed after it:
    /// a TPM without a resource manager (swtpm, `/dev/tpm0`) serves one client at a time,
    /// and an unlocked app must not keep CLI processes waiting.
    tcti: String,
    pin: PinAuth,
    vault_id: Uuid,
    keks: HashMap<(Uuid, u32), Kek>,
    audit_key: AuditKey,
    integrity: Integrity,
    /// The storage primary's recorded TPM Name; every connection checks it.
    primary_name: Option<Vec<u8>>,
    /// KMS encryptions this process reserved per key version.
    pub(super) nonce_budget: super::nonce_budget::NonceBudget,
    /// When this session last moved the TPM rollback counter.
    pub(super) rollback: super::rollback::SessionCounter,
}

impl Keyring {
    /// Unlocks by unsealing one key version: proof of the PIN, and the source of the
    /// audit key.
    pub fn unlock(
        tcti: &str,
        pin: PinAuth,
        vault_id: Uuid,
        first: &KeyVersionRow,
        primary_name: Option<Vec<u8>>,
    ) -> Result<Self> {
        let kek = unseal(&mut connect(tcti, primary_name.as_deref())?, &pin, first)?;
        let audit_key = open_audit_key(vault_id, first, &kek)?;
        let mut keks = HashMap::new();
        keks.insert((first.key_id, first.version), kek);
        Ok(Keyring {
            tcti: tcti.to_owned(),
            pin,
            vault_id,
            keks,
            integrity: Integrity::new(RowKey::derive(&audit_key.0), vault_id),
            audit_key,
            rollback: Default::default(),
            nonce_budget: Default::default(),
            primary_name,
        })
    }

    /// A keyring for keys this process just created or recovered.
    pub fn with_keys(tcti: &str, pin: PinAuth, vault_id: Uuid, audit_key: AuditKey) -> Self {
        Keyring {
            tcti: tcti.to_owned(),
            pin,
            vault_id,
            keks: HashMap::new(),
            integrity: Integrity::new(RowKey::derive(&audit_key.0), vault_id),
            audit_key,
            rollback: Default::default(),
            nonce_budget: Default::default(),
            primary_name: None,
        }
    }

    /// Where this keyring's TPM is.
    pub fn tcti(&self) -> &str {
        &self.tcti
    }

    /// After a committed write that moved the file's rollback counter: moves the TPM's.
    pub(super) fn finish_rollback_bump(
        &mut self,
        store: &mut crate::store::Store,
        staged: Option<super::rollback::StoredCounter>,
    ) {
        super::rollback::finish_bump(
            store,
            &self.tcti,
            &mut self.rollback,
            &self.audit_key,
            self.vault_id,
            staged,
        );
    }

    /// A TPM connection that refuses a storage primary other than the recorded one.
    pub(super) fn connect(&self) -> Result<Tpm> {
        connect(&self.tcti, self.primary_name.as_deref())
    }

    pub(super) fn set_primary_name(&mut self, name: Vec<u8>) {
        self.primary_name = Some(name);
    }

    pub fn vault_id(&self) -> Uuid {
        self.vault_id
    }

    pub fn audit_key(&self) -> &AuditKey {
        &self.audit_key
    }

    /// Checks and computes row MACs. Owned (a clone of one key), so that callers can
    /// hold it while they also unseal keys through `&mut self`.
    pub fn integrity(&self) -> Integrity {
        self.integrity.clone()
    }

    /// Adds a KEK this process created (or recovered) without a round trip to the TPM.
    pub fn insert(&mut self, key_id: Uuid, version: u32, kek: Kek) {
        self.keks.insert((key_id, version), kek);
    }

    /// Replaces the PIN after every sealed blob was re-sealed under the new one.
    pub fn set_pin(&mut self, pin: PinAuth) {
        self.pin = pin;
    }

    /// The KEK of one key version, unsealing it from the TPM on first use.
    pub fn kek(&mut self, conn: &rusqlite::Connection, key_id: Uuid, version: u32) -> Result<&Kek> {
        if !self.keks.contains_key(&(key_id, version)) {
            let row = key_rows::key_version(conn, key_id, version)?
                .ok_or(Error::KeyTampered { key_id, version })?;
            let kek = unseal(&mut self.connect()?, &self.pin, &row)?;
            // The audit-key wrapping doubles as a check that this row is the vault's own.
            open_audit_key(self.vault_id, &row, &kek)?;
            self.keks.insert((key_id, version), kek);
        }
        self.keks
            .get(&(key_id, version))
            .ok_or(Error::KeyTampered { key_id, version })
    }
}

impl Keyring {
    /// Generates, seals and wraps a new key version, keeping its KEK for this session.
    pub fn seal_new_version(
        &mut self,
        pcrs: &crate::tpm::PcrBinding,
        vault_id: Uuid,
        recovery_public: &[u8; 32],
        key_id: Uuid,
        version: u32,
    ) -> Result<KeyVersionRow> {
        let spec = super::lifecycle::KeyVersionSpec {
            vault_id,
            key_id,
            version,
            pcrs,
            recovery_public,
        };
        let (row, kek) = super::lifecycle::new_key_version(
            &mut self.connect()?,
            &self.pin,
            &self.audit_key,
            &spec,
        )?;
        self.keks.insert((key_id, version), kek);
        Ok(row)
    }

    /// Seals an already-known key version anew (new PIN or PCR binding) without the
    /// plaintext ever leaving this struct.
    pub fn reseal(
        &mut self,
        conn: &rusqlite::Connection,
        key_id: Uuid,
        version: u32,
        pin: &PinAuth,
        pcrs: &crate::tpm::PcrBinding,
    ) -> Result<SealedKek> {
        self.kek(conn, key_id, version)?;
        let kek = self
            .keks
            .get(&(key_id, version))
            .ok_or(Error::KeyTampered { key_id, version })?;
        Ok(self.connect()?.seal(kek, pin, pcrs)?)
    }
}

/// Connects to the TPM, requiring the recorded primary if there is one.
fn connect(tcti: &str, primary_name: Option<&[u8]>) -> Result<Tpm> {
    let mut tpm = Tpm::connect(tcti)?;
    if let Some(name) = primary_name {
        tpm.expect_primary_name(name);
    }
    Ok(tpm)
}

fn unseal(tpm: &mut Tpm, pin: &PinAuth, row: &KeyVersionRow) -> Result<Kek> {
    let sealed = SealedKek::from_bytes(&row.sealed)?;
    Ok(tpm.unseal(&sealed, pin)?)
}

pub(super) fn open_audit_key(vault_id: Uuid, row: &KeyVersionRow, kek: &Kek) -> Result<AuditKey> {
    let tampered = || Error::KeyTampered {
        key_id: row.key_id,
        version: row.version,
    };
    let aad = context::audit_key(vault_id, row.key_id, row.version);
    let plain =
        aead::open(kek.expose(), aad.as_bytes(), &row.wrapped_audit_key).map_err(|_| tampered())?;
    if plain.len() != KEY_LEN {
        return Err(tampered());
    }
    let mut key = LockedKey::zeroed();
    key.bytes_mut().copy_from_slice(&plain);
    Ok(AuditKey(key))
}

impl AuditKey {
    pub fn generate() -> Self {
        use rand_core::{OsRng, RngCore};
        let mut key = LockedKey::zeroed();
        OsRng.fill_bytes(key.bytes_mut());
        AuditKey(key)
    }

    /// A key for one purpose, derived from this one, so that the audit key's owner (an
    /// unlocked vault) and nobody else has it.
    pub(super) fn derive(&self, purpose: &[u8]) -> zeroize::Zeroizing<[u8; KEY_LEN]> {
        use hmac::{Hmac, Mac};
        let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0[..]) else {
            std::process::abort()
        };
        mac.update(purpose);
        zeroize::Zeroizing::new(mac.finalize().into_bytes().into())
    }

    /// Whether two unwrapped audit keys are the same key (constant time).
    pub(super) fn same_as(&self, other: &AuditKey) -> bool {
        bool::from(subtle::ConstantTimeEq::ct_eq(&self.0[..], &other.0[..]))
    }

    /// Wraps this key under a KEK version so that unsealing that version recovers it.
    pub fn wrap(&self, vault_id: Uuid, key_id: Uuid, version: u32, kek: &Kek) -> Vec<u8> {
        let aad = context::audit_key(vault_id, key_id, version);
        aead::seal(kek.expose(), aad.as_bytes(), self.0.as_ref())
    }
}
