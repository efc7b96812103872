//! The replica's side of the link.
//!
//! Its only durable state is `applied_upto`: every outbox entry up to that seq has been
//! applied, none above it. The host changes it only through [`ReceiverAction::Commit`], which
//! it must carry out as **one transaction**: apply the entries' payloads in the given order
//! and store the new `applied_upto`, together or not at all. That single rule is what makes
//! delivery exactly-once: after a crash the stored `applied_upto` says precisely which
//! entries are in, so a retransmitted entry at or below it is recognised and skipped, and
//! everything above it is still owed.
//!
//! The receiver is a plain `&mut self` machine rather than a typestate: it has one durable
//! number and a connected/disconnected flag, and every refusal happens before any change.

use std::collections::BTreeMap;

use crate::error::SyncError;
use crate::message::{Batch, Body, Message, WireEntry};

/// Limits for one replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// Most out-of-order entries held in memory while waiting for a missing predecessor;
    /// beyond it they are dropped and come back with the primary's retransmission. Memory
    /// is bounded by this times `MAX_PAYLOAD_BYTES` (16 MiB at the default of 64).
    pub max_pending: usize,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self { max_pending: 64 }
    }
}

/// What the host must do, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReceiverAction {
    /// In one durable transaction: apply each entry's payload in order, and set the stored
    /// `applied_upto` to the value given (the last entry's seq). Only after it commits may
    /// the host perform the actions that follow (the `Ack` claims it is durable).
    Commit {
        entries: Vec<WireEntry>,
        applied_upto: u64,
    },
    /// Send this message to the primary on the current connection.
    Send(Message),
}

#[derive(Debug)]
pub struct Receiver {
    config: ReceiverConfig,
    applied_upto: u64,
    session: Option<u64>,
    /// Whether a batch arrived in this session, i.e. whether the primary has our `Hello`.
    heard: bool,
    /// Entries that arrived ahead of a missing predecessor, keyed by `prev_seq` so the next
    /// one to apply is always `pending[&applied_upto]`.
    pending: BTreeMap<u64, WireEntry>,
}

impl Receiver {
    /// Builds the replica side from its durable `applied_upto` (0 for an empty replica, or
    /// the seq of the snapshot it was seeded from).
    pub fn new(config: ReceiverConfig, applied_upto: u64) -> Self {
        Self {
            config,
            applied_upto,
            session: None,
            heard: false,
            pending: BTreeMap::new(),
        }
    }

    /// Everything up to here is applied (durably, once the last `Commit` is carried out).
    pub fn applied_upto(&self) -> u64 {
        self.applied_upto
    }

    pub fn session(&self) -> Option<u64> {
        self.session
    }

    /// A connection is up: introduce ourselves with what we durably have, which is where the
    /// primary resumes. Buffered entries of an earlier session are dropped; they come again.
    pub fn connect(&mut self, session: u64) -> Vec<ReceiverAction> {
        self.session = Some(session);
        self.heard = false;
        self.pending.clear();
        vec![ReceiverAction::Send(Message::hello(
            session,
            self.applied_upto,
        ))]
    }

    pub fn disconnect(&mut self) {
        self.session = None;
        self.heard = false;
        self.pending.clear();
    }

    /// The host's timer fired without progress. Until the primary has answered, our `Hello`
    /// may have been lost, so resend it; afterwards resend the ack in case that was lost.
    pub fn on_timeout(&self) -> Vec<ReceiverAction> {
        match self.session {
            None => Vec::new(),
            Some(session) if !self.heard => {
                vec![ReceiverAction::Send(Message::hello(
                    session,
                    self.applied_upto,
                ))]
            }
            Some(session) => vec![ReceiverAction::Send(Message::ack(
                session,
                self.applied_upto,
            ))],
        }
    }

    /// Handles one message from the primary. On `Err` nothing changed.
    pub fn receive(&mut self, message: Message) -> Result<Vec<ReceiverAction>, SyncError> {
        message.validate()?;
        let kind = message.kind();
        let Some(session) = self.session else {
            return Err(SyncError::NotConnected { message: kind });
        };
        match message.body {
            Body::Batch(batch) if batch.session == session => Ok(self.on_batch(batch)),
            Body::Batch(batch) => Err(SyncError::WrongSession {
                expected: session,
                got: batch.session,
            }),
            Body::Hello(_) | Body::Ack(_) => Err(SyncError::Unexpected {
                message: kind,
                state: "replica",
            }),
        }
    }

    /// Applies whatever extends the chain from `applied_upto`, buffers what is ahead of a
    /// hole, skips what is already applied, and acks. The ack goes out even when nothing was
    /// new: a retransmission usually means our previous ack was lost.
    fn on_batch(&mut self, batch: Batch) -> Vec<ReceiverAction> {
        self.heard = true;
        let mut commit = Vec::new();
        for entry in batch.entries {
            if entry.seq <= self.applied_upto {
                continue; // already applied: a duplicate or a retransmission
            }
            if entry.prev_seq == self.applied_upto {
                self.applied_upto = entry.seq;
                commit.push(entry);
                while let Some(next) = self.pending.remove(&self.applied_upto) {
                    self.applied_upto = next.seq;
                    commit.push(next);
                }
            } else if self.pending.len() < self.config.max_pending {
                self.pending.entry(entry.prev_seq).or_insert(entry);
            }
        }
        // Anything keyed below the new position can never be next again.
        self.pending = self.pending.split_off(&self.applied_upto);

        let mut actions = Vec::with_capacity(2);
        if !commit.is_empty() {
            actions.push(ReceiverAction::Commit {
                entries: commit,
                applied_upto: self.applied_upto,
            });
        }
        actions.push(ReceiverAction::Send(Message::ack(
            batch.session,
            self.applied_upto,
        )));
        actions
    }
}
