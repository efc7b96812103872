//! The replica's side: one `coffer-sync` receiver per primary region, fed by the daemon's
//! listener, and the one transaction that applies a batch with its new position.

use std::collections::HashMap;

use coffer_sync::{Receiver, ReceiverAction, ReceiverConfig, WireEntry};

use super::payload::{self, Applied};
use super::wire::{Answer, NotApplied, Open, Wire, BATCH_PATH, OPEN_PATH};
use crate::region::PeerRequest;
use crate::store::replication as rows;
use crate::vault::error::{Error, Result};
use crate::vault::{AuditEvent, Vault};

/// The receivers of the primaries currently talking to this vault.
#[derive(Default)]
pub struct Inbound {
    receivers: HashMap<String, Receiver>,
}

fn text(status: u16, message: impl Into<String>) -> (u16, Vec<u8>) {
    (status, message.into().into_bytes())
}

impl Inbound {
    pub fn new() -> Self {
        Inbound::default()
    }

    /// Answers one replication request from a peer whose TLS handshake proved
    /// `request.fingerprint`.
    pub fn handle(&mut self, vault: &mut Vault, request: PeerRequest) -> (u16, Vec<u8>) {
        let region = match vault.pinned_peers() {
            Ok(peers) => peers
                .into_iter()
                .find(|(_, fp)| *fp == request.fingerprint)
                .map(|(name, _)| name),
            Err(error) => return text(503, error.to_string()),
        };
        let Some(region) = region else {
            return text(403, "this fingerprint is not paired here");
        };
        match request.path.as_str() {
            OPEN_PATH => {
                let Ok(open) = serde_json::from_slice::<Open>(&request.body) else {
                    return text(400, "not an open request");
                };
                let applied = match rows::applied_upto(vault.store.conn(), &region) {
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
                            match vault.apply_replicated(
                                &region,
                                &request.ca,
                                entries,
                                applied_upto,
                            ) {
                                Ok(refused) => not_applied = refused,
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
        let (own_region, identity) = self.identity()?;
        let vault_id = self.vault_id;
        let first = entries.first().map_or(0, |e| e.seq);
        let event = AuditEvent::new("replication_apply").detail(format!(
            "from={region} entries={} seq={first}..{applied_upto}",
            entries.len()
        ));
        let (updated, refused) = self.write(event, |tx, keyring, event| {
            let from = payload::Sender { region, ca };
            let to = payload::Receiving {
                identity: &identity,
                vault_id,
                region: own_region.as_str(),
            };
            let mut updated = Vec::new();
            let mut refused = Vec::new();
            for entry in &entries {
                match payload::apply(
                    tx,
                    keyring,
                    &from,
                    &to,
                    entry.seq,
                    entry.secret.0,
                    &entry.payload,
                )? {
                    Applied::Updated { secret_id, name } => updated.push((secret_id, name)),
                    Applied::Refused { secret_id, reason } => {
                        refused.push(NotApplied { secret_id, reason })
                    }
                }
            }
            rows::set_applied_upto(tx, region, applied_upto as i64)?;
            if let [(id, name)] = &updated[..] {
                event.secret_id = Some(*id);
                event.secret_name = Some(name.clone());
            }
            Ok((updated, refused))
        })?;
        // One entry per secret as well, so `coffer audit --secret NAME` shows its updates.
        if updated.len() > 1 {
            for (id, name) in updated {
                self.queue_read(
                    AuditEvent::new("replica_updated")
                        .secret(Some(id), &name)
                        .detail(format!("from={region}")),
                )?;
            }
        }
        Ok(refused)
    }
}

impl From<coffer_sync::SyncError> for Error {
    fn from(error: coffer_sync::SyncError) -> Self {
        Error::invalid("replication message", error.to_string())
    }
}
