//! Keys (KEKs), their aliases, versions and states (modelled on AWS KMS).

use uuid::Uuid;

use super::audit::AuditEvent;
use super::error::{Error, Result};
use super::secrets::{resolve_key, DEFAULT_KEY_ALIAS};
use super::Vault;
use crate::model::{KeyDescription, KeyState, KeyVersionInfo, Timestamp};
use crate::names::KeyAlias;
use crate::store::keys::{self as rows, KeyRow};
use crate::store::{record_change, secrets as secret_rows, StoreError};
use crate::tpm::PcrBinding;

fn describe(conn: &rusqlite::Connection, row: KeyRow) -> Result<KeyDescription> {
    let versions = rows::key_versions(conn, row.id)?
        .into_iter()
        .map(|v| KeyVersionInfo {
            version: v.version,
            created_at: Timestamp(v.created_at),
        })
        .collect();
    let mut aliases = rows::aliases(conn, row.id)?;
    if row.is_default && rows::alias_target(conn, DEFAULT_KEY_ALIAS)?.is_none() {
        aliases.insert(0, DEFAULT_KEY_ALIAS.to_owned());
    }
    Ok(KeyDescription {
        id: row.id,
        aliases,
        description: row.description,
        state: KeyState::parse(&row.state).ok_or(StoreError::Missing { what: "key state" })?,
        is_default: row.is_default,
        created_at: Timestamp(row.created_at),
        deletion_at: row.deletion_at.map(Timestamp),
        versions,
    })
}

/// `alias/default` always names the default key, so it cannot be given to another.
fn reserved_alias(alias: &KeyAlias) -> Result<()> {
    if alias.as_str() == DEFAULT_KEY_ALIAS {
        return Err(Error::invalid(
            "alias",
            "alias/default always names the vault's default key; choose another name",
        ));
    }
    Ok(())
}

impl Vault {
    /// Creates a key with one version sealed in the TPM, and optionally an alias for it.
    pub fn create_key(&mut self, description: &str, alias: Option<&str>) -> Result<KeyDescription> {
        let alias = alias.map(KeyAlias::parse).transpose()?;
        if let Some(alias) = &alias {
            reserved_alias(alias)?;
        }
        if description.chars().count() > 8192 {
            return Err(Error::invalid(
                "key description",
                "use at most 8192 characters",
            ));
        }
        let key_id = Uuid::new_v4();
        self.add_key_version(
            AuditEvent::new("create_key").key(key_id),
            key_id,
            1,
            |tx, now| {
                if let Some(alias) = &alias {
                    if let Some(existing) = rows::alias_target(tx, alias.as_str())? {
                        return Err(Error::AliasExists {
                            alias: alias.as_str().to_owned(),
                            key_id: existing,
                        });
                    }
                }
                let seq = record_change(tx, now, "key", key_id.as_bytes(), "create")?;
                rows::insert_key(
                    tx,
                    &KeyRow {
                        id: key_id,
                        description: description.to_owned(),
                        state: KeyState::Enabled.as_str().to_owned(),
                        is_default: false,
                        created_at: now,
                        deletion_at: None,
                        mac: Vec::new(),
                    },
                    seq,
                )?;
                if let Some(alias) = &alias {
                    rows::insert_alias(tx, alias.as_str(), key_id)?;
                }
                Ok(())
            },
        )?;
        self.describe_key(&key_id.to_string())
    }

    /// Adds a new version to a key; new data keys are wrapped under it, and data wrapped
    /// under older versions stays readable.
    pub fn rotate_key(&mut self, reference: &str) -> Result<KeyDescription> {
        let key = resolve_key(self.store.conn(), &self.integrity()?, reference)?;
        super::secrets::usable(&key)?;
        let next = rows::newest_key_version(self.store.conn(), key.id)?
            .map(|v| v.version + 1)
            .unwrap_or(1);
        self.add_key_version(
            AuditEvent::new("rotate_key")
                .key(key.id)
                .detail(format!("version={next}")),
            key.id,
            next,
            |tx, now| {
                if rows::key_version(tx, key.id, next)?.is_some() {
                    return Err(Error::invalid(
                        "key rotation",
                        "another process rotated this key at the same moment; try again",
                    ));
                }
                record_change(tx, now, "key", key.id.as_bytes(), "rotate")?;
                Ok(())
            },
        )?;
        self.describe_key(&key.id.to_string())
    }

    /// Seals a new key version and stores it, with `prepare` doing the rest of the change
    /// in the same transaction.
    fn add_key_version(
        &mut self,
        event: AuditEvent,
        key_id: Uuid,
        version: u32,
        prepare: impl FnOnce(&rusqlite::Transaction<'_>, i64) -> Result<()>,
    ) -> Result<()> {
        let vault_id = self.vault_id;
        // Where the new version's recovery wrapping goes and what it is bound to come
        // from authenticated settings: an edited file must not redirect them.
        let settings = self.integrity()?.settings(self.store.conn())?;
        let recovery_public: [u8; 32] = settings
            .recovery_public_key
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Missing {
                what: "recovery public key",
            })?;
        let pcrs = String::from_utf8_lossy(&settings.pcr_binding).parse::<PcrBinding>()?;
        self.write(event, |tx, keyring, _| {
            let now = Timestamp::now().millis();
            prepare(tx, now)?;
            let row =
                keyring.seal_new_version(&pcrs, vault_id, &recovery_public, key_id, version)?;
            rows::insert_key_version(tx, &row).map_err(Error::from)
        })
    }

    pub fn describe_key(&mut self, reference: &str) -> Result<KeyDescription> {
        let integrity = self.integrity()?;
        let conn = self.store.conn();
        let key = resolve_key(conn, &integrity, reference)?;
        describe(conn, key)
    }

    pub fn list_keys(&mut self) -> Result<Vec<KeyDescription>> {
        self.require_unlocked()?;
        let conn = self.store.conn();
        rows::all_keys(conn)?
            .into_iter()
            .map(|k| describe(conn, k))
            .collect()
    }

    pub fn create_alias(&mut self, alias: &str, reference: &str) -> Result<()> {
        let alias = KeyAlias::parse(alias)?;
        reserved_alias(&alias)?;
        let event = AuditEvent::new("create_alias").detail(alias.as_str().to_owned());
        self.write(event, |tx, keyring, event| {
            let key = resolve_key(tx, &keyring.integrity(), reference)?;
            event.key_id = Some(key.id);
            if let Some(existing) = rows::alias_target(tx, alias.as_str())? {
                return Err(Error::AliasExists {
                    alias: alias.as_str().to_owned(),
                    key_id: existing,
                });
            }
            record_change(
                tx,
                Timestamp::now().millis(),
                "key",
                key.id.as_bytes(),
                "alias",
            )?;
            rows::insert_alias(tx, alias.as_str(), key.id)?;
            Ok(())
        })
    }

    pub fn delete_alias(&mut self, alias: &str) -> Result<()> {
        let alias = KeyAlias::parse(alias)?;
        let event = AuditEvent::new("delete_alias").detail(alias.as_str().to_owned());
        self.write(event, |tx, keyring, event| {
            let key_id =
                rows::alias_target(tx, alias.as_str())?.ok_or_else(|| Error::KeyNotFound {
                    reference: alias.as_str().to_owned(),
                })?;
            event.key_id = Some(key_id);
            super::secrets::key_by_id(tx, &keyring.integrity(), key_id)?;
            record_change(
                tx,
                Timestamp::now().millis(),
                "key",
                key_id.as_bytes(),
                "alias",
            )?;
            rows::delete_alias(tx, alias.as_str())?;
            Ok(())
        })
    }

    pub fn enable_key(&mut self, reference: &str) -> Result<()> {
        self.set_key_state(reference, "enable_key", KeyState::Enabled, None)
    }

    pub fn disable_key(&mut self, reference: &str) -> Result<()> {
        self.set_key_state(reference, "disable_key", KeyState::Disabled, None)
    }

    /// Schedules a key's deletion after 7–30 days. A key that still protects secret
    /// versions is refused: deleting it would make them unreadable.
    pub fn schedule_key_deletion(&mut self, reference: &str, days: u32) -> Result<Timestamp> {
        if !(7..=30).contains(&days) {
            return Err(Error::invalid(
                "pending window",
                format!("{days} days; use 7 to 30 days"),
            ));
        }
        let at = Timestamp::now().plus_days(days);
        self.set_key_state(
            reference,
            "schedule_key_deletion",
            KeyState::PendingDeletion,
            Some(at),
        )?;
        Ok(at)
    }

    pub fn cancel_key_deletion(&mut self, reference: &str) -> Result<()> {
        self.set_key_state(reference, "cancel_key_deletion", KeyState::Disabled, None)
    }

    fn set_key_state(
        &mut self,
        reference: &str,
        operation: &'static str,
        state: KeyState,
        deletion_at: Option<Timestamp>,
    ) -> Result<()> {
        let event = AuditEvent::new(operation);
        self.write(event, |tx, keyring, event| {
            let mut key = resolve_key(tx, &keyring.integrity(), reference)?;
            event.key_id = Some(key.id);
            if key.is_default && state != KeyState::Enabled {
                return Err(Error::DefaultKeyProtected);
            }
            if operation == "cancel_key_deletion" && key.state != KeyState::PendingDeletion.as_str()
            {
                return Err(Error::invalid(
                    "key",
                    format!("key {} is not scheduled for deletion", key.id),
                ));
            }
            if state == KeyState::PendingDeletion {
                let count = secret_rows::versions_using_key(tx, key.id)?;
                if count > 0 {
                    return Err(Error::KeyInUse {
                        key_id: key.id,
                        count,
                    });
                }
            }
            key.state = state.as_str().to_owned();
            key.deletion_at = deletion_at.map(Timestamp::millis);
            let seq = record_change(
                tx,
                Timestamp::now().millis(),
                "key",
                key.id.as_bytes(),
                operation,
            )?;
            rows::update_key(tx, &key, seq)?;
            Ok(())
        })
    }
}
