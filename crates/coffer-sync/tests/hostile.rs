//! Malformed, oversized and hostile messages: each is refused with a typed error, nothing
//! panics, and the refusing side's state is left as it was.

use coffer_sync::{
    Body, Message, OutboxEntry, Receiver, ReceiverConfig, SecretKey, Sender, SenderConfig,
    SenderEvent, SyncError, WireEntry, MAX_BATCH_BYTES, MAX_BATCH_ENTRIES, MAX_PAYLOAD_BYTES,
    PROTOCOL_VERSION,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn entry(seq: u64, prev_seq: u64) -> WireEntry {
    WireEntry {
        seq,
        prev_seq,
        secret: SecretKey([1; 16]),
        payload: vec![0xAB; 4],
    }
}

fn chain(n: u64) -> Vec<WireEntry> {
    (1..=n).map(|s| entry(s, s - 1)).collect()
}

/// A replica at `applied_upto` 0, connected in session 7.
fn replica() -> Receiver {
    let mut r = Receiver::new(ReceiverConfig::default(), 0);
    r.connect(7);
    r
}

fn refused(batch: Vec<WireEntry>) -> SyncError {
    let mut r = replica();
    let err = r
        .receive(Message::batch(7, batch))
        .expect_err("the batch must be refused");
    assert_eq!(r.applied_upto(), 0, "a refused batch must change nothing");
    err
}

#[test]
fn a_well_formed_batch_validates() {
    assert_eq!(Message::batch(1, chain(5)).validate(), Ok(()));
    assert_eq!(Message::batch(1, Vec::new()).validate(), Ok(()));
}

#[test]
fn another_protocol_version_is_refused() {
    let mut m = Message::hello(1, 0);
    m.version = PROTOCOL_VERSION + 1;
    assert_eq!(
        m.validate(),
        Err(SyncError::UnsupportedVersion {
            got: PROTOCOL_VERSION + 1,
            supported: PROTOCOL_VERSION
        })
    );
    let mut b = Message::batch(7, chain(1));
    b.version = 0;
    assert!(matches!(
        replica().receive(b),
        Err(SyncError::UnsupportedVersion { got: 0, .. })
    ));
}

#[test]
fn too_many_entries_are_refused() {
    let n = MAX_BATCH_ENTRIES as u64 + 1;
    assert_eq!(
        refused(chain(n)),
        SyncError::BatchTooLarge {
            entries: MAX_BATCH_ENTRIES + 1,
            max: MAX_BATCH_ENTRIES
        }
    );
    // At the limit it is fine.
    let mut r = replica();
    assert!(r
        .receive(Message::batch(7, chain(MAX_BATCH_ENTRIES as u64)))
        .is_ok());
}

#[test]
fn an_oversized_payload_is_refused() {
    let mut big = entry(1, 0);
    big.payload = vec![0; MAX_PAYLOAD_BYTES + 1];
    assert_eq!(
        refused(vec![big]),
        SyncError::PayloadTooLarge {
            seq: 1,
            len: MAX_PAYLOAD_BYTES + 1,
            max: MAX_PAYLOAD_BYTES
        }
    );
}

#[test]
fn too_many_bytes_in_one_batch_are_refused() {
    let per_entry = MAX_PAYLOAD_BYTES;
    let n = (MAX_BATCH_BYTES / per_entry) as u64 + 1;
    let batch: Vec<WireEntry> = chain(n)
        .into_iter()
        .map(|mut e| {
            e.payload = vec![0; per_entry];
            e
        })
        .collect();
    assert!(matches!(
        refused(batch),
        SyncError::BatchTooManyBytes {
            max: MAX_BATCH_BYTES,
            ..
        }
    ));
}

#[test]
fn seq_zero_is_refused() {
    assert_eq!(refused(vec![entry(0, 0)]), SyncError::ZeroSeq);
}

#[test]
fn seq_going_backwards_or_repeating_in_a_batch_is_refused() {
    assert_eq!(
        refused(vec![entry(5, 4), entry(3, 5)]),
        SyncError::SeqNotIncreasing { prev: 5, seq: 3 }
    );
    assert_eq!(
        refused(vec![entry(5, 4), entry(5, 4)]),
        SyncError::SeqNotIncreasing { prev: 5, seq: 5 }
    );
    // An entry that names itself or a later seq as its predecessor.
    assert_eq!(
        refused(vec![entry(5, 5)]),
        SyncError::SeqNotIncreasing { prev: 5, seq: 5 }
    );
    assert_eq!(
        refused(vec![entry(5, u64::MAX)]),
        SyncError::SeqNotIncreasing {
            prev: u64::MAX,
            seq: 5
        }
    );
}

#[test]
fn a_broken_chain_inside_a_batch_is_refused() {
    // Entry 9 claims 7 as predecessor, but the batch put 8 before it: one of them lies.
    assert_eq!(
        refused(vec![entry(8, 0), entry(9, 7)]),
        SyncError::BrokenChain {
            seq: 9,
            prev_seq: 7,
            expected: 8
        }
    );
}

#[test]
fn the_replica_refuses_what_only_a_primary_receives() {
    let mut r = replica();
    for m in [Message::hello(7, 0), Message::ack(7, 3)] {
        assert!(matches!(
            r.receive(m),
            Err(SyncError::Unexpected {
                state: "replica",
                ..
            })
        ));
    }
}

#[test]
fn a_batch_of_another_session_or_without_a_connection_is_stale() {
    let mut r = replica();
    let err = r.receive(Message::batch(6, chain(3))).unwrap_err();
    assert_eq!(
        err,
        SyncError::WrongSession {
            expected: 7,
            got: 6
        }
    );
    assert!(err.is_stale());
    assert_eq!(r.applied_upto(), 0);

    let mut idle = Receiver::new(ReceiverConfig::default(), 0);
    let err = idle.receive(Message::batch(7, chain(3))).unwrap_err();
    assert!(matches!(err, SyncError::NotConnected { .. }));
    assert!(err.is_stale());
}

fn streaming_primary() -> Sender {
    let backlog = (1..=5).map(|s| OutboxEntry {
        seq: s * 10,
        secret: SecretKey([2; 16]),
        payload: vec![s as u8],
    });
    let s = Sender::new(SenderConfig::default(), 0, backlog).unwrap();
    let (s, _) = s.handle(SenderEvent::Connected { session: 3 }).unwrap();
    let (s, _) = s
        .handle(SenderEvent::Received(Message::hello(3, 0)))
        .unwrap();
    s
}

#[test]
fn the_primary_refuses_lies_and_keeps_its_state() {
    let cases = [
        // Acks something never sent: 60 does not exist.
        (Message::ack(3, 60), "AckBeyondSent"),
        // Acks a seq that is not an entry: resuming there would skip 30.
        (Message::ack(3, 25), "UnknownSeq"),
        (Message::ack(3, u64::MAX), "AckBeyondSent"),
        (Message::batch(3, chain(1)), "Unexpected"),
        (Message::ack(2, 50), "WrongSession"),
    ];
    for (msg, want) in cases {
        let s = streaming_primary();
        let rejected = s
            .handle(SenderEvent::Received(msg.clone()))
            .expect_err("must be refused");
        let name = format!("{:?}", rejected.error);
        assert!(name.starts_with(want), "{msg:?}: got {name}, want {want}");
        assert_eq!(rejected.state.acked(), 0);
        assert_eq!(rejected.state.session(), Some(3));
        assert_eq!(rejected.state.pending(), 5);
    }
}

#[test]
fn json_round_trips_every_message() {
    let messages = [
        Message::hello(1, 42),
        Message::ack(u64::MAX, u64::MAX),
        Message::batch(9, chain(3)),
        Message::batch(9, Vec::new()),
    ];
    for m in messages {
        let text = serde_json::to_string(&m).unwrap();
        let back: Message = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m, "{text}");
        assert_eq!(back.validate(), Ok(()));
    }
}

#[test]
fn undecodable_json_is_refused_by_the_decoder() {
    for text in [
        "",
        "{}",
        r#"{"version":1}"#,
        r#"{"version":1,"body":{"Hello":{"session":-1,"applied_upto":0}}}"#,
        r#"{"version":1,"body":{"Goodbye":{"session":1}}}"#,
        r#"{"version":70000,"body":{"Ack":{"session":1,"applied_upto":0}}}"#,
        r#"{"version":1,"body":{"Batch":{"session":1,"entries":[{"seq":1,"prev_seq":0,"secret":[1,2,3],"payload":[]}]}}}"#,
        r#"{"version":1,"body":{"Batch":{"session":1,"entries":[{"seq":1,"prev_seq":0,"secret":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"payload":[256]}]}}}"#,
    ] {
        assert!(serde_json::from_str::<Message>(text).is_err(), "{text}");
    }
}

/// Random mutations of valid messages, decoded and fed to both sides: whatever decodes is
/// either accepted or refused with an error, never a panic, and a replica never moves
/// backwards.
#[test]
fn mutated_messages_never_panic() {
    let mut rng = StdRng::seed_from_u64(0xC0FFE2);
    let seeds: Vec<String> = [
        Message::hello(3, 20),
        Message::ack(3, 30),
        Message::batch(3, chain(4)),
    ]
    .iter()
    .map(|m| serde_json::to_string(m).unwrap())
    .collect();
    let alphabet = b"0123456789{}[]:,\"-e.HelloAckBatchseqprev_ version";
    let mut decoded = 0;
    for _ in 0..20_000 {
        let mut bytes = seeds[rng.gen_range(0..seeds.len())].clone().into_bytes();
        for _ in 0..rng.gen_range(1..4) {
            let at = rng.gen_range(0..bytes.len());
            match rng.gen_range(0..3) {
                0 => bytes[at] = alphabet[rng.gen_range(0..alphabet.len())],
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, alphabet[rng.gen_range(0..alphabet.len())]),
            }
            if bytes.is_empty() {
                break;
            }
        }
        let Ok(msg) = serde_json::from_slice::<Message>(&bytes) else {
            continue;
        };
        decoded += 1;
        let mut r = replica();
        let before = r.applied_upto();
        let _ = r.receive(msg.clone());
        assert!(r.applied_upto() >= before);
        if let Body::Batch(_) = msg.body {
            continue;
        }
        let s = streaming_primary();
        match s.handle(SenderEvent::Received(msg)) {
            Ok((s, _)) => assert!(s.acked() <= 50),
            Err(rejected) => assert_eq!(rejected.state.acked(), 0),
        }
    }
    assert!(decoded > 100, "only {decoded} mutants decoded");
}
