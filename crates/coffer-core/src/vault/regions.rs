//! This vault as a region: its name, its peer identity, and the peers it is paired with.
//!
//! The region name and every pairing (name, address, pinned fingerprint) carry a MAC
//! under the audit key, and the identity's private halves are sealed under a key derived
//! from it: someone who can write the file can break pairing, not redirect it.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::{Error, Result};
use super::{AuditEvent, Vault};
use crate::model::Timestamp;
use crate::region::transport::{self, Caller, Target};
use crate::region::{Fingerprint, Identity, PeerUrl, RegionError, RegionName};
use crate::store::{meta, peers as peer_rows};

/// What `coffer region identity` shows.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RegionIdentity {
    pub region: String,
    pub fingerprint: String,
    pub vault_id: Uuid,
}

/// A paired peer and what the last contact with it found.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub name: String,
    pub url: String,
    pub fingerprint: String,
    pub added_at: Timestamp,
    pub last_contact: Option<Timestamp>,
    /// The TLS key exchange negotiated at the last contact.
    pub key_exchange: Option<String>,
    /// Why the last attempt to reach it failed, if it did.
    pub last_error: Option<String>,
    /// Replicated changes it has not acknowledged yet.
    #[serde(default)]
    pub backlog: u64,
}

/// What a successful contact with a peer found.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PeerContact {
    pub name: String,
    pub url: String,
    pub fingerprint: String,
    pub vault_id: Uuid,
    pub protocol: String,
    pub key_exchange: String,
}

const IDENTITY_KEY_PURPOSE: &[u8] = b"coffer.region-identity-key.v1";

fn peer_info(row: peer_rows::PeerRow) -> PeerInfo {
    PeerInfo {
        fingerprint: Fingerprint::from_bytes(&row.fingerprint)
            .map(|fp| fp.to_string())
            .unwrap_or_default(),
        name: row.name,
        url: row.url,
        added_at: Timestamp(row.added_at),
        last_contact: row.last_contact.map(Timestamp),
        key_exchange: row.key_exchange,
        last_error: row.last_error,
        backlog: 0,
    }
}

impl Vault {
    /// This vault's region name and fingerprint; the identity is made at first use.
    pub fn region_identity(&mut self) -> Result<RegionIdentity> {
        let (region, identity) = self.identity()?;
        Ok(RegionIdentity {
            region: region.to_string(),
            fingerprint: identity.fingerprint()?.to_string(),
            vault_id: self.vault_id,
        })
    }

    /// The region name and the unsealed identity, making both at first use.
    pub fn identity(&mut self) -> Result<(RegionName, Identity)> {
        self.require_unlocked()?;
        let keyring = self.keyring.as_ref().ok_or(Error::Locked)?;
        let integrity = keyring.integrity();
        let key = keyring.audit_key().derive(IDENTITY_KEY_PURPOSE);
        let vault_id = self.vault_id;
        let conn = self.store.conn();
        let name = integrity.region_name(conn)?;
        let stored = meta::get(conn, meta::IDENTITY)?;
        match (name, stored) {
            (Some(name), Some(stored)) => Ok((
                RegionName::parse(&name)?,
                Identity::open(&stored, &key, vault_id)?,
            )),
            // A name without an identity: the identity row was deleted.
            (Some(_), None) => Err(RegionError::IdentityTampered.into()),
            (None, Some(_)) => Err(RegionError::RegionNameTampered.into()),
            (None, None) => {
                let region = RegionName::parse(crate::region::DEFAULT_REGION)?;
                let identity = Identity::generate()?;
                let sealed = identity.seal(&key, vault_id);
                let fingerprint = identity.fingerprint()?;
                self.write(
                    AuditEvent::new("region_identity_create")
                        .detail(format!("region={region} fingerprint={fingerprint}")),
                    |tx, keyring, _| {
                        // Another process may have made it meanwhile: keep the first.
                        if meta::get(tx, meta::IDENTITY)?.is_none() {
                            meta::set(tx, meta::IDENTITY, &sealed)?;
                            keyring.integrity().set_region_name(tx, region.as_str())?;
                        }
                        Ok(())
                    },
                )?;
                self.identity()
            }
        }
    }

    /// Renames this vault's region; refused while peers know it by its name.
    pub fn set_region_name(&mut self, name: &str) -> Result<RegionIdentity> {
        let region = RegionName::parse(name)?;
        self.identity()?;
        self.write(
            AuditEvent::new("region_rename").detail(format!("region={region}")),
            |tx, keyring, _| {
                let count = peer_rows::count(tx)?;
                if count > 0 {
                    return Err(RegionError::NameInUse { count }.into());
                }
                keyring.integrity().set_region_name(tx, region.as_str())
            },
        )?;
        self.region_identity()
    }

    /// Every paired peer, each checked against its MAC.
    pub fn peers(&mut self) -> Result<Vec<PeerInfo>> {
        let mut peers: Vec<PeerInfo> = self.checked_peers()?.into_iter().map(peer_info).collect();
        for peer in &mut peers {
            peer.backlog = crate::store::replication::backlog_len(self.store.conn(), &peer.name)?;
        }
        Ok(peers)
    }

    fn checked_peers(&mut self) -> Result<Vec<peer_rows::PeerRow>> {
        self.require_unlocked()?;
        let integrity = self.keyring.as_ref().ok_or(Error::Locked)?.integrity();
        let rows = peer_rows::all(self.store.conn())?;
        for row in &rows {
            integrity.check_peer(row)?;
        }
        Ok(rows)
    }

    /// The pinned fingerprints, for a listener deciding whom to let in.
    pub fn pinned_peers(&mut self) -> Result<Vec<(String, Fingerprint)>> {
        Ok(self
            .checked_peers()?
            .into_iter()
            .filter_map(|row| Fingerprint::from_bytes(&row.fingerprint).map(|fp| (row.name, fp)))
            .collect())
    }

    /// Pairs a peer: its region name, where its daemon listens, and its fingerprint as
    /// read from `coffer region identity` on that machine.
    pub fn add_peer(&mut self, name: &str, url: &str, fingerprint: &str) -> Result<PeerInfo> {
        let region = RegionName::parse(name)?;
        let url = PeerUrl::parse(url)?;
        let fingerprint = Fingerprint::parse(fingerprint)?;
        let (own_region, identity) = self.identity()?;
        if region == own_region {
            return Err(RegionError::OwnRegion {
                name: region.to_string(),
            }
            .into());
        }
        if fingerprint == identity.fingerprint()? {
            return Err(RegionError::OwnFingerprint { fingerprint }.into());
        }
        self.write(
            AuditEvent::new("peer_add").detail(format!(
                "region={region} url={url} fingerprint={fingerprint}"
            )),
            |tx, keyring, _| {
                let integrity = keyring.integrity();
                if peer_rows::by_name(tx, region.as_str())?.is_some() {
                    return Err(RegionError::PeerExists {
                        name: region.to_string(),
                    }
                    .into());
                }
                for row in peer_rows::all(tx)? {
                    if row.fingerprint == fingerprint.as_bytes() {
                        return Err(RegionError::FingerprintPaired {
                            name: row.name,
                            fingerprint,
                        }
                        .into());
                    }
                }
                pin_peer(tx, &integrity, region.as_str(), &url, &fingerprint)
            },
        )?;
        self.peer(region.as_str())
    }

    fn peer(&mut self, name: &str) -> Result<PeerInfo> {
        self.peer_row(name).map(peer_info)
    }

    pub(crate) fn peer_row(&mut self, name: &str) -> Result<peer_rows::PeerRow> {
        self.checked_peers()?
            .into_iter()
            .find(|row| row.name == name)
            .ok_or_else(|| {
                RegionError::UnknownPeer {
                    name: name.to_owned(),
                }
                .into()
            })
    }

    /// Unpairs a peer: from now on it is neither contacted nor let in.
    pub fn remove_peer(&mut self, name: &str) -> Result<()> {
        self.require_unlocked()?;
        self.write(
            AuditEvent::new("peer_remove").detail(format!("region={name}")),
            |tx, _, _| {
                if peer_rows::delete(tx, name)? {
                    super::replication::region_unpaired(tx, name)
                } else {
                    Err(RegionError::UnknownPeer {
                        name: name.to_owned(),
                    }
                    .into())
                }
            },
        )
    }

    /// Contacts a paired peer over pinned TLS and exchanges signed hellos; records when,
    /// and which key exchange was negotiated (or why it failed).
    ///
    /// The peer is also told of the contact on its replication endpoint, so that its
    /// daemon retries this vault at once (a peer that `coffer team join` has just paired
    /// would otherwise wait out the backoff its refusals caused, up to a minute).
    ///
    /// The network exchange runs with the vault borrowed: bounded by the transport's
    /// timeouts (5 s to connect, 15 s in all).
    pub fn contact_peer(&mut self, name: &str) -> Result<PeerContact> {
        let peer = self.peer_row(name)?;
        let (region, identity) = self.identity()?;
        let url = PeerUrl::parse(&peer.url)?;
        let pinned = Fingerprint::from_bytes(&peer.fingerprint).ok_or_else(|| {
            RegionError::PeerTampered {
                name: name.to_owned(),
            }
        })?;
        let hello = identity.hello(&region, self.vault_id)?;
        let (config, verifier) = crate::region::tls::client_config(&identity, pinned)?;
        let outcome = transport::connect(
            Caller {
                config,
                verifier,
                hello: &hello,
                fingerprint: identity.fingerprint()?,
            },
            Target {
                name,
                url: &url,
                pinned,
            },
        )
        .map(|mut link| {
            // Best effort: the hello above is the contact; a peer without this endpoint
            // (an older version) answers 404 and is simply not woken.
            let _ = link.exchange(crate::vault::replication::CONTACT_PATH, b"{}".to_vec());
            link.contact.clone()
        });
        let now = Timestamp::now().millis();
        let tx = self.store.write()?;
        match &outcome {
            Ok(contact) => {
                peer_rows::record_contact(&tx, name, Some(now), Some(&contact.key_exchange), None)?
            }
            Err(error) => {
                peer_rows::record_contact(&tx, name, None, None, Some(&error.to_string()))?
            }
        }
        tx.commit().map_err(crate::store::StoreError::from)?;
        let contact = outcome?;
        Ok(PeerContact {
            name: name.to_owned(),
            url: url.to_string(),
            fingerprint: contact.fingerprint.to_string(),
            vault_id: contact.hello.vault_id,
            protocol: contact.protocol,
            key_exchange: contact.key_exchange,
        })
    }
}

/// Pins a peer (its row under the vault's MAC) and starts replication with it afresh, in
/// the caller's transaction: `coffer region add`, and a team's primary pairing the
/// members the owner vouched for. The caller has checked the name and fingerprint are
/// free.
pub(super) fn pin_peer(
    tx: &rusqlite::Transaction<'_>,
    integrity: &super::integrity::Integrity,
    region: &str,
    url: &PeerUrl,
    fingerprint: &Fingerprint,
) -> Result<()> {
    peer_rows::insert(
        tx,
        &peer_rows::PeerRow {
            name: region.to_owned(),
            url: url.to_string(),
            fingerprint: fingerprint.as_bytes().to_vec(),
            added_at: Timestamp::now().millis(),
            last_contact: None,
            key_exchange: None,
            last_error: None,
            mac: integrity
                .peer_tag(region, url.as_str(), fingerprint.as_bytes())
                .to_vec(),
        },
    )?;
    super::replication::region_paired(tx, region)
}
