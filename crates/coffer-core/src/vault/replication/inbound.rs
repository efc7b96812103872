//! The replica's side: one `coffer-sync` receiver per primary region, fed by the daemon's
//! listener, and the one transaction that applies a batch with its new position.
//!
//! A daemon holding the vault locked still receives: it checks each payload's signature
//! and address (no key of the vault is needed for that), keeps the entries sealed as
//! they came in the inbox table, and acknowledges them; the next unlock applies them.

use std::collections::HashMap;

use coffer_sync::{Receiver, ReceiverAction, ReceiverConfig, SecretKey, WireEntry};
use rustls_pki_types::CertificateDer;

use super::payload::{self, Applied};
use super::wire::{Answer, NotApplied, Open, Wire, BATCH_PATH, CONTACT_PATH, OPEN_PATH};
use crate::model::Timestamp;
use crate::region::identity::fingerprint_of;
use crate::region::{Fingerprint, PeerRequest};
use crate::store::replication::{self as rows, InboxRow};
use crate::store::StoreError;
use crate::vault::error::{Error, Result};
use crate::vault::{AuditEvent, Vault};

/// The receivers of the primaries currently talking to this vault.
#[derive(Default)]
pub struct Inbound {
    receivers: HashMap<String, Receiver>,
    /// This vault's region and its pinned peers as last read unlocked: what a locked
    /// vault checks callers and addresses against (its own copies are sealed).
    own_region: Option<String>,
    pinned: Vec<(String, Fingerprint)>,
}

fn text(status: u16, message: impl Into<String>) -> (u16, Vec<u8>) {
    (status, message.into().into_bytes())
}

impl Inbound {
    pub fn new() -> Self {
        Inbound::default()
    }

    /// Reads this vault's region and pinned peers from the unlocked vault, for the
    /// times it is locked.
    pub fn remember(&mut self, vault: &mut Vault) -> Result<()> {
        let (region, _) = vault.identity()?;
        self.own_region = Some(region.to_string());
        self.pinned = vault.pinned_peers()?;
        Ok(())
    }

    /// The peers pinned as last remembered.
    pub fn pinned(&self) -> &[(String, Fingerprint)] {
        &self.pinned
    }

    /// Answers one replication request from a peer whose TLS handshake proved
    /// `request.fingerprint`.
    pub fn handle(&mut self, vault: &mut Vault, request: PeerRequest) -> (u16, Vec<u8>) {
        if vault.is_unlocked() {
            // Unlocked: the pins are read fresh, and anything kept while locked goes first.
            if let Err(error) = self.remember(vault).and_then(|()| vault.apply_inbox()) {
                return text(503, error.to_string());
            }
        }
        let Some(own_region) = self.own_region.clone() else {
            return text(
                503,
                "this vault is locked and its daemon never saw it unlocked",
            );
        };
        let region = self
            .pinned
            .iter()
            .find(|(_, fp)| *fp == request.fingerprint)
            .map(|(name, _)| name.clone());
        let Some(region) = region else {
            return text(403, "this fingerprint is not paired here");
        };
        match request.path.as_str() {
            // The daemon's listener has already woken replication to `region`.
            CONTACT_PATH => text(200, format!("region {own_region} heard from {region}")),
            OPEN_PATH => {
                let Ok(open) = serde_json::from_slice::<Open>(&request.body) else {
                    return text(400, "not an open request");
                };
                let applied = match rows::received_upto(vault.store.conn(), &region) {
                    Ok(applied) => applied,
                    Err(error) => return text(503, error.to_string()),
                };
                let mut receiver = Receiver::new(ReceiverConfig::default(), applied as u64);
                let actions = receiver.connect(open.session);
                self.receivers.insert(region, receiver);
                match actions.into_iter().next() {
                    Some(ReceiverAction::Send(hello)) => reply(Answer {
                        message: Wire::from_message(hello),
                        not_applied: Vec::new(),
                    }),
                    _ => text(500, "the receiver did not say hello"),
                }
            }
            BATCH_PATH => {
                let Ok(wire) = serde_json::from_slice::<Wire>(&request.body) else {
                    return text(400, "not a batch");
                };
                let Some(receiver) = self.receivers.get_mut(&region) else {
                    return text(409, "no session: open one first");
                };
                let actions = match receiver.receive(wire.into_message()) {
                    Ok(actions) => actions,
                    Err(error) if error.is_stale() => return text(409, error.to_string()),
                    Err(error) => return text(400, error.to_string()),
                };
                let mut not_applied = Vec::new();
                for action in actions {
                    match action {
                        ReceiverAction::Commit {
                            entries,
                            applied_upto,
                        } => {
                            let done = if vault.is_unlocked() {
                                vault.apply_replicated(&region, &request.ca, entries, applied_upto)
                            } else {
                                vault
                                    .keep_sealed(&region, &own_region, &request.ca, entries)
                                    .map(|()| Vec::new())
                            };
                            match done {
                                Ok(refused) => {
                                    not_applied = refused;
                                    // What waited for a newer team state may apply now.
                                    if vault.is_unlocked() {
                                        let _ = vault.apply_inbox();
                                    }
                                }
                                Err(error) => {
                                    // Nothing was applied: start again from what is stored.
                                    self.receivers.remove(&region);
                                    return text(422, error.to_string());
                                }
                            }
                        }
                        ReceiverAction::Send(message) => {
                            return reply(Answer {
                                message: Wire::from_message(message),
                                not_applied,
                            })
                        }
                    }
                }
                text(500, "the receiver did not acknowledge")
            }
            crate::vault::team::forward::WRITE_PATH => {
                if !vault.is_unlocked() {
                    return text(
                        503,
                        format!("region {own_region}, the folder's primary, is locked; unlock it and write again"),
                    );
                }
                vault.answer_team_write(&region, &request.body)
            }
            crate::vault::team::admin::ADMIN_PATH => {
                if !vault.is_unlocked() {
                    return text(
                        503,
                        format!("region {own_region}, the team's owner, is locked; unlock it and try again"),
                    );
                }
                vault.answer_team_admin(&region, &request.body)
            }
            _ => text(404, "no such replication endpoint"),
        }
    }
}

fn reply(answer: Answer) -> (u16, Vec<u8>) {
    match serde_json::to_vec(&answer) {
        Ok(body) => (200, body),
        Err(_) => text(500, "the answer could not be encoded"),
    }
}

impl Vault {
    /// Applies a batch from primary `region` and records `applied_upto`, in one
    /// transaction: both or neither. Returns the entries that were skipped and why.
    pub fn apply_replicated(
        &mut self,
        region: &str,
        ca: &rustls_pki_types::CertificateDer<'static>,
        entries: Vec<WireEntry>,
        applied_upto: u64,
    ) -> Result<Vec<NotApplied>> {
        self.apply_chain(region, ca, entries, applied_upto, "network")
    }

    pub(super) fn apply_chain(
        &mut self,
        region: &str,
        ca: &CertificateDer<'static>,
        entries: Vec<WireEntry>,
        applied_upto: u64,
        via: &str,
    ) -> Result<Vec<NotApplied>> {
        let (own_region, identity) = self.identity()?;
        let vault_id = self.vault_id;
        let first = entries.first().map_or(0, |e| e.seq);
        let event = AuditEvent::new("replication_apply").detail(format!(
            "from={region} entries={} seq={first}..{applied_upto} via={via}",
            entries.len()
        ));
        let actor = self.actor.clone();
        let refused = self.write(event, |tx, keyring, event| {
            let from = payload::Sender { region, ca };
            let to = payload::Receiving {
                identity: &identity,
                vault_id,
                region: own_region.as_str(),
            };
            let mut updated = Vec::new();
            let mut refused = Vec::new();
            // Team changes are logged in every member's vault, with what changed and who.
            let mut team_events = Vec::new();
            let mut keys = payload::BatchKeys::default();
            for entry in &entries {
                match payload::apply(tx, keyring, &from, &to, &mut keys, entry)? {
                    Applied::Updated {
                        secret_id,
                        name,
                        author,
                    } => updated.push((secret_id, name, author)),
                    Applied::Refused { secret_id, reason } => {
                        refused.push(NotApplied { secret_id, reason })
                    }
                    Applied::Team { note } => team_events.push(
                        AuditEvent::new("team_changed").detail(format!("from={region} {note}")),
                    ),
                }
            }
            rows::set_applied_upto(tx, region, applied_upto as i64)?;
            rows::clear_inbox(tx, region, applied_upto as i64)?;
            let by = |author: &Option<String>| {
                author
                    .as_ref()
                    .map(|a| format!(" author={a}"))
                    .unwrap_or_default()
            };
            if let [(id, name, author)] = &updated[..] {
                event.secret_id = Some(*id);
                event.secret_name = Some(name.clone());
                event.detail.push_str(&by(author));
            } else if updated.len() > 1 {
                // One entry per secret as well, so `coffer audit --secret NAME` shows its
                // updates: in this transaction, not queued as reads (each flush of which
                // would cost a transaction and an fsync of its own).
                let per_secret: Vec<AuditEvent> = updated
                    .iter()
                    .map(|(id, name, author)| {
                        AuditEvent::new("replica_updated")
                            .secret(Some(*id), name)
                            .detail(format!("from={region}{}", by(author)))
                    })
                    .collect();
                crate::vault::audit::append(tx, keyring.audit_key(), &actor, &per_secret)?;
            }
            if !team_events.is_empty() {
                crate::vault::audit::append(tx, keyring.audit_key(), &actor, &team_events)?;
            }
            Ok(refused)
        })?;
        Ok(refused)
    }
}

impl Vault {
    /// A locked vault's half of a commit: checks every payload's signature and address
    /// (so nothing forged is acknowledged), then keeps the entries as they came, in one
    /// transaction. No key of the vault is used; nothing is opened.
    pub fn keep_sealed(
        &mut self,
        region: &str,
        own_region: &str,
        ca: &CertificateDer<'static>,
        entries: Vec<WireEntry>,
    ) -> Result<()> {
        let from = payload::Sender { region, ca };
        for entry in &entries {
            payload::verify(
                &from,
                self.vault_id,
                own_region,
                entry.seq,
                entry.secret.0,
                &entry.payload,
            )?;
        }
        let now = Timestamp::now().millis();
        let tx = self.store.write()?;
        for entry in entries {
            rows::push_inbox(
                &tx,
                &InboxRow {
                    region: region.to_owned(),
                    seq: entry.seq as i64,
                    prev_seq: entry.prev_seq as i64,
                    secret_id: entry.secret.0,
                    payload: entry.payload,
                    sender_cert: ca.to_vec(),
                    received_at: now,
                },
            )?;
        }
        tx.commit().map_err(StoreError::from)?;
        Ok(())
    }

    /// Applies what a locked daemon kept, per primary region in seq order from the
    /// stored position, each payload verified again against the fingerprint pinned now.
    /// Kept entries that can never apply (their sender is no longer the pinned one, a
    /// payload was altered on disk, a hole in the chain) are discarded and audited: the
    /// region's position goes back to what is applied, so the primary's next round
    /// reports the regression instead of the loss passing unseen.
    pub fn apply_inbox(&mut self) -> Result<()> {
        self.require_unlocked()?;
        let regions = rows::inbox_regions(self.store.conn())?;
        if regions.is_empty() {
            return Ok(());
        }
        let pinned = self.pinned_peers()?;
        for region in regions {
            let pin = pinned
                .iter()
                .find(|(name, _)| *name == region)
                .map(|(_, fp)| *fp);
            loop {
                let applied = rows::applied_upto(self.store.conn(), &region)? as u64;
                let kept = rows::inbox(self.store.conn(), &region)?;
                let Some((cert, chain)) = next_chain(applied, kept.clone()) else {
                    if kept.iter().any(|row| row.seq as u64 > applied) {
                        self.discard_inbox(&region, "a kept entry is missing")?;
                    }
                    break;
                };
                let ca = CertificateDer::from(cert);
                if pin.is_none() || fingerprint_of(&ca) != pin {
                    self.discard_inbox(&region, "the sender is no longer the pinned identity")?;
                    break;
                }
                let upto = chain.last().map_or(applied, |e| e.seq);
                match self.apply_chain(&region, &ca, chain, upto, "inbox") {
                    Ok(not_applied) => {
                        for skipped in not_applied {
                            self.queue_read(
                                AuditEvent::new("replica_not_applied")
                                    .detail(format!("from={region} reason={}", skipped.reason)),
                            )?;
                        }
                    }
                    Err(Error::ReplicationRefused { reason, .. }) => {
                        self.discard_inbox(&region, &reason)?;
                        break;
                    }
                    // A new primary's changes, kept until the owner's state names it.
                    Err(error) if error.awaits_team_state() => break,
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(())
    }

    fn discard_inbox(&mut self, region: &str, reason: &str) -> Result<()> {
        let event = AuditEvent::new("replication_inbox_discard")
            .failed("peer_untrusted")
            .detail(format!("from={region} reason={reason}"));
        self.write(event, |tx, _, _| {
            rows::clear_inbox(tx, region, i64::MAX)?;
            Ok(())
        })
    }
}

/// The kept entries that follow `applied` without a hole, all sent with one
/// certificate; `None` when the next one is not there.
fn next_chain(applied: u64, kept: Vec<InboxRow>) -> Option<(Vec<u8>, Vec<WireEntry>)> {
    let mut at = applied;
    let mut cert: Option<Vec<u8>> = None;
    let mut chain = Vec::new();
    for row in kept {
        let (seq, prev_seq) = (row.seq as u64, row.prev_seq as u64);
        if seq <= at {
            continue;
        }
        if prev_seq != at || cert.as_ref().is_some_and(|c| *c != row.sender_cert) {
            break;
        }
        cert.get_or_insert_with(|| row.sender_cert.clone());
        chain.push(WireEntry {
            seq,
            prev_seq,
            secret: SecretKey(row.secret_id),
            payload: row.payload,
        });
        at = seq;
    }
    cert.map(|cert| (cert, chain))
}

impl From<coffer_sync::SyncError> for Error {
    fn from(error: coffer_sync::SyncError) -> Self {
        Error::invalid("replication message", error.to_string())
    }
}
