//! The replication core of Coffer's replica regions: ordered, exactly-once delivery of a
//! primary's outbox entries to its replicas, as a sans-I/O state machine.
//!
//! Nothing in this crate touches a socket, a clock, a random number generator or a file.
//! The host (the engine) feeds in events — a connection came up with this session id, a
//! message arrived, the outbox got an entry, a timer fired — and gets back actions to carry
//! out — send this message, durably record this number, apply these entries in one
//! transaction. That keeps every interleaving of crashes and network faults reproducible in
//! a deterministic simulation (`tests/simulation.rs`), and keeps the protocol's correctness
//! separate from transport and storage. The protocol is described in `docs/replication.md`.
//!
//! - Primary, one per peer: [`Sender`] (`Idle` → `AwaitingHello` → `Streaming`).
//! - Replica: [`Receiver`].

mod error;
mod message;
mod outbox;
mod receiver;
mod sender;

pub use error::SyncError;
pub use message::{
    Ack, Batch, Body, Hello, Message, OutboxEntry, SecretKey, WireEntry, MAX_BATCH_BYTES,
    MAX_BATCH_ENTRIES, MAX_PAYLOAD_BYTES, PROTOCOL_VERSION,
};
pub use receiver::{Receiver, ReceiverAction, ReceiverConfig};
pub use sender::{AwaitingHello, Idle, Sender, SenderAction, SenderConfig, SenderEvent, Streaming};

/// A refused event: the error, and the state that refused it, unchanged. Handing the state
/// back lets the host carry on after a bad or stale message instead of losing the link.
#[derive(Debug)]
pub struct Rejected<S> {
    pub state: S,
    pub error: SyncError,
}

impl<S> Rejected<S> {
    /// Re-wraps the state, e.g. a typed state into the [`Sender`] enum.
    pub fn map<T>(self, f: impl FnOnce(S) -> T) -> Rejected<T> {
        Rejected {
            state: f(self.state),
            error: self.error,
        }
    }
}

/// The result of an event on a state that stays the same type: the next state and the
/// actions to perform, or the unchanged state and why it refused.
pub type Step<S, A> = Result<(S, Vec<A>), Rejected<S>>;
