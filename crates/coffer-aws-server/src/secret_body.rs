//! Response bodies that may carry secret material (`SecretString`, `SecretBinary`, KMS
//! `Plaintext`), written so that this process keeps no unwiped copy of it.
//!
//! Building such a body as a `serde_json::Value` and then a `String` would leave two
//! copies of every secret in freed heap memory, where a later bug, a core dump or swap
//! could reveal them. Instead an operation answers a [`Reply`] whose secret members are
//! [`Zeroizing`] strings, serialized once, straight into a buffer that is itself wiped:
//! when it must grow, the old allocation is wiped before it is freed
//! ([`WipingWriter`]), and it is handed to hyper as a [`WipedBody`] that wipes it when
//! the response has been sent. (What hyper, rustls and the kernel copy while sending is
//! beyond this process's reach.)

use std::io;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;
use zeroize::Zeroizing;

/// An operation's answer: plain JSON, or a structure with secret members.
pub enum Reply {
    Json(Value),
    Object(Vec<(&'static str, Reply)>),
    Array(Vec<Reply>),
    /// A secret string member, wiped when the reply is dropped.
    Secret(Zeroizing<String>),
}

impl From<Value> for Reply {
    fn from(value: Value) -> Self {
        Reply::Json(value)
    }
}

impl Serialize for Reply {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Reply::Json(value) => value.serialize(serializer),
            Reply::Secret(text) => serializer.serialize_str(text),
            Reply::Object(members) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (name, member) in members {
                    map.serialize_entry(name, member)?;
                }
                map.end()
            }
            Reply::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

impl Reply {
    /// The JSON body, in a buffer wiped when dropped.
    pub fn to_body(&self) -> Zeroizing<Vec<u8>> {
        let mut writer = WipingWriter(Zeroizing::new(Vec::with_capacity(1024)));
        match serde_json::to_writer(&mut writer, self) {
            Ok(()) => writer.0,
            // Only a non-string map key could fail, and a Reply has none.
            Err(_) => Zeroizing::new(b"{}".to_vec()),
        }
    }
}

/// Appends to a wiped buffer; when it must grow, copies into a larger one and lets the
/// old one be wiped (a `Vec` would free its old allocation unwiped).
struct WipingWriter(Zeroizing<Vec<u8>>);

impl io::Write for WipingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let needed = self.0.len() + buf.len();
        if needed > self.0.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(needed.max(self.0.capacity() * 2)));
            bigger.extend_from_slice(&self.0);
            // The old buffer is wiped (all of its capacity) as it is dropped here.
            self.0 = bigger;
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A response body hyper sends from and then drops: wiped then.
pub struct WipedBody {
    bytes: Zeroizing<Vec<u8>>,
    sent: usize,
}

impl WipedBody {
    pub fn new(bytes: Zeroizing<Vec<u8>>) -> Self {
        WipedBody { bytes, sent: 0 }
    }
}

impl bytes::Buf for WipedBody {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.sent
    }

    fn chunk(&self) -> &[u8] {
        &self.bytes[self.sent..]
    }

    fn advance(&mut self, count: usize) {
        self.sent = (self.sent + count).min(self.bytes.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_reply_serializes_as_the_json_it_stands_for() {
        let reply = Reply::Object(vec![
            (
                "ARN",
                json!("arn:aws:secretsmanager:r-1:0:secret:a-AAAAAA").into(),
            ),
            (
                "SecretString",
                Reply::Secret(Zeroizing::new("s\"e\ncret".into())),
            ),
            (
                "List",
                Reply::Array(vec![
                    json!(1).into(),
                    Reply::Secret(Zeroizing::new("x".into())),
                ]),
            ),
        ]);
        let body = reply.to_body();
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            parsed,
            json!({"ARN": "arn:aws:secretsmanager:r-1:0:secret:a-AAAAAA", "SecretString": "s\"e\ncret", "List": [1, "x"]})
        );
    }

    #[test]
    fn the_buffer_grows_past_its_first_capacity() {
        let long = "v".repeat(70_000);
        let body = Reply::Object(vec![(
            "SecretString",
            Reply::Secret(Zeroizing::new(long.clone())),
        )])
        .to_body();
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed["SecretString"], json!(long));
        let mut sent = WipedBody::new(body);
        use bytes::Buf;
        let total = sent.remaining();
        sent.advance(10);
        assert_eq!(sent.remaining(), total - 10);
        assert_eq!(sent.chunk()[0], b'r');
    }
}
