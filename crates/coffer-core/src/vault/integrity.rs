//! MACs over the rows whose edit would change what a read returns or who can unlock.
//!
//! Values are bound to their secret and version by AEAD associated data, but the rows
//! that lead a read to a value are plain SQL: a secret's name and key, its staging
//! labels, its deletion state; a key's state, default flag and aliases; the vault's
//! key-protection settings. Someone who can write the file could swap two secrets' names
//! (so `coffer run` hands production credentials to the wrong program) or move CURRENT
//! back to a rotated-out password. Each such row therefore carries a MAC under a key
//! derived from the audit key (which only an unlocked vault has): an edit can destroy
//! data, but not redirect a read, which fails with an integrity error instead.
//!
//! The MAC of a secret covers its label set and the MAC of a key covers its aliases, so
//! moving a label or an alias breaks the MAC of the row it belongs to.

use hmac::{Hmac, Mac};
use rusqlite::{Connection, Transaction};
use sha2::Sha256;
use uuid::Uuid;
use zeroize::{Zeroize, Zeroizing};

use super::error::{Error, Result};
use crate::crypto::{Aad, LockedKey, KEY_LEN};
use crate::store::keys::{self as key_rows, KeyRow};
use crate::store::meta;
use crate::store::replication as replication_rows;
use crate::store::secrets::{self as secret_rows, SecretRow};

type HmacSha256 = Hmac<Sha256>;

/// The key that MACs rows: derived from the audit key, so that no MAC of one kind can
/// stand in for another (the audit chain's MACs use the audit key itself).
#[derive(Clone)]
pub struct RowKey(std::sync::Arc<LockedKey>);

impl RowKey {
    pub(super) fn derive(audit_key: &[u8; KEY_LEN]) -> RowKey {
        let mut derived = Zeroizing::new(hmac_sha256(audit_key, b"coffer.row-mac-key.v1"));
        let key = LockedKey::from_slice(&derived);
        derived.zeroize();
        RowKey(std::sync::Arc::new(key))
    }

    fn tag(&self, aad: &Aad) -> [u8; 32] {
        hmac_sha256(self.0.as_slice(), aad.as_bytes())
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail for a 32-byte key.
    let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(key) else {
        std::process::abort()
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn same(expected: &[u8], stored: &[u8]) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(expected, stored))
}

fn optional_millis(value: Option<i64>) -> [u8; 9] {
    let mut out = [0u8; 9];
    if let Some(value) = value {
        out[0] = 1;
        out[1..].copy_from_slice(&value.to_be_bytes());
    }
    out
}

/// The vault settings that decide who can unlock: where every new key version's
/// recovery wrapping goes, how the recovery code is stretched, and which PCRs new seals
/// are bound to.
pub struct ProtectionSettings {
    pub recovery_public_key: Vec<u8>,
    pub recovery_params: Vec<u8>,
    pub pcr_binding: Vec<u8>,
}

impl ProtectionSettings {
    /// Reads the settings as stored, unauthenticated (see [`Integrity::settings`]).
    pub fn read(conn: &Connection) -> Result<Self> {
        Ok(ProtectionSettings {
            recovery_public_key: meta::require(conn, meta::RECOVERY_PUBLIC_KEY)?,
            recovery_params: meta::require(conn, meta::RECOVERY_PARAMS)?,
            pcr_binding: meta::get(conn, meta::PCR_BINDING)?.unwrap_or_default(),
        })
    }
}

/// Computes and checks row MACs for one vault.
#[derive(Clone)]
pub struct Integrity {
    key: RowKey,
    vault_id: Uuid,
}

impl Integrity {
    pub fn new(key: RowKey, vault_id: Uuid) -> Self {
        Integrity { key, vault_id }
    }

    fn secret_tag(
        &self,
        row: &SecretRow,
        labels: &[(String, Uuid)],
        follows: Option<&replication_rows::ReplicaOf>,
    ) -> [u8; 32] {
        let mut aad = Aad::new("coffer.secret-row.v1")
            .with(self.vault_id.as_bytes())
            .with(row.id.as_bytes())
            .with(row.name.as_bytes())
            .with(row.key_id.as_bytes())
            .with(row.description.as_bytes())
            .with(&optional_millis(row.deleted_at))
            .with(&optional_millis(row.purge_at))
            .with(&(labels.len() as u32).to_be_bytes());
        for (label, version_id) in labels {
            aad.part(label.as_bytes());
            aad.part(version_id.as_bytes());
        }
        // A replica names the primary it follows; secrets of their own add nothing, so
        // their MACs are those of vaults from before replication.
        if let Some(follows) = follows {
            aad.part(b"replica-of");
            aad.part(follows.primary_region.as_bytes());
            aad.part(follows.primary_vault.as_bytes());
        }
        self.key.tag(&aad)
    }

    /// Checks a secret row (and its staging labels) against its MAC.
    pub fn check_secret(&self, conn: &Connection, row: &SecretRow) -> Result<()> {
        let labels = secret_rows::labels(conn, row.id)?;
        let follows = replication_rows::replica_of(conn, row.id)?;
        if same(&self.secret_tag(row, &labels, follows.as_ref()), &row.mac) {
            Ok(())
        } else {
            Err(Error::SecretRowTampered {
                name: row.name.clone(),
            })
        }
    }

    /// Recomputes a secret's MAC from the rows as this transaction leaves them. Callers
    /// checked the rows they started from, so nothing altered outside Coffer is adopted.
    pub fn seal_secret(&self, tx: &Transaction<'_>, secret_id: Uuid) -> Result<()> {
        if let Some(row) = secret_rows::secret_by_id(tx, secret_id)? {
            let labels = secret_rows::labels(tx, secret_id)?;
            let follows = replication_rows::replica_of(tx, secret_id)?;
            let tag = self.secret_tag(&row, &labels, follows.as_ref());
            secret_rows::set_secret_mac(tx, secret_id, &tag)?;
        }
        Ok(())
    }

    fn key_tag(&self, row: &KeyRow, aliases: &[String]) -> [u8; 32] {
        let mut aad = Aad::new("coffer.key-row.v1")
            .with(self.vault_id.as_bytes())
            .with(row.id.as_bytes())
            .with(row.state.as_bytes())
            .with(&[u8::from(row.is_default)])
            .with(&optional_millis(row.deletion_at))
            .with(&(aliases.len() as u32).to_be_bytes());
        for alias in aliases {
            aad.part(alias.as_bytes());
        }
        self.key.tag(&aad)
    }

    /// Checks a key row (state, default flag, deletion date and aliases) against its MAC.
    pub fn check_key(&self, conn: &Connection, row: &KeyRow) -> Result<()> {
        let aliases = key_rows::aliases(conn, row.id)?;
        if same(&self.key_tag(row, &aliases), &row.mac) {
            Ok(())
        } else {
            Err(Error::KeyRowTampered { key_id: row.id })
        }
    }

    /// Recomputes a key's MAC from the rows as this transaction leaves them.
    pub fn seal_key(&self, tx: &Transaction<'_>, key_id: Uuid) -> Result<()> {
        if let Some(row) = key_rows::key_by_id(tx, key_id)? {
            let aliases = key_rows::aliases(tx, key_id)?;
            key_rows::set_key_mac(tx, key_id, &self.key_tag(&row, &aliases))?;
        }
        Ok(())
    }

    fn settings_tag(&self, settings: &ProtectionSettings) -> [u8; 32] {
        self.key.tag(
            &Aad::new("coffer.protection-settings.v1")
                .with(self.vault_id.as_bytes())
                .with(&settings.recovery_public_key)
                .with(&settings.recovery_params)
                .with(&settings.pcr_binding),
        )
    }

    /// The key-protection settings, refused if they were edited outside Coffer.
    pub fn settings(&self, conn: &Connection) -> Result<ProtectionSettings> {
        let settings = ProtectionSettings::read(conn)?;
        let stored = meta::get(conn, meta::SETTINGS_MAC)?.unwrap_or_default();
        if same(&self.settings_tag(&settings), &stored) {
            Ok(settings)
        } else {
            Err(Error::SettingsTampered)
        }
    }

    /// MACs the settings as this transaction leaves them.
    pub fn seal_settings(&self, tx: &Transaction<'_>) -> Result<()> {
        let settings = ProtectionSettings::read(tx)?;
        meta::set(tx, meta::SETTINGS_MAC, &self.settings_tag(&settings))?;
        Ok(())
    }

    fn region_tag(&self, name: &str) -> [u8; 32] {
        self.key.tag(
            &Aad::new("coffer.region-name.v1")
                .with(self.vault_id.as_bytes())
                .with(name.as_bytes()),
        )
    }

    /// This vault's region name, `None` if it has none yet; refused if edited.
    pub fn region_name(&self, conn: &Connection) -> Result<Option<String>> {
        let Some(name) = meta::get(conn, meta::REGION_NAME)? else {
            return Ok(None);
        };
        let stored = meta::get(conn, meta::REGION_MAC)?.unwrap_or_default();
        let name =
            String::from_utf8(name).map_err(|_| crate::region::RegionError::RegionNameTampered)?;
        if same(&self.region_tag(&name), &stored) {
            Ok(Some(name))
        } else {
            Err(crate::region::RegionError::RegionNameTampered.into())
        }
    }

    pub fn set_region_name(&self, tx: &Transaction<'_>, name: &str) -> Result<()> {
        meta::set(tx, meta::REGION_NAME, name.as_bytes())?;
        meta::set(tx, meta::REGION_MAC, &self.region_tag(name))?;
        Ok(())
    }

    /// The MAC of a peer's pairing: its name, address and pinned fingerprint (where this
    /// vault's replicas go, and whom it lets in).
    pub fn peer_tag(&self, name: &str, url: &str, fingerprint: &[u8]) -> [u8; 32] {
        self.key.tag(
            &Aad::new("coffer.peer-row.v1")
                .with(self.vault_id.as_bytes())
                .with(name.as_bytes())
                .with(url.as_bytes())
                .with(fingerprint),
        )
    }

    /// The MAC of "this secret is replicated to this region, under this key there": an
    /// edit could otherwise send a secret to a paired peer it was never meant for.
    pub fn replica_tag(&self, secret_id: Uuid, region: &str, key: Option<&str>) -> [u8; 32] {
        self.key.tag(
            &Aad::new("coffer.secret-replica.v1")
                .with(self.vault_id.as_bytes())
                .with(secret_id.as_bytes())
                .with(region.as_bytes())
                .with(key.unwrap_or("").as_bytes()),
        )
    }

    pub fn replica_intact(&self, row: &replication_rows::ReplicaRow) -> bool {
        same(
            &self.replica_tag(row.secret_id, &row.region, row.replica_key.as_deref()),
            &row.mac,
        )
    }

    pub fn check_peer(&self, row: &crate::store::peers::PeerRow) -> Result<()> {
        if same(
            &self.peer_tag(&row.name, &row.url, &row.fingerprint),
            &row.mac,
        ) {
            Ok(())
        } else {
            Err(crate::region::RegionError::PeerTampered {
                name: row.name.clone(),
            }
            .into())
        }
    }

    /// The MAC of an access key: its id, name, policy and enabled flag (what it may do,
    /// and whether it may do anything).
    pub fn access_key_tag(
        &self,
        id: &str,
        name: &str,
        policy: Option<&str>,
        enabled: bool,
    ) -> [u8; 32] {
        let policy_part = policy.map(|p| [&[1u8][..], p.as_bytes()].concat());
        self.key.tag(
            &Aad::new("coffer.access-key-row.v1")
                .with(self.vault_id.as_bytes())
                .with(id.as_bytes())
                .with(name.as_bytes())
                .with(policy_part.as_deref().unwrap_or(&[0u8]))
                .with(&[u8::from(enabled)]),
        )
    }

    pub fn check_access_key(&self, row: &crate::store::access_keys::AccessKeyRow) -> Result<()> {
        let expected = self.access_key_tag(&row.id, &row.name, row.policy.as_deref(), row.enabled);
        if same(&expected, &row.mac) {
            Ok(())
        } else {
            Err(Error::AccessKeyTampered { id: row.id.clone() })
        }
    }

    /// The MAC of a secret's resource policy, bound to the secret's id.
    pub fn secret_policy_tag(&self, secret_id: Uuid, policy: &str) -> [u8; 32] {
        self.key.tag(
            &Aad::new("coffer.secret-policy.v1")
                .with(self.vault_id.as_bytes())
                .with(secret_id.as_bytes())
                .with(policy.as_bytes()),
        )
    }

    pub fn check_secret_policy(
        &self,
        secret_id: Uuid,
        name: &str,
        policy: &str,
        mac: &[u8],
    ) -> Result<()> {
        if same(&self.secret_policy_tag(secret_id, policy), mac) {
            Ok(())
        } else {
            Err(Error::SecretRowTampered {
                name: name.to_owned(),
            })
        }
    }

    /// The MAC of a KMS key policy, bound to the key's id.
    pub fn key_policy_tag(&self, key_id: Uuid, policy: &str) -> [u8; 32] {
        self.key.tag(
            &Aad::new("coffer.key-policy.v1")
                .with(self.vault_id.as_bytes())
                .with(key_id.as_bytes())
                .with(policy.as_bytes()),
        )
    }

    pub fn check_key_policy(&self, key_id: Uuid, policy: &str, mac: &[u8]) -> Result<()> {
        if same(&self.key_policy_tag(key_id, policy), mac) {
            Ok(())
        } else {
            Err(Error::KeyRowTampered { key_id })
        }
    }

    fn setting_tag(&self, name: &str, value: &[u8]) -> [u8; 32] {
        self.key.tag(
            &Aad::new("coffer.setting.v1")
                .with(self.vault_id.as_bytes())
                .with(name.as_bytes())
                .with(value),
        )
    }

    /// A MACed vault setting (`vault_meta` row `name`, MAC in `name.mac`), `None` if
    /// unset; refused if edited outside Coffer.
    pub fn setting(&self, conn: &Connection, name: &'static str) -> Result<Option<Vec<u8>>> {
        let Some(value) = meta::get(conn, name)? else {
            return Ok(None);
        };
        let stored = meta::get(conn, &format!("{name}.mac"))?.unwrap_or_default();
        if same(&self.setting_tag(name, &value), &stored) {
            Ok(Some(value))
        } else {
            Err(Error::SettingTampered { name })
        }
    }

    pub fn set_setting(&self, tx: &Transaction<'_>, name: &str, value: &[u8]) -> Result<()> {
        meta::set(tx, name, value)?;
        meta::set(tx, &format!("{name}.mac"), &self.setting_tag(name, value))?;
        Ok(())
    }

    /// Computes every MAC of a vault written before row MACs existed. Run once, at the
    /// first unlock after the upgrade, which the audit head records (see `audit`).
    pub fn adopt_all(&self, tx: &Transaction<'_>) -> Result<usize> {
        let secrets = secret_rows::all_secret_ids(tx)?;
        for id in &secrets {
            self.seal_secret(tx, *id)?;
        }
        let keys = key_rows::all_keys(tx)?;
        for key in &keys {
            self.seal_key(tx, key.id)?;
        }
        self.seal_settings(tx)?;
        Ok(secrets.len() + keys.len())
    }
}
