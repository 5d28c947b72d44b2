//! The backlog's bound on a real channel: past it the channel thread leaves casts in the
//! ring (so the sender meets a full ring), takes them again once deliveries are handled, in
//! order, a caller still reads its reply from behind deliveries, and a call from another
//! peer still comes in (a call cycle through a flooded process is answered).

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

#[test]
fn past_the_bound_a_call_is_still_taken_and_a_cast_behind_it_waits() {
    let (client, s) = connected();
    client.count_handled();
    client.send_event(Event::Started { actor: HERE, result: Ok(Gating::default()) }).unwrap();
    let (fds, flooded, (mut flood, _rx)) = channel(11);
    send_with_fds(&s, &Frame::Command(Command::ChannelOpened(flooded.clone())), &fds);
    assert_eq!(client.next_command(Some(WAIT)), Some(Command::ChannelOpened(flooded)));
    let (fds, other, (mut tx, mut rx)) = channel(12);
    send_with_fds(&s, &Frame::Command(Command::ChannelOpened(other.clone())), &fds);
    assert_eq!(client.next_command(Some(WAIT)), Some(Command::ChannelOpened(other)));
    for _ in 0..=DELIVERY_BOUND {
        put(&mut flood, cast_for(HERE, 0));
    }
    backlog_reaches(&client, DELIVERY_BOUND + 1);
    for _ in 0..=DELIVERY_BOUND {
        assert_eq!(next_note(&client), 0);
    }
    // Another peer's call (say from an actor this process called, calling back into it).
    let payload = Payload::default();
    let ping = Command::Deliver { delivery: Some(40), actor: HERE, subject: "ping".into(), sender: None, payload };
    put(&mut tx, Frame::Command(ping));
    put(&mut tx, cast_for(HERE, 1));
    let Some(Command::Deliver { delivery: Some(delivery), subject, .. }) = client.next_command(Some(WAIT)) else {
        panic!("the call was left in the ring")
    };
    assert_eq!(subject, "ping");
    assert_eq!(client.next_command(Some(std::time::Duration::from_millis(300))), None, "the cast behind it waits");
    let outcome = rebeam_proto::Outcome::Reply { status: rebeam_proto::Status::Ok, payload: Payload::default() };
    client.send_event(Event::Replied { delivery, outcome }).unwrap();
    assert!(matches!(next_record(&mut rx), Frame::Response { req: 40, .. }), "answered on its ring");
    client.handled(DELIVERY_BOUND + 2);
    assert_eq!(next_note(&client), 1, "and comes once deliveries are handled");
}
