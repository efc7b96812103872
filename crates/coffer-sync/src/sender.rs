//! The primary's side of one replication link, as a typestate machine.
//!
//! One [`Sender`] per peer. Its only durable state is `acked`, the highest seq the peer has
//! confirmed as durably applied; the host persists it when told ([`SenderAction::PersistAcked`])
//! and may then prune outbox entries at or below the smallest `acked` across peers. Everything
//! else (the in-memory copy of the unacknowledged outbox, the session, what is in flight) is
//! volatile and rebuilt from the outbox after a restart with [`Idle::new`].
//!
//! Each state is its own type and every event consumes it, so a host cannot, say, stream
//! before the peer has said where it stands. On a refused event the state comes back
//! unchanged inside [`Rejected`].

use std::collections::VecDeque;

use crate::error::SyncError;
use crate::message::{
    Ack, Body, Hello, Message, OutboxEntry, MAX_BATCH_BYTES, MAX_BATCH_ENTRIES, MAX_PAYLOAD_BYTES,
};
use crate::outbox::Outbox;
use crate::{Rejected, Step};

/// Flow-control limits for one link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderConfig {
    /// Most entries sent but not yet acknowledged; bounds what a slow or silent peer costs
    /// the network and what a retransmission resends.
    pub window: usize,
    /// Most entries per `Batch` (at most [`MAX_BATCH_ENTRIES`]).
    pub max_batch_entries: usize,
    /// Most payload bytes per `Batch` (between [`MAX_PAYLOAD_BYTES`], so any single entry fits,
    /// and [`MAX_BATCH_BYTES`]).
    pub max_batch_bytes: usize,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            window: 256,
            max_batch_entries: 64,
            max_batch_bytes: 1024 * 1024,
        }
    }
}

impl SenderConfig {
    fn validate(&self) -> Result<(), SyncError> {
        if self.window == 0 {
            return Err(SyncError::InvalidConfig("window must be at least 1"));
        }
        if self.max_batch_entries == 0 || self.max_batch_entries > MAX_BATCH_ENTRIES {
            return Err(SyncError::InvalidConfig(
                "max_batch_entries must be between 1 and MAX_BATCH_ENTRIES",
            ));
        }
        if self.max_batch_bytes < MAX_PAYLOAD_BYTES || self.max_batch_bytes > MAX_BATCH_BYTES {
            return Err(SyncError::InvalidConfig(
                "max_batch_bytes must be between MAX_PAYLOAD_BYTES and MAX_BATCH_BYTES",
            ));
        }
        Ok(())
    }
}

/// What the host must do, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SenderAction {
    /// Send this message to the peer on the current connection.
    Send(Message),
    /// Durably record that the peer has applied everything up to this seq. Afterwards the
    /// host may prune outbox entries at or below the minimum of all peers' acked values.
    PersistAcked(u64),
}

/// Everything that can happen to a link, for hosts that prefer one entry point
/// ([`Sender::handle`]) to the typed methods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SenderEvent {
    /// A connection to the peer is up; `session` is the host's id for it, known to both ends.
    Connected { session: u64 },
    /// The connection is gone.
    Disconnected,
    /// A message from the peer.
    Received(Message),
    /// The host committed a new outbox entry.
    Written(OutboxEntry),
    /// The host's retransmission timer fired (the core never reads a clock).
    Timeout,
}

/// No connection. Writes accumulate until the peer connects.
#[derive(Debug)]
pub struct Idle {
    outbox: Box<Outbox>,
}

/// Connected; waiting for the peer's `Hello` to learn where it stands.
#[derive(Debug)]
pub struct AwaitingHello {
    outbox: Box<Outbox>,
    session: u64,
}

/// Streaming entries to the peer within the window.
#[derive(Debug)]
pub struct Streaming {
    outbox: Box<Outbox>,
    session: u64,
    /// Entries up to here have been sent in the current pass (reset by a retransmission).
    sent_upto: u64,
    /// Highest seq sent at all in this session: an ack above it is a lie.
    high_water: u64,
}

impl Idle {
    /// Builds a link from durable state: the peer's persisted `acked` and the outbox entries
    /// above it, in seq order (the host reads them from its outbox table). A new peer starts
    /// from the seq of the snapshot it was seeded with.
    pub fn new(
        config: SenderConfig,
        acked: u64,
        backlog: impl IntoIterator<Item = OutboxEntry>,
    ) -> Result<Self, SyncError> {
        config.validate()?;
        // Boxed so that states (and the `Rejected` that carries one back) stay small to move.
        let mut outbox = Box::new(Outbox {
            config,
            acked,
            entries: VecDeque::new(),
        });
        for entry in backlog {
            outbox.push(entry)?;
        }
        Ok(Self { outbox })
    }

    pub fn connect(self, session: u64) -> AwaitingHello {
        AwaitingHello {
            outbox: self.outbox,
            session,
        }
    }

    pub fn write(mut self, entry: OutboxEntry) -> Result<Self, Rejected<Self>> {
        match self.outbox.push(entry) {
            Ok(()) => Ok(self),
            Err(error) => Err(Rejected { state: self, error }),
        }
    }
}

impl AwaitingHello {
    /// The peer said what it has durably applied: record it as acknowledged and stream what
    /// follows. This is the whole of reconnection: nothing else needs reconciling, because
    /// the peer's `applied_upto` says exactly which entries it has.
    pub fn on_hello(
        mut self,
        hello: Hello,
    ) -> Result<(Streaming, Vec<SenderAction>), Rejected<AwaitingHello>> {
        if let Err(error) = self.check_hello(&hello) {
            return Err(Rejected { state: self, error });
        }
        let mut actions = Vec::new();
        if self.outbox.advance(hello.applied_upto) {
            actions.push(SenderAction::PersistAcked(hello.applied_upto));
        }
        let mut next = Streaming {
            outbox: self.outbox,
            session: self.session,
            sent_upto: hello.applied_upto,
            high_water: hello.applied_upto,
        };
        actions.extend(next.fill_window());
        Ok((next, actions))
    }

    fn check_hello(&self, hello: &Hello) -> Result<(), SyncError> {
        if hello.session != self.session {
            return Err(SyncError::WrongSession {
                expected: self.session,
                got: hello.session,
            });
        }
        if hello.applied_upto < self.outbox.acked {
            return Err(SyncError::PeerRegressed {
                acked: self.outbox.acked,
                claimed: hello.applied_upto,
            });
        }
        if !self.outbox.is_boundary(hello.applied_upto) {
            return Err(SyncError::UnknownSeq {
                seq: hello.applied_upto,
            });
        }
        Ok(())
    }

    pub fn write(mut self, entry: OutboxEntry) -> Result<Self, Rejected<Self>> {
        match self.outbox.push(entry) {
            Ok(()) => Ok(self),
            Err(error) => Err(Rejected { state: self, error }),
        }
    }

    pub fn disconnect(self) -> Idle {
        Idle {
            outbox: self.outbox,
        }
    }

    pub fn session(&self) -> u64 {
        self.session
    }
}

impl Streaming {
    /// Sends what the window allows beyond `sent_upto`.
    fn fill_window(&mut self) -> Vec<SenderAction> {
        let from = self.outbox.count_upto(self.sent_upto);
        let to = self.outbox.entries.len().min(self.outbox.config.window);
        if from >= to {
            return Vec::new();
        }
        let actions = self.outbox.batches(self.session, from, to);
        if let Some(last) = self.outbox.entries.get(to - 1) {
            self.sent_upto = last.seq;
            self.high_water = self.high_water.max(last.seq);
        }
        actions
    }

    /// A cumulative ack: prune, persist, and open the window further. An ack at or below
    /// what is already acked is a duplicate or a reordered older one and changes nothing.
    pub fn on_ack(mut self, ack: Ack) -> Step<Self, SenderAction> {
        if let Err(error) = self.check_ack(ack.session, ack.applied_upto) {
            return Err(Rejected { state: self, error });
        }
        let mut actions = Vec::new();
        if self.outbox.advance(ack.applied_upto) {
            actions.push(SenderAction::PersistAcked(ack.applied_upto));
            self.sent_upto = self.sent_upto.max(ack.applied_upto);
            actions.extend(self.fill_window());
        }
        Ok((self, actions))
    }

    /// A repeated `Hello` (the network duplicated it, or the peer's timer resent it before
    /// our first batch arrived) carries the same kind of durable claim as an ack.
    pub fn on_hello(self, hello: Hello) -> Step<Self, SenderAction> {
        self.on_ack(Ack {
            session: hello.session,
            applied_upto: hello.applied_upto,
        })
    }

    fn check_ack(&self, session: u64, upto: u64) -> Result<(), SyncError> {
        if session != self.session {
            return Err(SyncError::WrongSession {
                expected: self.session,
                got: session,
            });
        }
        if upto <= self.outbox.acked {
            return Ok(());
        }
        if upto > self.high_water {
            return Err(SyncError::AckBeyondSent {
                acked: upto,
                sent: self.high_water,
            });
        }
        if !self.outbox.is_boundary(upto) {
            return Err(SyncError::UnknownSeq { seq: upto });
        }
        Ok(())
    }

    /// The host's timer fired without progress: go back to the last acknowledged entry and
    /// resend the window (go-back-N). Whatever the peer already has, it skips as duplicate.
    pub fn on_timeout(mut self) -> (Self, Vec<SenderAction>) {
        self.sent_upto = self.outbox.acked;
        let actions = self.fill_window();
        (self, actions)
    }

    pub fn write(mut self, entry: OutboxEntry) -> Step<Self, SenderAction> {
        match self.outbox.push(entry) {
            Ok(()) => {
                let actions = self.fill_window();
                Ok((self, actions))
            }
            Err(error) => Err(Rejected { state: self, error }),
        }
    }

    pub fn disconnect(self) -> Idle {
        Idle {
            outbox: self.outbox,
        }
    }

    pub fn session(&self) -> u64 {
        self.session
    }
}

/// A link in any state, for hosts that keep one value per peer.
#[derive(Debug)]
pub enum Sender {
    Idle(Idle),
    AwaitingHello(AwaitingHello),
    Streaming(Streaming),
}

impl Sender {
    /// See [`Idle::new`].
    pub fn new(
        config: SenderConfig,
        acked: u64,
        backlog: impl IntoIterator<Item = OutboxEntry>,
    ) -> Result<Self, SyncError> {
        Idle::new(config, acked, backlog).map(Sender::Idle)
    }

    /// The highest seq the peer has confirmed (persisted or about to be, via the actions).
    pub fn acked(&self) -> u64 {
        self.outbox().acked
    }

    /// The current connection's session, if connected.
    pub fn session(&self) -> Option<u64> {
        match self {
            Sender::Idle(_) => None,
            Sender::AwaitingHello(s) => Some(s.session),
            Sender::Streaming(s) => Some(s.session),
        }
    }

    /// How many outbox entries the peer has not yet acknowledged.
    pub fn pending(&self) -> usize {
        self.outbox().entries.len()
    }

    fn outbox(&self) -> &Outbox {
        match self {
            Sender::Idle(s) => &s.outbox,
            Sender::AwaitingHello(s) => &s.outbox,
            Sender::Streaming(s) => &s.outbox,
        }
    }

    /// Feeds one event through whichever state the link is in.
    pub fn handle(self, event: SenderEvent) -> Step<Sender, SenderAction> {
        match event {
            SenderEvent::Connected { session } => {
                let idle = self.into_idle();
                Ok((Sender::AwaitingHello(idle.connect(session)), Vec::new()))
            }
            SenderEvent::Disconnected => Ok((Sender::Idle(self.into_idle()), Vec::new())),
            SenderEvent::Written(entry) => match self {
                Sender::Idle(s) => s
                    .write(entry)
                    .map(|s| (Sender::Idle(s), Vec::new()))
                    .map_err(|r| r.map(Sender::Idle)),
                Sender::AwaitingHello(s) => s
                    .write(entry)
                    .map(|s| (Sender::AwaitingHello(s), Vec::new()))
                    .map_err(|r| r.map(Sender::AwaitingHello)),
                Sender::Streaming(s) => lift(s.write(entry), Sender::Streaming),
            },
            SenderEvent::Timeout => match self {
                Sender::Streaming(s) => {
                    let (s, actions) = s.on_timeout();
                    Ok((Sender::Streaming(s), actions))
                }
                other => Ok((other, Vec::new())),
            },
            SenderEvent::Received(message) => self.receive(message),
        }
    }

    fn receive(self, message: Message) -> Step<Sender, SenderAction> {
        if let Err(error) = message.validate() {
            return Err(Rejected { state: self, error });
        }
        let kind = message.kind();
        match (self, message.body) {
            (Sender::Idle(s), _) => Err(Rejected {
                state: Sender::Idle(s),
                error: SyncError::NotConnected { message: kind },
            }),
            (state, Body::Batch(_)) => Err(Rejected {
                state,
                error: SyncError::Unexpected {
                    message: kind,
                    state: "primary",
                },
            }),
            (Sender::AwaitingHello(s), Body::Hello(h)) => match s.on_hello(h) {
                Ok((s, actions)) => Ok((Sender::Streaming(s), actions)),
                Err(r) => Err(r.map(Sender::AwaitingHello)),
            },
            (Sender::AwaitingHello(s), Body::Ack(a)) => {
                // The peer acks only batches, and no batch goes out before its Hello.
                let error = if a.session == s.session {
                    SyncError::Unexpected {
                        message: kind,
                        state: "primary awaiting Hello",
                    }
                } else {
                    SyncError::WrongSession {
                        expected: s.session,
                        got: a.session,
                    }
                };
                Err(Rejected {
                    state: Sender::AwaitingHello(s),
                    error,
                })
            }
            (Sender::Streaming(s), Body::Hello(h)) => lift(s.on_hello(h), Sender::Streaming),
            (Sender::Streaming(s), Body::Ack(a)) => lift(s.on_ack(a), Sender::Streaming),
        }
    }

    fn into_idle(self) -> Idle {
        match self {
            Sender::Idle(s) => s,
            Sender::AwaitingHello(s) => s.disconnect(),
            Sender::Streaming(s) => s.disconnect(),
        }
    }
}

fn lift<S, A>(step: Step<S, A>, wrap: fn(S) -> Sender) -> Step<Sender, A> {
    match step {
        Ok((s, actions)) => Ok((wrap(s), actions)),
        Err(r) => Err(r.map(wrap)),
    }
}
