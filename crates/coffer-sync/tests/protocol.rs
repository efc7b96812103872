//! The two state machines step by step: what each event produces.

use coffer_sync::{
    AwaitingHello, Body, Hello, Idle, Message, OutboxEntry, Receiver, ReceiverAction,
    ReceiverConfig, SecretKey, Sender, SenderAction, SenderConfig, SenderEvent, SyncError,
    WireEntry, MAX_BATCH_ENTRIES, MAX_PAYLOAD_BYTES,
};

fn out(seq: u64) -> OutboxEntry {
    OutboxEntry {
        seq,
        secret: SecretKey([(seq % 3) as u8; 16]),
        payload: seq.to_be_bytes().to_vec(),
    }
}

fn config(window: usize, max_batch_entries: usize) -> SenderConfig {
    SenderConfig {
        window,
        max_batch_entries,
        ..SenderConfig::default()
    }
}

/// The (seq, prev_seq) pairs of every batch sent, in order.
fn sent(actions: &[SenderAction]) -> Vec<Vec<(u64, u64)>> {
    actions
        .iter()
        .filter_map(|a| match a {
            SenderAction::Send(Message {
                body: Body::Batch(b),
                ..
            }) => Some(b.entries.iter().map(|e| (e.seq, e.prev_seq)).collect()),
            _ => None,
        })
        .collect()
}

fn persisted(actions: &[SenderAction]) -> Vec<u64> {
    actions
        .iter()
        .filter_map(|a| match a {
            SenderAction::PersistAcked(n) => Some(*n),
            _ => None,
        })
        .collect()
}

#[test]
fn config_limits_are_checked() {
    let bad = [
        config(0, 1),
        config(1, 0),
        config(1, MAX_BATCH_ENTRIES + 1),
        SenderConfig {
            max_batch_bytes: MAX_PAYLOAD_BYTES - 1,
            ..SenderConfig::default()
        },
    ];
    for c in bad {
        assert!(matches!(
            Sender::new(c, 0, []),
            Err(SyncError::InvalidConfig(_))
        ));
    }
}

#[test]
fn the_backlog_must_be_in_order_above_acked() {
    assert_eq!(
        Sender::new(SenderConfig::default(), 5, [out(5)]).unwrap_err(),
        SyncError::SeqNotIncreasing { prev: 5, seq: 5 }
    );
    assert_eq!(
        Sender::new(SenderConfig::default(), 0, [out(2), out(1)]).unwrap_err(),
        SyncError::SeqNotIncreasing { prev: 2, seq: 1 }
    );
    assert_eq!(
        Sender::new(SenderConfig::default(), 0, [out(0)]).unwrap_err(),
        SyncError::ZeroSeq
    );
}

#[test]
fn streams_a_chained_window_and_moves_on_with_acks() {
    // Seqs with gaps; window 3, two entries per batch.
    let idle = Idle::new(config(3, 2), 0, [out(2), out(5), out(6), out(9), out(12)]).unwrap();
    let waiting: AwaitingHello = idle.connect(1);
    let (s, actions) = waiting
        .on_hello(Hello {
            session: 1,
            applied_upto: 0,
        })
        .unwrap();
    assert_eq!(persisted(&actions), Vec::<u64>::new());
    assert_eq!(sent(&actions), vec![vec![(2, 0), (5, 2)], vec![(6, 5)]]);

    // Ack 5: persist it, slide the window by two.
    let (s, actions) = s
        .on_ack(coffer_sync::Ack {
            session: 1,
            applied_upto: 5,
        })
        .unwrap();
    assert_eq!(persisted(&actions), vec![5]);
    assert_eq!(sent(&actions), vec![vec![(9, 6), (12, 9)]]);

    // A duplicate or older ack changes nothing.
    let (s, actions) = s
        .on_ack(coffer_sync::Ack {
            session: 1,
            applied_upto: 2,
        })
        .unwrap();
    assert!(actions.is_empty());

    // A new write beyond the window waits for room.
    let (s, actions) = s.write(out(13)).unwrap();
    assert!(actions.is_empty());
    let (_, actions) = s
        .on_ack(coffer_sync::Ack {
            session: 1,
            applied_upto: 12,
        })
        .unwrap();
    assert_eq!(persisted(&actions), vec![12]);
    assert_eq!(sent(&actions), vec![vec![(13, 12)]]);
}

#[test]
fn hello_resumes_where_the_replica_durably_is() {
    let s = Sender::new(config(10, 10), 2, [out(3), out(4), out(7)]).unwrap();
    let (s, _) = s.handle(SenderEvent::Connected { session: 4 }).unwrap();
    let (s, actions) = s
        .handle(SenderEvent::Received(Message::hello(4, 4)))
        .unwrap();
    // The ack from the replica's previous life got lost; its Hello carries it.
    assert_eq!(persisted(&actions), vec![4]);
    assert_eq!(sent(&actions), vec![vec![(7, 4)]]);
    assert_eq!(s.acked(), 4);
    assert_eq!(s.pending(), 1);
}

#[test]
fn hello_that_regresses_or_names_no_entry_is_refused() {
    let make = || {
        let s = Sender::new(config(10, 10), 3, [out(5), out(8)]).unwrap();
        s.handle(SenderEvent::Connected { session: 1 }).unwrap().0
    };
    let cases = [
        (
            Message::hello(1, 2),
            SyncError::PeerRegressed {
                acked: 3,
                claimed: 2,
            },
        ),
        (Message::hello(1, 6), SyncError::UnknownSeq { seq: 6 }),
        (Message::hello(1, 9), SyncError::UnknownSeq { seq: 9 }),
        (
            Message::hello(2, 5),
            SyncError::WrongSession {
                expected: 1,
                got: 2,
            },
        ),
        (
            Message::ack(1, 5),
            SyncError::Unexpected {
                message: "Ack",
                state: "primary awaiting Hello",
            },
        ),
    ];
    for (msg, want) in cases {
        let rejected = make().handle(SenderEvent::Received(msg)).unwrap_err();
        assert_eq!(rejected.error, want);
        assert!(matches!(rejected.state, Sender::AwaitingHello(_)));
        assert_eq!(rejected.state.acked(), 3);
    }
}

#[test]
fn timeout_goes_back_to_the_last_ack_and_resends_the_window() {
    let s = Sender::new(config(2, 1), 0, [out(1), out(2), out(3)]).unwrap();
    let (s, _) = s.handle(SenderEvent::Connected { session: 1 }).unwrap();
    let (s, first) = s
        .handle(SenderEvent::Received(Message::hello(1, 0)))
        .unwrap();
    assert_eq!(sent(&first), vec![vec![(1, 0)], vec![(2, 1)]]);
    let (s, again) = s.handle(SenderEvent::Timeout).unwrap();
    assert_eq!(sent(&again), sent(&first));
    // An ack for an entry sent before the timeout is still valid.
    let (s, actions) = s.handle(SenderEvent::Received(Message::ack(1, 2))).unwrap();
    assert_eq!(persisted(&actions), vec![2]);
    assert_eq!(sent(&actions), vec![vec![(3, 2)]]);
    // Idle and waiting links have nothing to retransmit.
    let idle = s.handle(SenderEvent::Disconnected).unwrap().0;
    assert_eq!(idle.handle(SenderEvent::Timeout).unwrap().1, vec![]);
}

#[test]
fn a_link_keeps_acked_and_backlog_across_reconnects() {
    let s = Sender::new(config(8, 8), 0, [out(1), out(2)]).unwrap();
    let (s, _) = s.handle(SenderEvent::Connected { session: 1 }).unwrap();
    let (s, _) = s
        .handle(SenderEvent::Received(Message::hello(1, 0)))
        .unwrap();
    let (s, _) = s.handle(SenderEvent::Received(Message::ack(1, 1))).unwrap();
    let (s, _) = s.handle(SenderEvent::Disconnected).unwrap();
    let (s, _) = s.handle(SenderEvent::Written(out(4))).unwrap();
    assert!(matches!(s, Sender::Idle(_)));
    assert_eq!((s.acked(), s.pending()), (1, 2));
    // Reconnecting replaces the session; the old one's messages are now stale.
    let (s, _) = s.handle(SenderEvent::Connected { session: 2 }).unwrap();
    let rejected = s
        .handle(SenderEvent::Received(Message::hello(1, 1)))
        .unwrap_err();
    assert!(rejected.error.is_stale());
    let (_, actions) = rejected
        .state
        .handle(SenderEvent::Received(Message::hello(2, 1)))
        .unwrap();
    assert_eq!(sent(&actions), vec![vec![(2, 1), (4, 2)]]);
}

#[test]
fn a_write_out_of_order_is_refused_and_the_link_survives() {
    let s = Sender::new(config(8, 8), 0, [out(3)]).unwrap();
    let rejected = s.handle(SenderEvent::Written(out(3))).unwrap_err();
    assert_eq!(
        rejected.error,
        SyncError::SeqNotIncreasing { prev: 3, seq: 3 }
    );
    assert_eq!(rejected.state.pending(), 1);
    let mut big = out(4);
    big.payload = vec![0; MAX_PAYLOAD_BYTES + 1];
    let rejected = rejected
        .state
        .handle(SenderEvent::Written(big))
        .unwrap_err();
    assert!(matches!(
        rejected.error,
        SyncError::PayloadTooLarge { seq: 4, .. }
    ));
}

fn wire(seq: u64, prev_seq: u64) -> WireEntry {
    WireEntry {
        seq,
        prev_seq,
        secret: SecretKey([0; 16]),
        payload: vec![seq as u8],
    }
}

fn committed(actions: &[ReceiverAction]) -> Vec<(Vec<u64>, u64)> {
    actions
        .iter()
        .filter_map(|a| match a {
            ReceiverAction::Commit {
                entries,
                applied_upto,
            } => Some((entries.iter().map(|e| e.seq).collect(), *applied_upto)),
            _ => None,
        })
        .collect()
}

fn acks(actions: &[ReceiverAction]) -> Vec<u64> {
    actions
        .iter()
        .filter_map(|a| match a {
            ReceiverAction::Send(Message {
                body: Body::Ack(a), ..
            }) => Some(a.applied_upto),
            _ => None,
        })
        .collect()
}

#[test]
fn the_replica_says_hello_with_what_it_durably_has() {
    let mut r = Receiver::new(ReceiverConfig::default(), 17);
    assert_eq!(
        r.connect(5),
        vec![ReceiverAction::Send(Message::hello(5, 17))]
    );
    // Until a batch arrives the Hello may have been lost, so a timeout resends it.
    assert_eq!(
        r.on_timeout(),
        vec![ReceiverAction::Send(Message::hello(5, 17))]
    );
    r.receive(Message::batch(5, vec![])).unwrap();
    assert_eq!(
        r.on_timeout(),
        vec![ReceiverAction::Send(Message::ack(5, 17))]
    );
    r.disconnect();
    assert_eq!(r.on_timeout(), vec![]);
}

#[test]
fn in_order_entries_commit_once_and_are_acked() {
    let mut r = Receiver::new(ReceiverConfig::default(), 0);
    r.connect(1);
    let a = r
        .receive(Message::batch(1, vec![wire(2, 0), wire(5, 2)]))
        .unwrap();
    assert_eq!(committed(&a), vec![(vec![2, 5], 5)]);
    assert_eq!(acks(&a), vec![5]);
    // Commit comes before the ack: the ack claims durability.
    assert!(matches!(a[0], ReceiverAction::Commit { .. }));

    // The same batch again (a duplicate or retransmission): nothing to apply, ack again.
    let a = r
        .receive(Message::batch(1, vec![wire(2, 0), wire(5, 2)]))
        .unwrap();
    assert_eq!(committed(&a), vec![]);
    assert_eq!(acks(&a), vec![5]);
    // A batch overlapping what is applied applies only the new tail.
    let a = r
        .receive(Message::batch(1, vec![wire(5, 2), wire(6, 5)]))
        .unwrap();
    assert_eq!(committed(&a), vec![(vec![6], 6)]);
}

#[test]
fn entries_past_a_hole_wait_then_apply_in_order() {
    let mut r = Receiver::new(ReceiverConfig { max_pending: 8 }, 0);
    r.connect(1);
    // 3 and 4 arrive before 1 and 2.
    let a = r
        .receive(Message::batch(1, vec![wire(3, 2), wire(4, 3)]))
        .unwrap();
    assert_eq!(committed(&a), vec![]);
    assert_eq!(acks(&a), vec![0]);
    let a = r.receive(Message::batch(1, vec![wire(1, 0)])).unwrap();
    assert_eq!(committed(&a), vec![(vec![1], 1)]);
    let a = r.receive(Message::batch(1, vec![wire(2, 1)])).unwrap();
    assert_eq!(committed(&a), vec![(vec![2, 3, 4], 4)]);
    assert_eq!(r.applied_upto(), 4);
}

#[test]
fn without_buffer_room_entries_past_a_hole_are_dropped_for_retransmission() {
    let mut r = Receiver::new(ReceiverConfig { max_pending: 0 }, 0);
    r.connect(1);
    r.receive(Message::batch(1, vec![wire(2, 1)])).unwrap();
    let a = r.receive(Message::batch(1, vec![wire(1, 0)])).unwrap();
    assert_eq!(committed(&a), vec![(vec![1], 1)]);
    let a = r.receive(Message::batch(1, vec![wire(2, 1)])).unwrap();
    assert_eq!(committed(&a), vec![(vec![2], 2)]);
}

#[test]
fn a_new_session_forgets_buffered_entries() {
    let mut r = Receiver::new(ReceiverConfig { max_pending: 8 }, 0);
    r.connect(1);
    r.receive(Message::batch(1, vec![wire(2, 1)])).unwrap();
    r.connect(2);
    let a = r.receive(Message::batch(2, vec![wire(1, 0)])).unwrap();
    assert_eq!(committed(&a), vec![(vec![1], 1)]);
}
