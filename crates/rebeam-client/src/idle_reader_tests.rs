//! The idle command thread reading the rings itself (`idle_reader.rs`), against a fake
//! governor that hands out real channels.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rebeam_proto::{Command, Event, Frame, Gating, Payload};

use crate::channel_tests::{channel, send_with_fds};
use crate::direct_tests::{answer_route, call, next_record, put, reply, start, WAIT};
use crate::tests::connected;
use crate::Client;

const ACTOR: u64 = 9;

fn cast_to(actor: u64, subject: &str) -> Frame {
    Frame::Command(Command::Deliver {
        delivery: None,
        actor,
        subject: subject.into(),
        sender: None,
        payload: Payload::default(),
    })
}

fn subject_of(command: Option<Command>) -> String {
    match command {
        Some(Command::Deliver { subject, .. }) => subject,
        other => panic!("expected a delivery, got {other:?}"),
    }
}

/// A client whose command thread reads the rings when idle, hosting actor 9, with a channel
/// the test writes to as a caller's process.
fn hosting() -> (Arc<Client>, std::os::unix::net::UnixStream, rebeam_shm::Sender, rebeam_shm::Receiver) {
    let (client, s) = connected();
    client.read_rings_when_idle();
    let (fds, grant, (tx, rx)) = channel(21);
    client.send_event(Event::Started { actor: ACTOR, result: Ok(Gating::default()) }).unwrap();
    send_with_fds(&s, &Frame::Command(Command::ChannelOpened(grant.clone())), &fds);
    assert_eq!(client.next_command(Some(WAIT)), Some(Command::ChannelOpened(grant)));
    (Arc::new(client), s, tx, rx)
}

#[test]
fn the_idle_command_thread_takes_ring_records_in_order_and_a_socket_command_still_wakes_it() {
    let (client, mut s, mut tx, _rx) = hosting();
    let taker = {
        let client = client.clone();
        std::thread::spawn(move || (0..4).map(|_| client.next_command(Some(WAIT))).collect::<Vec<_>>())
    };
    for i in 0..3 {
        put(&mut tx, cast_to(ACTOR, &format!("cast {i}")));
    }
    // Behind the ring's records, a command on the socket (the taker may be asleep on the rings).
    std::thread::sleep(Duration::from_millis(20));
    rebeam_proto::write_frame(&mut s, &Frame::Command(Command::Shutdown { code: 3 })).unwrap();
    let mut got = taker.join().unwrap().into_iter();
    for i in 0..3 {
        assert_eq!(subject_of(got.next().unwrap()), format!("cast {i}"));
    }
    assert_eq!(got.next().unwrap(), Some(Command::Shutdown { code: 3 }));
}

#[test]
fn a_caller_here_reads_its_own_reply_while_the_command_thread_sleeps_on_its_ring() {
    let (client, mut s) = connected();
    client.read_rings_when_idle();
    let client = Arc::new(client);
    let first = start(&client, call("warm"));
    let (mut tx, mut rx) = answer_route(&mut s, &[], std::process::id());
    let Frame::Command(Command::Deliver { delivery: Some(req), .. }) = next_record(&mut rx) else { panic!("a call") };
    put(&mut tx, Frame::Response { req, body: reply(0) });
    assert_eq!(first.join().unwrap(), reply(0));
    let idle = {
        let client = client.clone();
        std::thread::spawn(move || client.next_command(Some(WAIT)))
    };
    for round in 0..20u8 {
        let caller = start(&client, call("ping"));
        let Frame::Command(Command::Deliver { delivery: Some(req), .. }) = next_record(&mut rx) else { panic!() };
        put(&mut tx, Frame::Response { req, body: reply(round) });
        assert_eq!(caller.join().unwrap(), reply(round), "round {round}");
    }
    // The command thread took nothing meanwhile (a reply is not a command) and still wakes.
    rebeam_proto::write_frame(&mut s, &Frame::Command(Command::Shutdown { code: 4 })).unwrap();
    assert_eq!(idle.join().unwrap(), Some(Command::Shutdown { code: 4 }));
}

#[test]
fn a_record_arriving_once_the_command_thread_left_the_ring_is_queued_at_once() {
    const ROUNDS: usize = 20;
    let (client, _s, mut tx, _rx) = hosting();
    let prompt = crate::direct::COUNT_REPORT / 2;
    let mut late = 0;
    for round in 0..ROUNDS {
        put(&mut tx, cast_to(ACTOR, &format!("taken {round}")));
        assert_eq!(subject_of(client.next_command(Some(WAIT))), format!("taken {round}"));
        // The command thread is busy now (it left the ring): the channel thread, asleep behind
        // it, must take this one without waiting for its own timeout.
        let sent = Instant::now();
        put(&mut tx, cast_to(ACTOR, &format!("behind {round}")));
        while client.backlog() == 0 {
            assert!(sent.elapsed() < WAIT, "round {round}: the record was never queued");
            std::thread::yield_now();
        }
        if sent.elapsed() >= prompt {
            late += 1;
        }
        assert_eq!(subject_of(client.next_command(Some(WAIT))), format!("behind {round}"));
    }
    assert!(late < ROUNDS / 4, "{late} of {ROUNDS} records waited for the channel thread's own wake-up");
}
