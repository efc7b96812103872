//! Secrets, their versions and staging labels (modelled on AWS Secrets Manager).

use std::collections::BTreeMap;

use rusqlite::{Connection, Transaction};
use uuid::Uuid;

use super::audit::AuditEvent;
use super::context;
use super::error::{Error, Result};
use super::integrity::Integrity;
use super::keyring::Keyring;
use super::replication::record_change;
use super::{Vault, VERSIONS_KEPT};
use crate::crypto::DataKey;
use crate::model::{
    DeletedFilter, Deletion, ListQuery, Page, SecretDescription, SecretRead, SecretSummary,
    SecretValue, SecretVersionInfo, SortBy, Timestamp, VersionSelector, VersionWritten,
    MAX_VALUE_LEN,
};
use crate::names::{check_tag, SecretName, StagingLabel};
use crate::store::keys::{self as key_rows, KeyRow};
use crate::store::secrets::{self as rows, SecretRow, VersionRow};

/// Everything `create` accepts.
#[derive(Debug, Default)]
pub struct CreateSecret {
    pub name: String,
    pub description: String,
    /// A key id or `alias/NAME`; the default key when absent.
    pub key: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// The first value; a secret may also be created empty and given one later.
    pub value: Option<SecretValue>,
    pub client_token: Option<String>,
}

/// Everything `put` accepts besides the name.
#[derive(Debug)]
pub struct PutValue {
    pub value: SecretValue,
    /// Labels for the new version; `[CURRENT]` when empty.
    pub labels: Vec<StagingLabel>,
    pub client_token: Option<String>,
}

impl PutValue {
    pub fn new(value: SecretValue) -> Self {
        PutValue {
            value,
            labels: Vec::new(),
            client_token: None,
        }
    }
}

pub(crate) fn check_value(value: &SecretValue) -> Result<()> {
    if value.is_empty() {
        return Err(Error::EmptyValue);
    }
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::ValueTooLarge {
            size: value.len(),
            max: MAX_VALUE_LEN,
        });
    }
    Ok(())
}

fn check_token(token: &Option<String>) -> Result<()> {
    if let Some(token) = token {
        if !(1..=64).contains(&token.len()) || !token.chars().all(|c| c.is_ascii_graphic()) {
            return Err(Error::invalid(
                "idempotency token",
                "use 1 to 64 printable ASCII characters (a UUID works well)",
            ));
        }
    }
    Ok(())
}

fn check_description(description: &str) -> Result<()> {
    if description.chars().count() > 2048 {
        return Err(Error::invalid("description", "use at most 2048 characters"));
    }
    Ok(())
}

fn check_create(request: &CreateSecret) -> Result<SecretName> {
    let name = SecretName::parse(&request.name)?;
    check_description(&request.description)?;
    check_token(&request.client_token)?;
    for (key, value) in &request.tags {
        check_tag(key, value)?;
    }
    if let Some(value) = &request.value {
        check_value(value)?;
    }
    Ok(name)
}

fn insert_new_secret(
    tx: &Transaction<'_>,
    keyring: &mut Keyring,
    vault_id: Uuid,
    name: &SecretName,
    request: &CreateSecret,
    event: &mut AuditEvent,
) -> Result<VersionWritten> {
    let integrity = keyring.integrity();
    if let Some(existing) = rows::find_by_name(tx, name.as_str())? {
        integrity.check_secret(tx, &existing)?;
        if let Some(purge_at) = existing.purge_at {
            return Err(Error::SecretDeleted {
                name: existing.name,
                purge_at: Timestamp(purge_at),
            });
        }
        // A retried create (same token, same value) answers like the first attempt did.
        if let (Some(token), Some(value)) = (&request.client_token, &request.value) {
            if let Some(earlier) = rows::version_by_token(tx, existing.id, token)? {
                let stored = open_version(tx, keyring, vault_id, &existing.name, &earlier)?;
                if stored.same_as(value) {
                    event.secret_id = Some(existing.id);
                    event.version_id = Some(earlier.id);
                    event.detail = "idempotent retry".to_owned();
                    return Ok(VersionWritten {
                        name: name.clone(),
                        secret_id: existing.id,
                        version_id: earlier.id,
                        labels: labels_of(tx, earlier.id)?,
                        created: false,
                    });
                }
                return Err(Error::TokenReused {
                    name: name.to_string(),
                    token: token.clone(),
                });
            }
        }
        return Err(Error::SecretExists {
            name: name.to_string(),
        });
    }
    let key = match &request.key {
        Some(reference) => resolve_key(tx, &integrity, reference)?,
        None => default_key(tx, &integrity)?,
    };
    usable(&key)?;
    let now = Timestamp::now().millis();
    let secret = SecretRow {
        id: Uuid::new_v4(),
        name: name.to_string(),
        description: request.description.clone(),
        key_id: key.id,
        created_at: now,
        changed_at: now,
        accessed_day: None,
        deleted_at: None,
        purge_at: None,
        mac: Vec::new(),
    };
    event.secret_id = Some(secret.id);
    event.key_id = Some(key.id);
    let seq = record_change(tx, now, "secret", secret.id.as_bytes(), "create")?;
    rows::insert_secret(tx, &secret, seq)?;
    for (tag, value) in &request.tags {
        rows::set_tag(tx, secret.id, tag, value)?;
    }
    super::team::secret_created(tx, &integrity, &secret, seq)?;
    let mut written = VersionWritten {
        name: name.clone(),
        secret_id: secret.id,
        version_id: Uuid::nil(),
        labels: Vec::new(),
        created: true,
    };
    if let Some(value) = &request.value {
        let version = seal_version(
            tx,
            keyring,
            vault_id,
            &secret,
            value,
            request.client_token.clone(),
        )?;
        written.labels = attach_version(tx, &secret, &version, &[], seq)?;
        written.version_id = version.id;
        event.version_id = Some(version.id);
    }
    Ok(written)
}

fn labels_of(conn: &Connection, version_id: Uuid) -> Result<Vec<StagingLabel>> {
    Ok(rows::labels_of_version(conn, version_id)?
        .iter()
        .filter_map(|l| StagingLabel::parse(l).ok())
        .collect())
}

/// Looks a secret up by name, refusing deleted ones and rows altered outside Coffer.
pub(super) fn live_secret(
    conn: &Connection,
    integrity: &Integrity,
    name: &SecretName,
) -> Result<SecretRow> {
    let row = any_secret(conn, integrity, name)?;
    if let Some(purge_at) = row.purge_at {
        return Err(Error::SecretDeleted {
            name: row.name,
            purge_at: Timestamp(purge_at),
        });
    }
    Ok(row)
}

/// Looks a secret up by name, deleted or not, refusing rows altered outside Coffer.
pub(super) fn any_secret(
    conn: &Connection,
    integrity: &Integrity,
    name: &SecretName,
) -> Result<SecretRow> {
    let row = find_secret(conn, name)?;
    integrity.check_secret(conn, &row)?;
    Ok(row)
}

/// Looks a secret up by name without checking its MAC: only for explaining a miss.
fn find_secret(conn: &Connection, name: &SecretName) -> Result<SecretRow> {
    rows::find_by_name(conn, name.as_str())?.ok_or_else(|| Error::SecretNotFound {
        name: name.to_string(),
    })
}

/// The default key, refused if its row was altered outside Coffer.
pub(super) fn default_key(conn: &Connection, integrity: &Integrity) -> Result<KeyRow> {
    let key = key_rows::default_key(conn)?;
    integrity.check_key(conn, &key)?;
    Ok(key)
}

/// A key by id, refused if its row was altered outside Coffer.
pub(super) fn key_by_id(conn: &Connection, integrity: &Integrity, id: Uuid) -> Result<KeyRow> {
    let key = key_rows::key_by_id(conn, id)?.ok_or_else(|| Error::KeyNotFound {
        reference: id.to_string(),
    })?;
    integrity.check_key(conn, &key)?;
    Ok(key)
}

/// The alias the default key always has.
pub const DEFAULT_KEY_ALIAS: &str = "alias/default";

/// Resolves a key reference (`alias/NAME` or a key id) to its row, refusing a key row
/// (or alias) altered outside Coffer.
pub(super) fn resolve_key(
    conn: &Connection,
    integrity: &Integrity,
    reference: &str,
) -> Result<KeyRow> {
    let found = if reference.starts_with("alias/") {
        match key_rows::key_by_alias(conn, reference)? {
            // Every vault's default key answers to `alias/default` without a row, so
            // that commands defaulting to it need no lookup of its id.
            None if reference == DEFAULT_KEY_ALIAS => Some(key_rows::default_key(conn)?),
            found => found,
        }
    } else {
        match Uuid::parse_str(reference) {
            Ok(id) => key_rows::key_by_id(conn, id)?,
            Err(_) => None,
        }
    };
    let key = found.ok_or_else(|| Error::KeyNotFound {
        reference: reference.to_owned(),
    })?;
    integrity.check_key(conn, &key)?;
    Ok(key)
}

/// Fails unless the key may be used.
pub(super) fn usable(key: &KeyRow) -> Result<()> {
    usable_state(key.id, &key.state)
}

fn usable_state(key_id: Uuid, state: &str) -> Result<()> {
    match state {
        "enabled" => Ok(()),
        "disabled" => Err(Error::KeyDisabled { key_id }),
        _ => Err(Error::KeyPendingDeletion { key_id }),
    }
}

/// Why a read found nothing: no such secret, deleted, or no such label or version.
fn explain_missing(conn: &Connection, name: &SecretName, selector: &VersionSelector) -> Error {
    let secret = match find_secret(conn, name) {
        Ok(secret) => secret,
        Err(error) => return error,
    };
    if let Some(purge_at) = secret.purge_at {
        return Error::SecretDeleted {
            name: secret.name,
            purge_at: Timestamp(purge_at),
        };
    }
    match selector {
        VersionSelector::Label(label) => {
            match rows::label_target(conn, secret.id, label.as_str()) {
                // The label names a version, just not one of this secret's: a moved row.
                Ok(Some(version_id)) => Error::Tampered {
                    name: secret.name,
                    version_id,
                },
                Ok(None) => Error::LabelNotFound {
                    name: secret.name,
                    label: label.to_string(),
                },
                Err(error) => error.into(),
            }
        }
        VersionSelector::Id(id) => Error::VersionNotFound {
            name: secret.name,
            version_id: *id,
        },
    }
}

/// Encrypts a value as a new version: a fresh data key, wrapped under the key's newest
/// version, both bound to this exact secret version.
fn seal_version(
    tx: &Transaction<'_>,
    keyring: &mut Keyring,
    vault_id: Uuid,
    secret: &SecretRow,
    value: &SecretValue,
    client_token: Option<String>,
) -> Result<VersionRow> {
    let key = key_by_id(tx, &keyring.integrity(), secret.key_id)?;
    usable(&key)?;
    let key_version = key_rows::newest_key_version(tx, key.id)?
        .ok_or(crate::store::StoreError::Missing {
            what: "key version",
        })?
        .version;
    let kek = keyring.kek(tx, key.id, key_version)?;
    // Secrets Manager makes the request token the new version's id; a token that is a
    // UUID not used yet does so here too, so an SDK finds the version it asked for.
    let version_id = match client_token.as_deref().map(Uuid::parse_str) {
        Some(Ok(id)) if !id.is_nil() && !rows::version_id_taken(tx, id)? => id,
        _ => Uuid::new_v4(),
    };
    let dek = DataKey::generate();
    let wrapped_dek = dek.wrap(
        kek,
        context::data_key(vault_id, key.id, key_version, secret.id, version_id).as_bytes(),
    );
    let ciphertext = dek.seal(
        context::secret_value(vault_id, secret.id, version_id).as_bytes(),
        &value.encode(),
    );
    Ok(VersionRow {
        id: version_id,
        secret_id: secret.id,
        created_at: Timestamp::now().millis(),
        key_id: key.id,
        key_version,
        wrapped_dek,
        ciphertext,
        client_token,
        origin_vault: None,
    })
}

/// Decrypts a stored version, naming the secret and version if anything was altered.
fn open_version(
    conn: &Connection,
    keyring: &mut Keyring,
    vault_id: Uuid,
    name: &str,
    row: &VersionRow,
) -> Result<SecretValue> {
    let key = key_rows::key_by_id(conn, row.key_id)?.ok_or_else(|| Error::Tampered {
        name: name.to_owned(),
        version_id: row.id,
    })?;
    keyring.integrity().check_key(conn, &key)?;
    usable(&key)?;
    decrypt_version(conn, keyring, vault_id, name, row)
}

/// Unwraps a version's data key and decrypts its value; the caller checked the key state.
fn decrypt_version(
    conn: &Connection,
    keyring: &mut Keyring,
    vault_id: Uuid,
    name: &str,
    row: &VersionRow,
) -> Result<SecretValue> {
    let tampered = || Error::Tampered {
        name: name.to_owned(),
        version_id: row.id,
    };
    let kek = keyring.kek(conn, row.key_id, row.key_version)?;
    let dek = DataKey::unwrap(
        kek,
        context::data_key(vault_id, row.key_id, row.key_version, row.secret_id, row.id).as_bytes(),
        &row.wrapped_dek,
    )
    .map_err(|_| tampered())?;
    // A replicated version's ciphertext is the primary's, bound to the primary's vault id.
    let value_vault = row.origin_vault.unwrap_or(vault_id);
    let plain = dek
        .open(
            context::secret_value(value_vault, row.secret_id, row.id).as_bytes(),
            &row.ciphertext,
        )
        .map_err(|_| tampered())?;
    SecretValue::decode(plain).ok_or_else(tampered)
}

/// Inserts a sealed version and moves labels onto it as Secrets Manager does: moving
/// CURRENT moves PREVIOUS to the version that was current.
fn attach_version(
    tx: &Transaction<'_>,
    secret: &SecretRow,
    version: &VersionRow,
    labels: &[StagingLabel],
    change_seq: i64,
) -> Result<Vec<StagingLabel>> {
    rows::insert_version(tx, version, change_seq)?;
    let labels: Vec<StagingLabel> = if labels.is_empty() {
        vec![StagingLabel::current()]
    } else {
        let mut unique = labels.to_vec();
        unique.sort();
        unique.dedup();
        unique
    };
    for label in &labels {
        move_label(tx, secret.id, label, version.id)?;
    }
    rows::prune_versions(tx, secret.id, VERSIONS_KEPT)?;
    Ok(labels)
}

fn move_label(tx: &Transaction<'_>, secret_id: Uuid, label: &StagingLabel, to: Uuid) -> Result<()> {
    if label.is_current() {
        if let Some(old) = rows::version_by_label(tx, secret_id, StagingLabel::CURRENT)? {
            if old.id != to {
                rows::set_label(tx, secret_id, StagingLabel::PREVIOUS, old.id)?;
            }
        }
    }
    rows::set_label(tx, secret_id, label.as_str(), to)?;
    Ok(())
}

fn describe_row(conn: &Connection, row: SecretRow) -> Result<SecretDescription> {
    let labels = rows::labels(conn, row.id)?;
    let versions = rows::versions(conn, row.id)?
        .into_iter()
        .map(|v| SecretVersionInfo {
            version_id: v.id,
            created_at: Timestamp(v.created_at),
            labels: labels
                .iter()
                .filter(|(_, id)| *id == v.id)
                .filter_map(|(label, _)| StagingLabel::parse(label).ok())
                .collect(),
            key_id: v.key_id,
            key_version: v.key_version,
        })
        .collect();
    Ok(SecretDescription {
        id: row.id,
        name: SecretName::parse(&row.name)?,
        key_aliases: key_rows::aliases(conn, row.key_id)?,
        tags: rows::tags(conn, row.id)?,
        description: row.description,
        key_id: row.key_id,
        created_at: Timestamp(row.created_at),
        changed_at: Timestamp(row.changed_at),
        last_accessed: row.accessed_day.map(|day| Timestamp(day * 86_400_000)),
        deleted_at: row.deleted_at.map(Timestamp),
        purge_at: row.purge_at.map(Timestamp),
        versions,
        rotation: Vault::rotation_of(conn, row.id, &row.name)?,
        replication: super::replication::replication_of(conn, row.id)?,
    })
}

/// A team member's write, opened and checked by [`super::team::forward`].
pub(crate) struct Forwarded<'a> {
    pub author_vault: Uuid,
    pub name: &'a SecretName,
    pub secret_id: Uuid,
    pub create: Option<&'a super::team::forward::NewSecret>,
    pub version_id: Uuid,
    pub labels: &'a [StagingLabel],
    /// As the member encrypted it, bound to the member's vault id: stored as it came.
    pub ciphertext: Vec<u8>,
    pub dek: &'a DataKey,
}

/// Applies a team member's write on the folder's primary, in its write transaction: the
/// member's ciphertext becomes a version here (its data key wrapped under this vault's
/// key), created with the secret if asked, and labelled as a put is.
pub(crate) fn apply_forwarded(
    tx: &Transaction<'_>,
    keyring: &mut Keyring,
    vault_id: Uuid,
    write: &Forwarded<'_>,
    event: &mut AuditEvent,
) -> Result<VersionWritten> {
    let integrity = keyring.integrity();
    let now = Timestamp::now().millis();
    let existing = rows::find_by_name(tx, write.name.as_str())?;
    let (mut secret, seq, created) = match (existing, write.create) {
        (Some(_), None) => {
            let row = live_secret(tx, &integrity, write.name)?;
            if row.id != write.secret_id {
                return Err(Error::invalid(
                    "team write",
                    format!(
                        "the member's copy of {:?} is another secret than the one here (it was deleted and created again); wait for the member's copy to catch up, then write again",
                        write.name.as_str()
                    ),
                ));
            }
            let seq = record_change(tx, now, "secret", row.id.as_bytes(), "put_value")?;
            (row, seq, false)
        }
        (Some(row), Some(_)) => {
            return Err(Error::SecretExists { name: row.name });
        }
        (None, None) => {
            return Err(Error::SecretNotFound {
                name: write.name.to_string(),
            })
        }
        (None, Some(new)) => {
            if rows::secret_by_id(tx, write.secret_id)?.is_some() {
                return Err(Error::invalid(
                    "team write",
                    "its new secret id is already used here; write again to get a new one",
                ));
            }
            check_description(&new.description)?;
            for (key, value) in &new.tags {
                check_tag(key, value)?;
            }
            let key = default_key(tx, &integrity)?;
            usable(&key)?;
            let row = SecretRow {
                id: write.secret_id,
                name: write.name.to_string(),
                description: new.description.clone(),
                key_id: key.id,
                created_at: now,
                changed_at: now,
                accessed_day: None,
                deleted_at: None,
                purge_at: None,
                mac: Vec::new(),
            };
            let seq = record_change(tx, now, "secret", row.id.as_bytes(), "create")?;
            rows::insert_secret(tx, &row, seq)?;
            for (tag, value) in &new.tags {
                rows::set_tag(tx, row.id, tag, value)?;
            }
            super::team::secret_created(tx, &integrity, &row, seq)?;
            (row, seq, true)
        }
    };
    event.secret_id = Some(secret.id);
    if rows::version_id_taken(tx, write.version_id)? {
        return Err(Error::invalid(
            "team write",
            "its version id is already used here; write again to get a new one",
        ));
    }
    let key = key_by_id(tx, &integrity, secret.key_id)?;
    usable(&key)?;
    let key_version = key_rows::newest_key_version(tx, key.id)?
        .ok_or(crate::store::StoreError::Missing {
            what: "key version",
        })?
        .version;
    let kek = keyring.kek(tx, key.id, key_version)?;
    let wrapped_dek = write.dek.wrap(
        kek,
        context::data_key(vault_id, key.id, key_version, secret.id, write.version_id).as_bytes(),
    );
    let version = VersionRow {
        id: write.version_id,
        secret_id: secret.id,
        created_at: now,
        key_id: key.id,
        key_version,
        wrapped_dek,
        ciphertext: write.ciphertext.clone(),
        client_token: None,
        origin_vault: (write.author_vault != vault_id).then_some(write.author_vault),
    };
    event.version_id = Some(version.id);
    event.key_id = Some(key.id);
    let labels = attach_version(tx, &secret, &version, write.labels, seq)?;
    if !created {
        secret.changed_at = now;
        rows::update_secret(tx, &secret, seq)?;
    }
    Ok(VersionWritten {
        name: write.name.clone(),
        secret_id: secret.id,
        version_id: version.id,
        labels,
        created: true,
    })
}

impl Vault {
    /// Creates a secret, optionally with its first value (labelled CURRENT).
    pub fn create_secret(&mut self, request: CreateSecret) -> Result<VersionWritten> {
        let name = check_create(&request)?;
        self.require_unlocked()?;
        if let Some(folder) = self.team_route(name.as_str())? {
            let Some(value) = &request.value else {
                return Err(Error::invalid(
                    "create",
                    format!("{name} is in team folder {}, where a secret is created with its first value; give one", folder.prefix),
                ));
            };
            if request.key.is_some() || request.client_token.is_some() {
                return Err(Error::invalid(
                    "create",
                    format!("{name} is in team folder {}, whose primary (region {}) chooses the key; leave out the key and the idempotency token", folder.prefix, folder.primary_region),
                ));
            }
            let new = super::team::forward::NewSecret {
                description: request.description.clone(),
                tags: request.tags.clone(),
            };
            return self.forward_write(
                &folder,
                &name,
                super::team::forward::Intent::Create { value, new },
            );
        }
        let vault_id = self.vault_id;
        let event = AuditEvent::new("create_secret").secret(None, name.as_str());
        self.write(event, |tx, keyring, event| {
            insert_new_secret(tx, keyring, vault_id, &name, &request, event)
        })
    }

    /// Creates many secrets in one transaction: all of them or, on any error, none.
    /// Each still gets its own data keys and its own audit entry.
    pub fn import_secrets(&mut self, requests: &[CreateSecret]) -> Result<Vec<VersionWritten>> {
        let names = requests
            .iter()
            .map(check_create)
            .collect::<Result<Vec<_>>>()?;
        self.require_unlocked()?;
        for name in &names {
            if let Some(folder) = self.team_route(name.as_str())? {
                return Err(super::team::TeamError::MemberCopy {
                    name: name.to_string(),
                    prefix: folder.prefix,
                    primary: folder.primary_region,
                }
                .into());
            }
        }
        let vault_id = self.vault_id;
        let Vault {
            store,
            keyring,
            actor,
            ..
        } = self;
        let keyring = keyring.as_mut().ok_or(Error::Locked)?;
        let tx = store.write()?;
        let mut events = Vec::with_capacity(requests.len());
        let mut written = Vec::with_capacity(requests.len());
        for (request, name) in requests.iter().zip(&names) {
            let mut event = AuditEvent::new("create_secret")
                .secret(None, name.as_str())
                .detail("import");
            let done = insert_new_secret(&tx, keyring, vault_id, name, request, &mut event)?;
            keyring.integrity().seal_secret(&tx, done.secret_id)?;
            written.push(done);
            events.push(event);
        }
        super::audit::append(&tx, keyring.audit_key(), actor, &events)?;
        tx.commit().map_err(crate::store::StoreError::from)?;
        Ok(written)
    }

    /// Stores a new value as a new version. With an idempotency token, a retry of the
    /// same put returns the version the first attempt made instead of adding another.
    pub fn put_secret_value(&mut self, name: &str, put: PutValue) -> Result<VersionWritten> {
        let name = SecretName::parse(name)?;
        check_value(&put.value)?;
        check_token(&put.client_token)?;
        self.require_unlocked()?;
        if let Some(folder) = self.team_route(name.as_str())? {
            if put.client_token.is_some() {
                return Err(Error::invalid(
                    "put",
                    format!("{name} is in team folder {}, whose writes go to region {}; leave out the idempotency token", folder.prefix, folder.primary_region),
                ));
            }
            return self.forward_write(
                &folder,
                &name,
                super::team::forward::Intent::Put {
                    value: &put.value,
                    labels: &put.labels,
                },
            );
        }
        let vault_id = self.vault_id;
        let event = AuditEvent::new("put_secret_value").secret(None, name.as_str());
        self.write(event, |tx, keyring, event| {
            let mut secret = live_secret(tx, &keyring.integrity(), &name)?;
            event.secret_id = Some(secret.id);
            if let Some(token) = &put.client_token {
                if let Some(earlier) = rows::version_by_token(tx, secret.id, token)? {
                    let stored = open_version(tx, keyring, vault_id, name.as_str(), &earlier)?;
                    if !stored.same_as(&put.value) {
                        return Err(Error::TokenReused {
                            name: name.to_string(),
                            token: token.clone(),
                        });
                    }
                    event.version_id = Some(earlier.id);
                    event.detail = "idempotent retry".to_owned();
                    return Ok(VersionWritten {
                        name: name.clone(),
                        secret_id: secret.id,
                        version_id: earlier.id,
                        labels: labels_of(tx, earlier.id)?,
                        created: false,
                    });
                }
            }
            let version = seal_version(
                tx,
                keyring,
                vault_id,
                &secret,
                &put.value,
                put.client_token.clone(),
            )?;
            event.version_id = Some(version.id);
            event.key_id = Some(version.key_id);
            let now = Timestamp::now().millis();
            let seq = record_change(tx, now, "secret", secret.id.as_bytes(), "put_value")?;
            let labels = attach_version(tx, &secret, &version, &put.labels, seq)?;
            secret.changed_at = now;
            rows::update_secret(tx, &secret, seq)?;
            Ok(VersionWritten {
                name: name.clone(),
                secret_id: secret.id,
                version_id: version.id,
                labels,
                created: true,
            })
        })
    }

    /// Reads a value: CURRENT by default, or a label, or a version id.
    pub fn get_secret_value(
        &mut self,
        name: &str,
        selector: &VersionSelector,
    ) -> Result<SecretRead> {
        let event = AuditEvent::new("get_secret_value");
        let event = match SecretName::parse(name) {
            Ok(name) => event.secret(None, name.as_str()),
            Err(error) => return Err(error.into()),
        };
        let vault_id = self.vault_id;
        let keyring = self.keyring.as_mut().ok_or(Error::Locked)?;
        let conn = self.store.conn();
        let mut event = event;
        let integrity = keyring.integrity();
        let result = (|| {
            let secret_name = SecretName::parse(name)?;
            // The name, labels and deletion state that lead to the version are checked
            // first: an edited row must fail, never return another secret's value.
            let secret = match rows::find_by_name(conn, secret_name.as_str())? {
                Some(secret) => secret,
                None => return Err(explain_missing(conn, &secret_name, selector)),
            };
            event.secret_id = Some(secret.id);
            integrity.check_secret(conn, &secret)?;
            let found = match selector {
                VersionSelector::Label(label) => {
                    rows::read_by_label(conn, secret_name.as_str(), label.as_str())?
                }
                VersionSelector::Id(id) => rows::read_by_id(conn, secret_name.as_str(), *id)?,
            };
            let Some(found) = found else {
                return Err(explain_missing(conn, &secret_name, selector));
            };
            let row = &found.version;
            if row.secret_id != secret.id {
                return Err(Error::SecretRowTampered { name: secret.name });
            }
            event.version_id = Some(row.id);
            if let Some(purge_at) = found.purge_at {
                return Err(Error::SecretDeleted {
                    name: found.secret_name,
                    purge_at: Timestamp(purge_at),
                });
            }
            usable_state(row.key_id, &found.key_state)?;
            let value = decrypt_version(conn, keyring, vault_id, &found.secret_name, row)?;
            let labels = found
                .labels
                .as_deref()
                .unwrap_or_default()
                .lines()
                .filter_map(|l| StagingLabel::parse(l).ok())
                .collect();
            Ok(SecretRead {
                name: secret_name,
                version_id: row.id,
                labels,
                created_at: Timestamp(row.created_at),
                value,
            })
        })();
        let event = event.outcome(&result);
        self.queue_read(event)?;
        result
    }

    /// Reads several secrets' CURRENT values; each answer stands on its own.
    pub fn batch_get_secret_values(
        &mut self,
        names: &[String],
    ) -> Vec<(String, Result<SecretRead>)> {
        names
            .iter()
            .map(|name| {
                (
                    name.clone(),
                    self.get_secret_value(name, &VersionSelector::default()),
                )
            })
            .collect()
    }

    pub fn describe_secret(&mut self, name: &str) -> Result<SecretDescription> {
        let name = SecretName::parse(name)?;
        let integrity = self.integrity()?;
        let conn = self.store.conn();
        let row = any_secret(conn, &integrity, &name)?;
        let id = row.id;
        let description = describe_row(conn, row)?;
        self.queue_read(AuditEvent::new("describe_secret").secret(Some(id), name.as_str()))?;
        Ok(description)
    }

    pub fn list_secret_versions(&mut self, name: &str) -> Result<Vec<SecretVersionInfo>> {
        Ok(self.describe_secret(name)?.versions)
    }

    /// Lists secrets matching every filter, one page at a time.
    pub fn list_secrets(&mut self, query: &ListQuery) -> Result<Page<SecretSummary>> {
        self.require_unlocked()?;
        let limit = query.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(Error::invalid("page size", "use 1 to 1000"));
        }
        let cursor = query.next_token.as_deref().map(decode_cursor).transpose()?;
        let filter = rows::ListFilter {
            name_prefix: query.name_prefix.as_deref(),
            description_contains: query.description_contains.as_deref(),
            tag_key: query.tag.as_ref().map(|(k, _)| k.as_str()),
            tag_value: query.tag.as_ref().and_then(|(_, v)| v.as_deref()),
            text: query.text.as_deref().filter(|t| !t.is_empty()),
            deleted_only: match query.deleted {
                DeletedFilter::Exclude => None,
                DeletedFilter::Only => Some(true),
                DeletedFilter::Include => Some(false),
            },
            by_changed: query.sort == SortBy::ChangedDesc,
            after_name: cursor.as_ref().map(|(_, name)| name.as_str()),
            after_changed: cursor.as_ref().map(|(changed, _)| *changed),
            limit: limit + 1,
        };
        let conn = self.store.conn();
        let mut found = rows::list(conn, &filter)?;
        let next_token = if found.len() > limit as usize {
            found.truncate(limit as usize);
            found
                .last()
                .map(|last| encode_cursor(last.changed_at, &last.name))
        } else {
            None
        };
        let mut items = Vec::with_capacity(found.len());
        for row in found {
            items.push(SecretSummary {
                id: row.id,
                name: SecretName::parse(&row.name)?,
                description: row.description,
                tags: rows::tags(conn, row.id)?,
                changed_at: Timestamp(row.changed_at),
                last_accessed: row.accessed_day.map(|day| Timestamp(day * 86_400_000)),
                deleted_at: row.deleted_at.map(Timestamp),
                purge_at: row.purge_at.map(Timestamp),
            });
        }
        self.queue_read(
            AuditEvent::new("list_secrets").detail(format!("{} results", items.len())),
        )?;
        Ok(Page { items, next_token })
    }

    /// Changes a secret's description and/or key. Moving to another key re-wraps every
    /// version's data key under the new key's newest version, in the same transaction
    /// (the value ciphertexts are not touched).
    pub fn update_secret(
        &mut self,
        name: &str,
        description: Option<String>,
        key: Option<String>,
    ) -> Result<()> {
        let name = SecretName::parse(name)?;
        if let Some(description) = &description {
            check_description(description)?;
        }
        let event = AuditEvent::new("update_secret").secret(None, name.as_str());
        let vault_id = self.vault_id;
        self.write(event, |tx, keyring, event| {
            let mut secret = live_secret(tx, &keyring.integrity(), &name)?;
            event.secret_id = Some(secret.id);
            if let Some(description) = description {
                secret.description = description;
            }
            let mut moved_to = None;
            if let Some(reference) = key {
                let key = resolve_key(tx, &keyring.integrity(), &reference)?;
                usable(&key)?;
                secret.key_id = key.id;
                event.key_id = Some(key.id);
                moved_to = Some(key.id);
            }
            let now = Timestamp::now().millis();
            secret.changed_at = now;
            let seq = record_change(tx, now, "secret", secret.id.as_bytes(), "update")?;
            if let Some(key_id) = moved_to {
                let count =
                    super::rewrap::rewrap_secret(tx, keyring, vault_id, secret.id, key_id, seq)?;
                event.detail = format!("rewrapped={count}");
            }
            rows::update_secret(tx, &secret, seq)?;
            Ok(())
        })
    }

    /// Moves (or removes) a staging label, as `UpdateSecretVersionStage` does: a label
    /// that is on another version moves only if that version is named as `remove_from`.
    pub fn update_version_stage(
        &mut self,
        name: &str,
        label: &str,
        move_to: Option<Uuid>,
        remove_from: Option<Uuid>,
    ) -> Result<()> {
        let name = SecretName::parse(name)?;
        let label = StagingLabel::parse(label)?;
        if move_to.is_none() && remove_from.is_none() {
            return Err(Error::invalid(
                "label change",
                "name a version to move the label to, or one to remove it from",
            ));
        }
        let event = AuditEvent::new("update_version_stage")
            .secret(None, name.as_str())
            .detail(format!("label={label}"));
        self.write(event, |tx, keyring, event| {
            let mut secret = live_secret(tx, &keyring.integrity(), &name)?;
            event.secret_id = Some(secret.id);
            let holder = rows::version_by_label(tx, secret.id, label.as_str())?.map(|v| v.id);
            if let Some(from) = remove_from {
                if rows::version_by_id(tx, secret.id, from)?.is_none() {
                    return Err(Error::VersionNotFound {
                        name: name.to_string(),
                        version_id: from,
                    });
                }
                if holder != Some(from) {
                    return Err(Error::LabelNotOnVersion {
                        name: name.to_string(),
                        label: label.to_string(),
                        version_id: from,
                    });
                }
            }
            match move_to {
                Some(to) => {
                    if rows::version_by_id(tx, secret.id, to)?.is_none() {
                        return Err(Error::VersionNotFound {
                            name: name.to_string(),
                            version_id: to,
                        });
                    }
                    if let Some(current) = holder {
                        if current != to && remove_from != Some(current) {
                            return Err(Error::LabelOnOtherVersion {
                                name: name.to_string(),
                                label: label.to_string(),
                                current,
                            });
                        }
                    }
                    event.version_id = Some(to);
                    move_label(tx, secret.id, &label, to)?;
                }
                None => {
                    if label.is_current() {
                        return Err(Error::CurrentCannotBeRemoved);
                    }
                    rows::remove_label(tx, secret.id, label.as_str())?;
                }
            }
            let now = Timestamp::now().millis();
            secret.changed_at = now;
            let seq = record_change(tx, now, "secret", secret.id.as_bytes(), "labels")?;
            rows::prune_versions(tx, secret.id, VERSIONS_KEPT)?;
            rows::update_secret(tx, &secret, seq)?;
            Ok(())
        })
    }

    pub fn tag_secret(&mut self, name: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        for (key, value) in tags {
            check_tag(key, value)?;
        }
        self.change_tags(name, "tag_secret", |tx, id| {
            for (key, value) in tags {
                rows::set_tag(tx, id, key, value)?;
            }
            Ok(())
        })
    }

    pub fn untag_secret(&mut self, name: &str, keys: &[String]) -> Result<()> {
        self.change_tags(name, "untag_secret", |tx, id| {
            for key in keys {
                rows::remove_tag(tx, id, key)?;
            }
            Ok(())
        })
    }

    fn change_tags(
        &mut self,
        name: &str,
        operation: &'static str,
        change: impl FnOnce(&Transaction<'_>, Uuid) -> Result<()>,
    ) -> Result<()> {
        let name = SecretName::parse(name)?;
        let event = AuditEvent::new(operation).secret(None, name.as_str());
        self.write(event, |tx, keyring, event| {
            let mut secret = live_secret(tx, &keyring.integrity(), &name)?;
            event.secret_id = Some(secret.id);
            change(tx, secret.id)?;
            let now = Timestamp::now().millis();
            secret.changed_at = now;
            let seq = record_change(tx, now, "secret", secret.id.as_bytes(), "tags")?;
            rows::update_secret(tx, &secret, seq)?;
            Ok(())
        })
    }

    /// Deletes a secret: recoverably for 7–30 days, or at once with `Deletion::Force`,
    /// which destroys its wrapped data keys.
    pub fn delete_secret(&mut self, name: &str, deletion: Deletion) -> Result<Option<Timestamp>> {
        let name = SecretName::parse(name)?;
        if let Deletion::RecoveryWindow(days) = deletion {
            if !(7..=30).contains(&days) {
                return Err(Error::invalid(
                    "recovery window",
                    format!("{days} days; use 7 to 30 days, or force deletion"),
                ));
            }
        }
        let event = AuditEvent::new("delete_secret").secret(None, name.as_str());
        let deleted = self.write(event, |tx, keyring, event| {
            let mut secret = any_secret(tx, &keyring.integrity(), &name)?;
            event.secret_id = Some(secret.id);
            let now = Timestamp::now();
            match deletion {
                Deletion::Force => {
                    event.detail = "force".to_owned();
                    record_change(tx, now.millis(), "secret", secret.id.as_bytes(), "purge")?;
                    rows::purge_secret(tx, secret.id)?;
                    Ok(None)
                }
                Deletion::RecoveryWindow(days) => {
                    if let Some(purge_at) = secret.purge_at {
                        return Err(Error::SecretDeleted {
                            name: secret.name,
                            purge_at: Timestamp(purge_at),
                        });
                    }
                    let purge_at = now.plus_days(days);
                    event.detail = format!("recovery_window_days={days}");
                    secret.deleted_at = Some(now.millis());
                    secret.purge_at = Some(purge_at.millis());
                    secret.changed_at = now.millis();
                    let seq =
                        record_change(tx, now.millis(), "secret", secret.id.as_bytes(), "delete")?;
                    rows::update_secret(tx, &secret, seq)?;
                    Ok(Some(purge_at))
                }
            }
        })?;
        if deleted.is_none() {
            // A forced deletion destroyed the wrapped data keys: not in the WAL either.
            self.store.checkpoint();
        }
        Ok(deleted)
    }

    /// Cancels a scheduled deletion.
    pub fn restore_secret(&mut self, name: &str) -> Result<()> {
        let name = SecretName::parse(name)?;
        let event = AuditEvent::new("restore_secret").secret(None, name.as_str());
        self.write(event, |tx, keyring, event| {
            let mut secret = any_secret(tx, &keyring.integrity(), &name)?;
            event.secret_id = Some(secret.id);
            if secret.deleted_at.is_none() {
                return Err(Error::SecretNotDeleted { name: secret.name });
            }
            let now = Timestamp::now().millis();
            secret.deleted_at = None;
            secret.purge_at = None;
            secret.changed_at = now;
            let seq = record_change(tx, now, "secret", secret.id.as_bytes(), "restore")?;
            rows::update_secret(tx, &secret, seq)?;
            Ok(())
        })
    }

    /// Row MAC checks, which need the unlocked vault's keys.
    pub(super) fn integrity(&self) -> Result<Integrity> {
        Ok(self.keyring.as_ref().ok_or(Error::Locked)?.integrity())
    }

    pub(super) fn require_unlocked(&self) -> Result<()> {
        if self.keyring.is_some() {
            Ok(())
        } else {
            Err(Error::Locked)
        }
    }
}

fn encode_cursor(changed_at: i64, name: &str) -> String {
    let mut raw = changed_at.to_be_bytes().to_vec();
    raw.extend_from_slice(name.as_bytes());
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(token: &str) -> Result<(i64, String)> {
    let invalid = || {
        Error::invalid(
            "next token",
            "it is not a token this vault returned; start again without it",
        )
    };
    if token.len() % 2 != 0 || token.len() < 16 {
        return Err(invalid());
    }
    let bytes: Vec<u8> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<_, _>>()
        .map_err(|_| invalid())?;
    let (time, name) = bytes.split_at(8);
    let mut time_bytes = [0u8; 8];
    time_bytes.copy_from_slice(time);
    let name = String::from_utf8(name.to_vec()).map_err(|_| invalid())?;
    Ok((i64::from_be_bytes(time_bytes), name))
}
