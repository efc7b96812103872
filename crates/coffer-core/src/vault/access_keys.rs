//! Access keys of the AWS-compatible API, and the vault settings it needs.
//!
//! SigV4 is a MAC, so the server needs each secret access key itself, not a hash of it.
//! The secret half is therefore sealed (AES-256-GCM) under a key derived from the audit
//! key, with associated data binding it to this vault and its access key id, so a sealed
//! secret moved to another row does not open. The name, policy and enabled flag carry a
//! MAC under the row key: an edit of the file cannot widen what a key may do or revive a
//! disabled one. When a key was last used is status only.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::error::{Error, Result};
use super::read_audit::{ReadAudit, AUDIT_READS};
use super::{AuditEvent, Vault};
use crate::crypto::{aead, Aad};
use crate::model::Timestamp;
use crate::store::access_keys::{self as rows, AccessKeyRow};

const SECRET_KEY_PURPOSE: &[u8] = b"coffer.access-key-secret-key.v1";

/// The vault setting naming the AWS account id used in ARNs.
pub const AWS_ACCOUNT_ID: &str = "aws.account-id";
/// The account id ARNs use until one is set, as local AWS emulators do.
pub const DEFAULT_AWS_ACCOUNT_ID: &str = "000000000000";

/// An access key as listed: never its secret.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyInfo {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    /// The IAM-like policy document; `None` allows nothing.
    pub policy: Option<String>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    /// What it was last used for (`secretsmanager:GetSecretValue`).
    pub last_used_for: Option<String>,
}

/// What the API server needs to check a request signed with an access key.
pub struct AccessKeyAuth {
    pub id: String,
    pub name: String,
    pub secret: Zeroizing<Vec<u8>>,
    pub policy: Option<String>,
}

impl std::fmt::Debug for AccessKeyAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccessKeyAuth({}, <redacted>)", self.id)
    }
}

fn info(row: &AccessKeyRow) -> AccessKeyInfo {
    AccessKeyInfo {
        id: row.id.clone(),
        name: row.name.clone(),
        enabled: row.enabled,
        policy: row.policy.clone(),
        created_at: Timestamp(row.created_at),
        last_used_at: row.last_used_at.map(Timestamp),
        last_used_for: row.last_used_what.clone(),
    }
}

fn secret_aad(vault_id: uuid::Uuid, id: &str) -> Aad {
    Aad::new("coffer.access-key-secret.v1")
        .with(vault_id.as_bytes())
        .with(id.as_bytes())
}

/// Access key ids as AWS allows them (`AccessKeyId`: 16–128 word characters).
pub fn check_access_key_id(id: &str) -> Result<()> {
    if !(16..=128).contains(&id.len())
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(Error::invalid(
            "access key id",
            "use 16 to 128 letters, digits or underscores, as in AKIAIOSFODNN7EXAMPLE",
        ));
    }
    Ok(())
}

fn check_secret(secret: &[u8]) -> Result<()> {
    if !(16..=128).contains(&secret.len()) || !secret.iter().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            "secret access key",
            "use 16 to 128 printable characters without spaces (AWS makes 40)",
        ));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "access key name",
            "use 1 to 64 letters, digits or +=,.@_-",
        ))
    }
}

fn check_policy(policy: Option<&str>) -> Result<()> {
    if let Some(policy) = policy {
        coffer_aws::policy::Policy::parse(policy)
            .map_err(|e| Error::invalid("policy", e.to_string()))?;
    }
    Ok(())
}

fn check_account_id(value: &str) -> Result<()> {
    if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Error::invalid(
            AWS_ACCOUNT_ID,
            "an AWS account id is exactly 12 digits, as in 123456789012",
        ))
    }
}

/// A new id in AWS's shape: `AKIA` and 16 characters of base32.
fn new_access_key_id() -> String {
    let mut raw = [0u8; 10];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let tail = base32::encode(base32::Alphabet::Rfc4648 { padding: false }, &raw);
    format!("AKIA{tail}")
}

/// A new secret in AWS's shape: 40 characters of base64 (240 random bits).
fn new_secret() -> Zeroizing<String> {
    let mut raw = Zeroizing::new([0u8; 30]);
    rand::rngs::OsRng.fill_bytes(raw.as_mut());
    Zeroizing::new(BASE64.encode(raw.as_ref()))
}

impl Vault {
    fn access_key_seal_key(&self) -> Result<Zeroizing<[u8; crate::crypto::KEY_LEN]>> {
        let keyring = self.keyring.as_ref().ok_or(Error::Locked)?;
        Ok(keyring.audit_key().derive(SECRET_KEY_PURPOSE))
    }

    /// Makes an access key; its secret is returned this once and never shown again.
    pub fn create_access_key(
        &mut self,
        name: &str,
        policy: Option<&str>,
    ) -> Result<(AccessKeyInfo, Zeroizing<String>)> {
        let secret = new_secret();
        let info = self.add_access_key(&new_access_key_id(), secret.as_bytes(), name, policy)?;
        Ok((info, secret))
    }

    /// Takes an existing pair (so a CI configuration can point at Coffer unchanged).
    pub fn import_access_key(
        &mut self,
        id: &str,
        secret: &[u8],
        name: Option<&str>,
        policy: Option<&str>,
    ) -> Result<AccessKeyInfo> {
        check_access_key_id(id)?;
        check_secret(secret)?;
        self.add_access_key(id, secret, name.unwrap_or(id), policy)
    }

    fn add_access_key(
        &mut self,
        id: &str,
        secret: &[u8],
        name: &str,
        policy: Option<&str>,
    ) -> Result<AccessKeyInfo> {
        check_name(name)?;
        check_policy(policy)?;
        self.require_unlocked()?;
        let sealed = aead::seal(
            &*self.access_key_seal_key()?,
            secret_aad(self.vault_id, id).as_bytes(),
            secret,
        );
        let row = self.write(
            AuditEvent::new("access_key_create").detail(format!(
                "access_key={id} name={name} policy={}",
                if policy.is_some() { "set" } else { "none" }
            )),
            |tx, keyring, _| {
                if rows::by_id(tx, id)?.is_some() {
                    return Err(Error::AccessKeyExists {
                        what: "access key id",
                        value: id.to_owned(),
                    });
                }
                if rows::by_name(tx, name)?.is_some() {
                    return Err(Error::AccessKeyExists {
                        what: "name",
                        value: name.to_owned(),
                    });
                }
                let row = AccessKeyRow {
                    id: id.to_owned(),
                    name: name.to_owned(),
                    sealed_secret: sealed,
                    policy: policy.map(str::to_owned),
                    enabled: true,
                    created_at: Timestamp::now().millis(),
                    last_used_at: None,
                    last_used_what: None,
                    mac: keyring
                        .integrity()
                        .access_key_tag(id, name, policy, true)
                        .to_vec(),
                };
                rows::insert(tx, &row)?;
                Ok(row)
            },
        )?;
        Ok(info(&row))
    }

    /// Every access key, each checked against its MAC.
    pub fn list_access_keys(&mut self) -> Result<Vec<AccessKeyInfo>> {
        self.require_unlocked()?;
        let integrity = self.keyring.as_ref().ok_or(Error::Locked)?.integrity();
        let all = rows::all(self.store.conn())?;
        all.iter()
            .map(|row| integrity.check_access_key(row).map(|()| info(row)))
            .collect()
    }

    /// The checked row of an access key given by id or name.
    fn access_key_row(&mut self, reference: &str) -> Result<AccessKeyRow> {
        self.require_unlocked()?;
        let conn = self.store.conn();
        let row = match rows::by_id(conn, reference)? {
            Some(row) => row,
            None => rows::by_name(conn, reference)?.ok_or_else(|| Error::AccessKeyNotFound {
                reference: reference.to_owned(),
            })?,
        };
        let integrity = self.keyring.as_ref().ok_or(Error::Locked)?.integrity();
        integrity.check_access_key(&row)?;
        Ok(row)
    }

    fn update_access_key(
        &mut self,
        reference: &str,
        operation: &'static str,
        enabled: bool,
        policy: Option<&str>,
    ) -> Result<AccessKeyInfo> {
        let row = self.access_key_row(reference)?;
        let id = row.id.clone();
        self.write(
            AuditEvent::new(operation).detail(format!("access_key={id}")),
            |tx, keyring, _| {
                // Checked again inside the transaction: the row may have changed since.
                let current = rows::by_id(tx, &id)?.ok_or_else(|| Error::AccessKeyNotFound {
                    reference: id.clone(),
                })?;
                keyring.integrity().check_access_key(&current)?;
                let mac = keyring
                    .integrity()
                    .access_key_tag(&id, &current.name, policy, enabled);
                rows::update(tx, &id, enabled, policy, &mac)?;
                Ok(())
            },
        )?;
        self.access_key_row(&id).map(|row| info(&row))
    }

    /// Disables (or enables again) an access key; a disabled key's requests are refused
    /// as if it did not exist, as AWS does.
    pub fn set_access_key_enabled(
        &mut self,
        reference: &str,
        enabled: bool,
    ) -> Result<AccessKeyInfo> {
        let row = self.access_key_row(reference)?;
        let operation = if enabled {
            "access_key_enable"
        } else {
            "access_key_disable"
        };
        self.update_access_key(&row.id, operation, enabled, row.policy.as_deref())
    }

    /// Replaces an access key's policy (`None`: it may do nothing).
    pub fn set_access_key_policy(
        &mut self,
        reference: &str,
        policy: Option<&str>,
    ) -> Result<AccessKeyInfo> {
        check_policy(policy)?;
        let row = self.access_key_row(reference)?;
        self.update_access_key(&row.id, "access_key_policy", row.enabled, policy)
    }

    pub fn delete_access_key(&mut self, reference: &str) -> Result<()> {
        let row = self.access_key_row(reference)?;
        let id = row.id;
        self.write(
            AuditEvent::new("access_key_delete").detail(format!("access_key={id}")),
            |tx, _, _| {
                rows::delete(tx, &id)?;
                Ok(())
            },
        )
    }

    /// The secret and policy of an enabled access key, for checking a signature; `None`
    /// for an unknown or disabled key. A tampered row is an error, never a key.
    pub fn access_key_auth(&mut self, id: &str) -> Result<Option<AccessKeyAuth>> {
        self.require_unlocked()?;
        let Some(row) = rows::by_id(self.store.conn(), id)? else {
            return Ok(None);
        };
        let integrity = self.keyring.as_ref().ok_or(Error::Locked)?.integrity();
        integrity.check_access_key(&row)?;
        if !row.enabled {
            return Ok(None);
        }
        let secret = aead::open(
            &*self.access_key_seal_key()?,
            secret_aad(self.vault_id, &row.id).as_bytes(),
            &row.sealed_secret,
        )
        .map_err(|_| Error::AccessKeyTampered { id: row.id.clone() })?;
        Ok(Some(AccessKeyAuth {
            id: row.id,
            name: row.name,
            secret,
            policy: row.policy,
        }))
    }

    /// Records that an access key was used, and for what (status, not audit: the
    /// operation itself is audited under the key's id).
    pub fn record_access_key_use(&mut self, id: &str, what: &str) -> Result<()> {
        self.require_unlocked()?;
        rows::record_use(self.store.conn(), id, Timestamp::now().millis(), what)?;
        Ok(())
    }

    /// The AWS account id ARNs carry.
    pub fn aws_account_id(&mut self) -> Result<String> {
        self.require_unlocked()?;
        let integrity = self.keyring.as_ref().ok_or(Error::Locked)?.integrity();
        match integrity.setting(self.store.conn(), AWS_ACCOUNT_ID)? {
            Some(value) => String::from_utf8(value).map_err(|_| Error::SettingTampered {
                name: AWS_ACCOUNT_ID,
            }),
            None => Ok(DEFAULT_AWS_ACCOUNT_ID.to_owned()),
        }
    }

    /// Reads a vault setting by its name (`aws.account-id`).
    pub fn setting(&mut self, name: &str) -> Result<String> {
        match name {
            AWS_ACCOUNT_ID => self.aws_account_id(),
            AUDIT_READS => Ok(self.read_audit()?.as_str().to_owned()),
            other => Err(unknown_setting(other)),
        }
    }

    /// Sets a vault setting by its name; the value is checked first.
    pub fn set_setting(&mut self, name: &str, value: &str) -> Result<String> {
        let name: &'static str = match name {
            AWS_ACCOUNT_ID => {
                check_account_id(value)?;
                AWS_ACCOUNT_ID
            }
            AUDIT_READS => {
                ReadAudit::parse(value)?;
                AUDIT_READS
            }
            other => return Err(unknown_setting(other)),
        };
        self.require_unlocked()?;
        self.write(
            AuditEvent::new("setting_set").detail(format!("{name}={value}")),
            |tx, keyring, _| keyring.integrity().set_setting(tx, name, value.as_bytes()),
        )?;
        self.setting(name)
    }
}

fn unknown_setting(name: &str) -> Error {
    Error::invalid(
        "setting",
        format!("{name:?} is not a setting; the settings are: {AWS_ACCOUNT_ID}, {AUDIT_READS}"),
    )
}

impl Vault {
    /// The region name ARNs carry: this vault's region (`local-1` until renamed).
    pub fn aws_region_name(&mut self) -> Result<String> {
        self.require_unlocked()?;
        let integrity = self.keyring.as_ref().ok_or(Error::Locked)?.integrity();
        Ok(integrity
            .region_name(self.store.conn())?
            .unwrap_or_else(|| crate::region::DEFAULT_REGION.to_owned()))
    }

    /// The seed of the AWS API's generated TLS key: derived from the vault's audit key, as
    /// the region identity's sealing key is, so that the key is never stored (not even
    /// sealed) and the certificate made from it is the same at every start, and a client
    /// can pin it once. Only an unlocked vault can give it.
    pub fn aws_tls_seed(&mut self) -> Result<Zeroizing<[u8; 32]>> {
        self.require_unlocked()?;
        let keyring = self.keyring.as_ref().ok_or(Error::Locked)?;
        Ok(keyring.audit_key().derive(b"coffer.aws-api-tls-key.v1"))
    }

    /// Records that an access key's policy refused a request (`detail` names the key,
    /// the action and the resource).
    pub fn record_access_denied(&mut self, detail: String) -> Result<()> {
        self.require_unlocked()?;
        self.write(
            AuditEvent::new("aws_access_denied")
                .failed("access_denied")
                .detail(detail),
            |_, _, _| Ok(()),
        )
    }
}

impl Vault {
    /// What the AWS API needs to name and authorize a request on a secret, in one lookup
    /// (MACs checked): its immutable id, deleted or not, from which the six characters
    /// ending its ARN are derived (so a secret made again under the same name gets a new
    /// ARN, as in Secrets Manager), and its resource policy.
    pub fn aws_secret(&mut self, name: &str) -> Result<(uuid::Uuid, Option<String>)> {
        self.require_unlocked()?;
        let name = crate::names::SecretName::parse(name)?;
        let integrity = self.keyring.as_ref().ok_or(Error::Locked)?.integrity();
        let conn = self.store.conn();
        let secret = super::secrets::any_secret(conn, &integrity, &name)?;
        let policy = match rows::secret_policy(conn, secret.id)? {
            None => None,
            Some((policy, mac)) => {
                integrity.check_secret_policy(secret.id, &secret.name, &policy, &mac)?;
                Some(policy)
            }
        };
        Ok((secret.id, policy))
    }

    /// A secret's resource policy, `None` if it has none.
    pub fn secret_policy(&mut self, name: &str) -> Result<Option<String>> {
        self.require_unlocked()?;
        let name = crate::names::SecretName::parse(name)?;
        let integrity = self.keyring.as_ref().ok_or(Error::Locked)?.integrity();
        let conn = self.store.conn();
        let secret = super::secrets::live_secret(conn, &integrity, &name)?;
        match rows::secret_policy(conn, secret.id)? {
            None => Ok(None),
            Some((policy, mac)) => {
                integrity.check_secret_policy(secret.id, &secret.name, &policy, &mac)?;
                Ok(Some(policy))
            }
        }
    }

    /// Attaches a resource policy to a secret (replacing any). With `block_public`, a
    /// policy whose Allow names every principal is refused, as `BlockPublicPolicy` does.
    pub fn put_secret_policy(
        &mut self,
        name: &str,
        policy: &str,
        block_public: bool,
    ) -> Result<()> {
        let name = crate::names::SecretName::parse(name)?;
        let parsed = coffer_aws::policy::Policy::parse_resource(policy)
            .map_err(|e| Error::invalid("resource policy", e.to_string()))?;
        if block_public && parsed.is_public() {
            return Err(Error::invalid(
                "resource policy",
                "it allows every principal (\"*\"), which BlockPublicPolicy refuses; name the access keys' user ARNs instead",
            ));
        }
        self.require_unlocked()?;
        self.write(
            AuditEvent::new("put_secret_policy").secret(None, name.as_str()),
            |tx, keyring, event| {
                let integrity = keyring.integrity();
                let secret = super::secrets::live_secret(tx, &integrity, &name)?;
                event.secret_id = Some(secret.id);
                let mac = integrity.secret_policy_tag(secret.id, policy);
                rows::set_secret_policy(tx, secret.id, policy, &mac)?;
                Ok(())
            },
        )
    }

    pub fn delete_secret_policy(&mut self, name: &str) -> Result<()> {
        let name = crate::names::SecretName::parse(name)?;
        self.require_unlocked()?;
        self.write(
            AuditEvent::new("delete_secret_policy").secret(None, name.as_str()),
            |tx, keyring, event| {
                let secret = super::secrets::live_secret(tx, &keyring.integrity(), &name)?;
                event.secret_id = Some(secret.id);
                rows::delete_secret_policy(tx, secret.id)?;
                Ok(())
            },
        )
    }
}
