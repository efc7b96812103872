//! One error type for everything the core can refuse.
//!
//! The core never panics on input: every malformed, hostile or merely late message becomes
//! one of these, and the state that refused it is handed back unchanged (see
//! [`Rejected`](crate::Rejected)), so the host decides whether to log, drop the connection or
//! stop replicating to a peer.

use thiserror::Error;

/// Why the core refused an event or a message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SyncError {
    /// A peer speaking a different protocol version; mixing versions could misread fields.
    #[error("protocol version {got} is not supported (this side speaks {supported})")]
    UnsupportedVersion { got: u16, supported: u16 },

    /// A message left over from an earlier connection. Harmless: the host ignores it.
    #[error("message for session {got}, but the current session is {expected}")]
    WrongSession { expected: u64, got: u64 },

    /// A message arrived while this side has no connection (a late packet). Harmless.
    #[error("{message} arrived while not connected")]
    NotConnected { message: &'static str },

    /// A message that this side never receives in its current state (a replica does not get
    /// `Hello`, a primary does not get `Batch`); the peer is confused or hostile.
    #[error("{message} is not expected by the {state}")]
    Unexpected {
        message: &'static str,
        state: &'static str,
    },

    #[error("batch of {entries} entries exceeds the limit of {max}")]
    BatchTooLarge { entries: usize, max: usize },

    #[error("batch carries {bytes} payload bytes, over the limit of {max}")]
    BatchTooManyBytes { bytes: usize, max: usize },

    #[error("entry {seq} has a {len}-byte payload, over the limit of {max}")]
    PayloadTooLarge { seq: u64, len: usize, max: usize },

    /// Seq 0 means "nothing applied yet" in `applied_upto`, so no entry may carry it.
    #[error("sequence number 0 is reserved for \"nothing applied\"")]
    ZeroSeq,

    /// Seqs must strictly increase, in a batch and in the outbox the host feeds in.
    #[error("sequence numbers must strictly increase: {seq} came after {prev}")]
    SeqNotIncreasing { prev: u64, seq: u64 },

    /// Each entry names its predecessor; inside one batch that must be the entry before it.
    #[error("entry {seq} names predecessor {prev_seq}, expected {expected}")]
    BrokenChain {
        seq: u64,
        prev_seq: u64,
        expected: u64,
    },

    /// The peer acknowledged something this session never sent it.
    #[error("ack of {acked} is beyond the highest seq sent in this session ({sent})")]
    AckBeyondSent { acked: u64, sent: u64 },

    /// The peer named a seq that is not an entry boundary of the outbox; resending from
    /// there would hand it a chain with a hole.
    #[error("peer named seq {seq}, which is not an entry of the outbox")]
    UnknownSeq { seq: u64 },

    /// The peer reports less than it already acknowledged: its durable state went back
    /// (restored from a backup?). Resuming would re-apply entries, so the host must intervene.
    #[error("peer reports applied_upto {claimed}, below the {acked} it already acknowledged")]
    PeerRegressed { acked: u64, claimed: u64 },

    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
}

impl SyncError {
    /// True for messages that are merely late (an earlier connection's, or arriving with no
    /// connection): the host drops them quietly. Any other error means the peer or the host
    /// broke the protocol and deserves attention.
    pub fn is_stale(&self) -> bool {
        matches!(
            self,
            SyncError::WrongSession { .. } | SyncError::NotConnected { .. }
        )
    }
}
