//! The JSON form of `coffer-sync` messages on the replication endpoints: payloads in
//! base64, so a batch is at most 4/3 of its payload bytes.

use coffer_sync::{Body, Message, SecretKey, WireEntry};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::region::sealed::b64;

/// Opens a session: the primary names it, the replica answers with its `Hello`.
pub const OPEN_PATH: &str = "/coffer/v1/sync/open";
/// Carries one `Batch`; the answer is the `Ack` (with what could not be applied).
pub const BATCH_PATH: &str = "/coffer/v1/sync/batch";
/// A paired peer saying it is up (for example right after `coffer team join`), so that
/// this vault's replication tries it at once instead of waiting out its backoff. It
/// carries nothing and changes nothing but that.
pub const CONTACT_PATH: &str = "/coffer/v1/sync/contact";

#[derive(Serialize, Deserialize, Debug)]
pub struct Open {
    pub session: u64,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Entry {
    pub seq: u64,
    pub prev_seq: u64,
    pub secret: Uuid,
    #[serde(with = "b64")]
    pub payload: Vec<u8>,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Wire {
    Hello { session: u64, applied_upto: u64 },
    Batch { session: u64, entries: Vec<Entry> },
    Ack { session: u64, applied_upto: u64 },
}

/// A secret whose change the replica could not apply, and why (for the primary's status).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct NotApplied {
    pub secret_id: Uuid,
    pub reason: String,
}

/// The replica's answer to a batch.
#[derive(Serialize, Deserialize, Debug)]
pub struct Answer {
    pub message: Wire,
    #[serde(default)]
    pub not_applied: Vec<NotApplied>,
}

impl Wire {
    pub fn from_message(message: Message) -> Wire {
        match message.body {
            Body::Hello(h) => Wire::Hello {
                session: h.session,
                applied_upto: h.applied_upto,
            },
            Body::Ack(a) => Wire::Ack {
                session: a.session,
                applied_upto: a.applied_upto,
            },
            Body::Batch(b) => Wire::Batch {
                session: b.session,
                entries: b
                    .entries
                    .into_iter()
                    .map(|e| Entry {
                        seq: e.seq,
                        prev_seq: e.prev_seq,
                        secret: Uuid::from_bytes(e.secret.0),
                        payload: e.payload,
                    })
                    .collect(),
            },
        }
    }

    pub fn into_message(self) -> Message {
        match self {
            Wire::Hello {
                session,
                applied_upto,
            } => Message::hello(session, applied_upto),
            Wire::Ack {
                session,
                applied_upto,
            } => Message::ack(session, applied_upto),
            Wire::Batch { session, entries } => Message::batch(
                session,
                entries
                    .into_iter()
                    .map(|e| WireEntry {
                        seq: e.seq,
                        prev_seq: e.prev_seq,
                        secret: SecretKey(e.secret.into_bytes()),
                        payload: e.payload,
                    })
                    .collect(),
            ),
        }
    }
}
