//! What travels between primary and replica, and the limits checked on receipt.
//!
//! Messages are plain serde types so the host picks the encoding and the transport. Sizes
//! are bounded twice: the transport must cap a frame's byte length *before* decoding (serde
//! has already allocated by the time [`Message::validate`] runs), and `validate` then
//! enforces the protocol's own limits so a peer cannot make the other side buffer or apply
//! more than it agreed to.

use serde::{Deserialize, Serialize};

use crate::error::SyncError;

/// The only version this crate speaks; carried in every message.
pub const PROTOCOL_VERSION: u16 = 1;
/// Most entries one `Batch` may carry.
pub const MAX_BATCH_ENTRIES: usize = 512;
/// Largest single payload (a sealed secret value plus its signature fits well within it).
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// Most payload bytes in one `Batch`, summed over its entries.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// An opaque secret identifier; the core only compares it, the host gives it meaning.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct SecretKey(pub [u8; 16]);

/// A change as the host recorded it in its outbox, in the same transaction as the write.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OutboxEntry {
    /// Strictly increasing per primary; gaps are allowed (rolled-back transactions).
    pub seq: u64,
    pub secret: SecretKey,
    /// Already signed and sealed by the host; the core never looks inside.
    pub payload: Vec<u8>,
}

/// An outbox entry on the wire, linked to its predecessor.
///
/// Because seqs may have gaps, a replica that holds `applied_upto = 7` and receives seq 9
/// cannot tell whether 8 exists. `prev_seq` answers that: the entry applies exactly when
/// `prev_seq == applied_upto`, otherwise something is missing and the replica waits.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct WireEntry {
    pub seq: u64,
    /// The seq of the entry before this one in the primary's outbox (0 before the first).
    pub prev_seq: u64,
    pub secret: SecretKey,
    pub payload: Vec<u8>,
}

/// A versioned envelope around one protocol message.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Message {
    pub version: u16,
    pub body: Body,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Body {
    Hello(Hello),
    Batch(Batch),
    Ack(Ack),
}

/// Replica → primary, first in every session: "I have durably applied up to here".
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Hello {
    pub session: u64,
    pub applied_upto: u64,
}

/// Primary → replica: consecutive outbox entries, each chained to the one before.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Batch {
    pub session: u64,
    pub entries: Vec<WireEntry>,
}

/// Replica → primary: cumulative; everything up to `applied_upto` is durably applied.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Ack {
    pub session: u64,
    pub applied_upto: u64,
}

impl Message {
    pub fn hello(session: u64, applied_upto: u64) -> Self {
        Self::new(Body::Hello(Hello {
            session,
            applied_upto,
        }))
    }

    pub fn batch(session: u64, entries: Vec<WireEntry>) -> Self {
        Self::new(Body::Batch(Batch { session, entries }))
    }

    pub fn ack(session: u64, applied_upto: u64) -> Self {
        Self::new(Body::Ack(Ack {
            session,
            applied_upto,
        }))
    }

    fn new(body: Body) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            body,
        }
    }

    /// The session the message belongs to.
    pub fn session(&self) -> u64 {
        match &self.body {
            Body::Hello(h) => h.session,
            Body::Batch(b) => b.session,
            Body::Ack(a) => a.session,
        }
    }

    /// A short name for error messages and logs.
    pub fn kind(&self) -> &'static str {
        match &self.body {
            Body::Hello(_) => "Hello",
            Body::Batch(_) => "Batch",
            Body::Ack(_) => "Ack",
        }
    }

    /// Checks what can be checked without state: version, sizes, and that a batch is one
    /// unbroken chain of strictly increasing seqs. Both sides call it on every message they
    /// receive before acting on it, so the state machines only ever see well-formed input.
    pub fn validate(&self) -> Result<(), SyncError> {
        if self.version != PROTOCOL_VERSION {
            return Err(SyncError::UnsupportedVersion {
                got: self.version,
                supported: PROTOCOL_VERSION,
            });
        }
        match &self.body {
            Body::Hello(_) | Body::Ack(_) => Ok(()),
            Body::Batch(b) => validate_entries(&b.entries),
        }
    }
}

fn validate_entries(entries: &[WireEntry]) -> Result<(), SyncError> {
    if entries.len() > MAX_BATCH_ENTRIES {
        return Err(SyncError::BatchTooLarge {
            entries: entries.len(),
            max: MAX_BATCH_ENTRIES,
        });
    }
    let mut bytes = 0usize;
    let mut previous: Option<u64> = None;
    for e in entries {
        if e.seq == 0 {
            return Err(SyncError::ZeroSeq);
        }
        if e.payload.len() > MAX_PAYLOAD_BYTES {
            return Err(SyncError::PayloadTooLarge {
                seq: e.seq,
                len: e.payload.len(),
                max: MAX_PAYLOAD_BYTES,
            });
        }
        bytes = bytes.saturating_add(e.payload.len());
        if bytes > MAX_BATCH_BYTES {
            return Err(SyncError::BatchTooManyBytes {
                bytes,
                max: MAX_BATCH_BYTES,
            });
        }
        match previous {
            Some(prev) if e.seq <= prev => {
                return Err(SyncError::SeqNotIncreasing { prev, seq: e.seq });
            }
            Some(prev) if e.prev_seq != prev => {
                return Err(SyncError::BrokenChain {
                    seq: e.seq,
                    prev_seq: e.prev_seq,
                    expected: prev,
                });
            }
            None if e.prev_seq >= e.seq => {
                return Err(SyncError::SeqNotIncreasing {
                    prev: e.prev_seq,
                    seq: e.seq,
                });
            }
            _ => {}
        }
        previous = Some(e.seq);
    }
    Ok(())
}
