//! The primary's copy of what one peer has not yet acknowledged.

use std::collections::VecDeque;

use crate::error::SyncError;
use crate::message::{Message, OutboxEntry, WireEntry, MAX_PAYLOAD_BYTES};
use crate::sender::{SenderAction, SenderConfig};

/// The unacknowledged part of the outbox, chained. Invariant: `entries` holds exactly the
/// outbox entries with seq > `acked`, in order, and the first one's `prev_seq` is `acked`.
#[derive(Debug)]
pub(crate) struct Outbox {
    pub(crate) config: SenderConfig,
    pub(crate) acked: u64,
    pub(crate) entries: VecDeque<WireEntry>,
}

impl Outbox {
    pub(crate) fn last_seq(&self) -> u64 {
        self.entries.back().map_or(self.acked, |e| e.seq)
    }

    pub(crate) fn push(&mut self, entry: OutboxEntry) -> Result<(), SyncError> {
        if entry.seq == 0 {
            return Err(SyncError::ZeroSeq);
        }
        let prev = self.last_seq();
        if entry.seq <= prev {
            return Err(SyncError::SeqNotIncreasing {
                prev,
                seq: entry.seq,
            });
        }
        if entry.payload.len() > MAX_PAYLOAD_BYTES {
            return Err(SyncError::PayloadTooLarge {
                seq: entry.seq,
                len: entry.payload.len(),
                max: MAX_PAYLOAD_BYTES,
            });
        }
        self.entries.push_back(WireEntry {
            seq: entry.seq,
            prev_seq: prev,
            secret: entry.secret,
            payload: entry.payload,
        });
        Ok(())
    }

    /// How many entries have a seq at or below `seq`.
    pub(crate) fn count_upto(&self, seq: u64) -> usize {
        self.entries.partition_point(|e| e.seq <= seq)
    }

    /// Checks that `seq` is an entry boundary: `acked` itself or the seq of a kept entry.
    /// Resuming anywhere else would hand the peer a first entry whose predecessor it lacks.
    pub(crate) fn is_boundary(&self, seq: u64) -> bool {
        if seq == self.acked {
            return true;
        }
        let n = self.count_upto(seq);
        n > 0 && self.entries.get(n - 1).is_some_and(|e| e.seq == seq)
    }

    /// Drops entries the peer has durably applied; returns whether `acked` moved.
    pub(crate) fn advance(&mut self, upto: u64) -> bool {
        if upto <= self.acked {
            return false;
        }
        let n = self.count_upto(upto);
        self.entries.drain(..n);
        self.acked = upto;
        true
    }

    /// Packs entries `[from, to)` into batches within the configured limits.
    pub(crate) fn batches(&self, session: u64, from: usize, to: usize) -> Vec<SenderAction> {
        let mut out = Vec::new();
        let mut current: Vec<WireEntry> = Vec::new();
        let mut bytes = 0usize;
        for e in self.entries.range(from..to) {
            if !current.is_empty()
                && (current.len() >= self.config.max_batch_entries
                    || bytes + e.payload.len() > self.config.max_batch_bytes)
            {
                out.push(SenderAction::Send(Message::batch(
                    session,
                    std::mem::take(&mut current),
                )));
                bytes = 0;
            }
            bytes += e.payload.len();
            current.push(e.clone());
        }
        if !current.is_empty() {
            out.push(SenderAction::Send(Message::batch(session, current)));
        }
        out
    }
}
