//! Casts to an actor in this process queued here at once (`here.rs`): in order behind what
//! went the governor's way, and every case handed back untouched to the full path.

use std::os::unix::net::UnixStream;
use std::sync::Arc;

use bytes::Bytes;
use rebeam_proto::{
    write_frame, ActorRef, Command, ErrorInfo, ErrorKind, Event, Exit, Frame, Gating, Payload, Request, Response,
    Target,
};

use crate::direct_tests::{start, WAIT};
use crate::tests::{answer, connected, read};
use crate::{Client, DELIVERY_BOUND};

const HERE: u64 = 3;
const SENDER: u64 = 4;

fn cast_to(target: Target, subject: &str, sender: Option<u64>, n: u8) -> Request {
    Request::Cast {
        target,
        subject: subject.into(),
        sender,
        payload: Payload { data: vec![n].into(), buffers: vec![] },
    }
}

fn cast(subject: &str, n: u8) -> Request {
    cast_to(Target::Actor(HERE), subject, Some(SENDER), n)
}

/// The next request on the socket (the client's own events on it skipped).
fn next_request(s: &mut UnixStream) -> (u64, Request) {
    loop {
        match read(s) {
            Frame::Request { req, body } => return (req, body),
            Frame::Event(_) => continue,
            other => panic!("expected a request, got {other:?}"),
        }
    }
}

/// Plays the governor for a cast to the actor here: its delivery back, then its answer.
fn deliver_back(s: &mut UnixStream, req: u64, body: Request) {
    let Request::Cast { subject, payload, .. } = body else { panic!("expected a cast, got {body:?}") };
    let sender = Some(ActorRef { id: SENDER, name: Some("front".into()) });
    let delivery = Command::Deliver { delivery: None, actor: HERE, subject, sender, payload };
    write_frame(s, &Frame::Command(delivery)).unwrap();
    answer(s, req, Response::Cast { delivered: true });
}

/// A client hosting actor HERE ("front" is SENDER, here too), whose route to HERE is known to
/// be this process: its first cast (note 0) went the governor's way and came back queued.
fn hosting(gating: Gating) -> (Arc<Client>, UnixStream) {
    let (client, mut s) = connected();
    let client = Arc::new(client);
    let start_of = |actor, name: &str| Command::Start {
        actor,
        name: Some(name.into()),
        label: name.into(),
        code: rebeam_proto::ChildCode::Script { path: "m.py".into() },
    };
    write_frame(&mut s, &Frame::Command(start_of(SENDER, "front"))).unwrap();
    write_frame(&mut s, &Frame::Command(start_of(HERE, "counter"))).unwrap();
    for _ in 0..2 {
        assert!(matches!(client.next_command(Some(WAIT)), Some(Command::Start { .. })));
    }
    client.send_event(Event::Started { actor: SENDER, result: Ok(Gating::default()) }).unwrap();
    client.send_event(Event::Started { actor: HERE, result: Ok(gating) }).unwrap();
    let first = start(&client, cast("note", 0));
    let (req, body) = next_request(&mut s);
    assert_eq!(body, Request::Route { target: Target::Actor(HERE) });
    let refusal = ErrorInfo::new(ErrorKind::BadRequest, "actor counter lives in this process");
    answer(&mut s, req, Response::Route(Err(refusal)));
    let (req, body) = next_request(&mut s);
    deliver_back(&mut s, req, body);
    assert_eq!(first.join().unwrap(), Response::Cast { delivered: true });
    (client, s)
}

/// The notes of the next `n` casts queued for HERE, each checked to come from "front".
fn notes(client: &Client, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| match client.next_command(Some(WAIT)) {
            Some(Command::Deliver {
                delivery: None,
                actor: HERE,
                sender: Some(ActorRef { id: SENDER, name }),
                payload,
                ..
            }) => {
                assert_eq!(name.as_deref(), Some("front"), "named as the governor names it");
                payload.data[0]
            }
            other => panic!("expected a cast to actor {HERE}, got {other:?}"),
        })
        .collect()
}

#[test]
fn a_cast_to_an_actor_here_is_queued_at_once_behind_what_went_the_governors_way() {
    let (client, _s) = hosting(Gating::default());
    assert_eq!(client.try_cast(cast("note", 1)), None);
    assert_eq!(client.try_cast(cast("note", 2)), None);
    assert_eq!(notes(&client, 3), [0, 1, 2]);
    assert_eq!(client.next_command(Some(crate::tests::SHORT)), None, "queued once each");
    // By name too, once its route is known (a first message the governor's way asks it).
    let by_name = cast_to(Target::Name("counter".into()), "note", Some(SENDER), 3);
    assert_eq!(client.try_cast(by_name.clone()), Some(by_name), "no route known by that name yet");
}

#[test]
fn a_gated_subject_or_out_of_band_buffers_take_the_governors_way() {
    let gating = Gating { handled: vec!["fire".into()], subjects: vec!["fire".into()], catch_all: false };
    let (client, _s) = hosting(gating);
    assert_eq!(client.try_cast(cast("fire", 1)), Some(cast("fire", 1)));
    let mut buffered = cast("note", 2);
    if let Request::Cast { payload, .. } = &mut buffered {
        payload.buffers.push(Bytes::from_static(b"out of band"));
    }
    assert_eq!(client.try_cast(buffered.clone()), Some(buffered));
    assert_eq!(client.try_cast(cast("note", 3)), None);
    assert_eq!(notes(&client, 2), [0, 3]);
}

#[test]
fn while_a_senders_message_the_governors_way_is_unanswered_its_casts_follow_it_there() {
    let (client, mut s) = hosting(Gating::default());
    let call = Request::Call {
        target: Target::Actor(HERE),
        subject: "total".into(),
        sender: Some(SENDER),
        payload: Payload::default(),
        timeout_ms: 5000,
    };
    let waiting = start(&client, call);
    let (req, _) = next_request(&mut s);
    // Its delivery may still be on its way here: a cast queued now could overtake it.
    assert_eq!(client.try_cast(cast("note", 1)), Some(cast("note", 1)));
    // Another sender's casts are not held back by it.
    let other = cast_to(Target::Actor(HERE), "note", None, 9);
    assert_eq!(client.try_cast(other), None);
    answer(&mut s, req, crate::direct_tests::reply(7));
    waiting.join().unwrap();
    assert_eq!(client.try_cast(cast("note", 2)), None);
    let kinds: Vec<_> = (0..3)
        .map(|_| match client.next_command(Some(WAIT)) {
            Some(Command::Deliver { sender, payload, .. }) => (sender.map(|r| r.id), payload.data[0]),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, [(Some(SENDER), 0), (None, 9), (Some(SENDER), 2)]);
}

#[test]
fn a_cast_to_an_actor_that_ended_here_is_handed_back_and_its_target_resolved_afresh() {
    let (client, mut s) = hosting(Gating::default());
    client.send_event(Event::Exited { actor: HERE, reason: Exit::Normal, taken_up_to: u64::MAX }).unwrap();
    assert_eq!(client.try_cast(cast("note", 1)), Some(cast("note", 1)));
    let again = start(&client, cast("note", 1));
    let (req, body) = next_request(&mut s);
    assert_eq!(body, Request::Route { target: Target::Actor(HERE) }, "the route was forgotten");
    answer(&mut s, req, Response::Route(Err(ErrorInfo::new(ErrorKind::NoProcess, "gone"))));
    let (req, _) = next_request(&mut s);
    answer(&mut s, req, Response::Cast { delivered: false });
    assert_eq!(again.join().unwrap(), Response::Cast { delivered: false });
}

#[test]
fn past_the_delivery_bound_a_cast_here_takes_the_governors_way() {
    let (client, _s) = hosting(Gating::default());
    client.count_handled();
    for _ in 0..DELIVERY_BOUND {
        assert_eq!(client.try_cast(cast("note", 1)), None);
    }
    // The first note and those: one past the bound.
    assert_eq!(client.backlog(), DELIVERY_BOUND + 1);
    assert_eq!(client.try_cast(cast("note", 2)), Some(cast("note", 2)));
    client.handled(DELIVERY_BOUND + 1);
    assert_eq!(client.try_cast(cast("note", 3)), None);
}
