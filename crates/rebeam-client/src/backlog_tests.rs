//! The backlog's bound on a real channel: past it the channel thread leaves records in the
//! ring (so the sender meets a full ring), takes them again once deliveries are handled, in
//! order, and a caller still reads its reply from behind deliveries.

use std::time::Instant;

use rebeam_proto::{encode_parts, Command, Event, Frame, Gating, Payload};

use crate::channel_tests::{channel, send_with_fds};
use crate::direct_tests::{answer_route, call, next_record, put, reply, start, WAIT};
use crate::tests::{connected, read};
use crate::{Client, DELIVERY_BOUND};

const HERE: u64 = 3;

fn cast_for(actor: u64, n: u8) -> Frame {
    let payload = Payload { data: vec![n].into(), buffers: vec![] };
    Frame::Command(Command::Deliver { delivery: None, actor, subject: "note".into(), sender: None, payload })
}

/// Waits (up to WAIT, else fails) until the backlog counts `n`.
fn backlog_reaches(client: &Client, n: usize) {
    let deadline = Instant::now() + WAIT;
    while client.backlog() < n {
        assert!(Instant::now() < deadline, "backlog stuck at {}", client.backlog());
        std::thread::yield_now();
    }
}

fn next_note(client: &Client) -> u8 {
    match client.next_command(Some(WAIT)) {
        Some(Command::Deliver { subject, payload, .. }) if subject == "note" => payload.data[0],
        other => panic!("expected a cast, got {other:?}"),
    }
}

#[test]
fn past_the_bound_casts_stay_in_the_ring_until_deliveries_are_handled_then_come_in_order() {
    let (client, s) = connected();
    client.count_handled();
    let (fds, grant, (mut tx, _rx)) = channel(11);
    client.send_event(Event::Started { actor: HERE, result: Ok(Gating::default()) }).unwrap();
    send_with_fds(&s, &Frame::Command(Command::ChannelOpened(grant.clone())), &fds);
    assert_eq!(client.next_command(Some(WAIT)), Some(Command::ChannelOpened(grant)));
    for _ in 0..=DELIVERY_BOUND {
        put(&mut tx, cast_for(HERE, 0));
    }
    backlog_reaches(&client, DELIVERY_BOUND + 1);
    // Nobody reads the ring now: it fills, and a sender finds no room.
    let encoded = |n| encode_parts(cast_for(HERE, n)).unwrap();
    let mut left = 0u8;
    loop {
        let e = encoded(left + 1);
        let slices = e.slices_after(0);
        let parts: Vec<&[u8]> = slices.iter().map(|s| &**s).collect();
        if tx.try_send(&parts).is_err() {
            break;
        }
        left += 1;
        assert!(left < u8::MAX, "the ring never filled: its records are still being taken");
    }
    assert!(left > 0);
    assert_eq!(client.backlog(), DELIVERY_BOUND + 1, "nothing more was taken off the ring");
    // Handed out is not handled: the bound holds until the consumer says so.
    for _ in 0..=DELIVERY_BOUND {
        assert_eq!(next_note(&client), 0);
    }
    assert_eq!(client.backlog(), DELIVERY_BOUND + 1);
    client.handled(DELIVERY_BOUND + 1);
    for n in 1..=left {
        assert_eq!(next_note(&client), n, "the records left in the ring follow, in order");
    }
}

#[test]
fn a_caller_reads_its_reply_from_behind_deliveries_past_the_bound() {
    let (client, mut s) = connected();
    client.count_handled();
    let client = std::sync::Arc::new(client);
    client.send_event(Event::Started { actor: HERE, result: Ok(Gating::default()) }).unwrap();
    assert!(matches!(read(&mut s), Frame::Event(Event::Started { .. })));
    let caller = start(&client, call("ping"));
    let (mut tx, mut rx) = answer_route(&mut s, &[], std::process::id());
    let Frame::Command(Command::Deliver { delivery: Some(req), .. }) = next_record(&mut rx) else {
        panic!("expected the call on the ring")
    };
    // Far more deliveries than the bound, and more than the ring holds, ahead of the reply.
    for _ in 0..2 * DELIVERY_BOUND {
        put(&mut tx, cast_for(HERE, 0));
    }
    put(&mut tx, Frame::Response { req, body: reply(7) });
    assert_eq!(caller.join().unwrap(), reply(7));
    assert!(client.backlog() > DELIVERY_BOUND);
}
