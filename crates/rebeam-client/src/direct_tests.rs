//! The direct path against a fake governor that hands out real channels: the test holds the
//! other end of each, playing the actor's process (or, on the host side, the caller).

use std::os::unix::net::UnixStream;
use std::time::Duration;

use rebeam_proto::{
    decode_frame, encode_parts, ActorRef, Command, ErrorInfo, ErrorKind, Event, Frame, Gating, Outcome, Payload,
    Request, Response, Route, Status, Target, HEADER_BYTES,
};
use rebeam_shm::{Receiver, Sender};

use crate::channel_tests::{channel, channel_watching, send_with_fds};
use crate::client::lock;
use crate::tests::{connected, request_id};
use crate::{Client, LOCAL_DELIVERY};

pub(crate) const WAIT: Duration = Duration::from_secs(5);
const ACTOR: u64 = 9;

pub(crate) fn call(subject: &str) -> Request {
    let payload = Payload { data: vec![1, 2, 3].into(), buffers: vec![] };
    Request::Call {
        target: Target::Name("counter".into()),
        subject: subject.into(),
        sender: None,
        payload,
        timeout_ms: 5000,
    }
}

pub(crate) fn cast(subject: &str) -> Request {
    Request::Cast {
        target: Target::Name("counter".into()),
        subject: subject.into(),
        sender: None,
        payload: Payload::default(),
    }
}

/// Answers the client's route request (the next frame on the socket) with a fresh channel to
/// actor 9, whose `gated` subjects are gated; returns the test's end of it.
pub(crate) fn answer_route(s: &mut UnixStream, gated: &[&str], peer: u32) -> (Sender, Receiver) {
    let (req, body) = request_id(s);
    assert_eq!(body, Request::Route { target: Target::Name("counter".into()) });
    let (fds, grant, ours) = channel_watching(1, peer);
    let gating = Gating {
        handled: gated.iter().map(|s| s.to_string()).collect(),
        subjects: gated.iter().map(|s| s.to_string()).collect(),
        catch_all: false,
    };
    let route =
        Route { actor: ActorRef { id: ACTOR, name: Some("counter".into()) }, gating, channel: grant, fresh: true };
    send_with_fds(s, &Frame::Response { req, body: Response::Route(Ok(route)) }, &fds);
    ours
}

pub(crate) fn next_record(rx: &mut Receiver) -> Frame {
    let record = rx.recv(WAIT).expect("a record on the ring");
    decode_frame(bytes::Bytes::copy_from_slice(&record[HEADER_BYTES..])).expect("a frame")
}

pub(crate) fn put(tx: &mut Sender, frame: Frame) {
    let encoded = encode_parts(frame).unwrap();
    let slices = encoded.slices_after(0);
    let parts: Vec<&[u8]> = slices.iter().map(|s| &**s).collect();
    tx.send(&parts, WAIT).unwrap();
}

pub(crate) fn reply(value: u8) -> Response {
    Response::Call(Outcome::Reply {
        status: Status::Ok,
        payload: Payload { data: vec![value].into(), buffers: vec![] },
    })
}

/// Starts `request` on another thread (it blocks on the route's round trip first).
pub(crate) fn start(client: &std::sync::Arc<Client>, request: Request) -> std::thread::JoinHandle<Response> {
    let client = client.clone();
    std::thread::spawn(move || client.request(request, Some(WAIT)).expect("answered"))
}

#[test]
fn a_call_is_resolved_once_then_goes_on_the_ring_and_is_answered_there() {
    let (client, mut s) = connected();
    let client = std::sync::Arc::new(client);
    let first = start(&client, call("ping"));
    let (mut tx, mut rx) = answer_route(&mut s, &[], std::process::id());
    let req = match next_record(&mut rx) {
        Frame::Command(Command::Deliver { delivery: Some(req), actor, subject, .. }) => {
            assert_eq!((actor, subject.as_str()), (ACTOR, "ping"), "addressed by id");
            req
        }
        other => panic!("expected a call on the ring, got {other:?}"),
    };
    put(&mut tx, Frame::Response { req, body: reply(7) });
    assert_eq!(first.join().unwrap(), reply(7));
    // The second call needs no route: it is on the ring at once.
    let second = start(&client, call("ping"));
    let Frame::Command(Command::Deliver { delivery: Some(req), .. }) = next_record(&mut rx) else { panic!("a call") };
    put(&mut tx, Frame::Response { req, body: reply(8) });
    assert_eq!(second.join().unwrap(), reply(8));
}

#[test]
fn casts_and_calls_keep_their_order_on_the_ring_and_a_cast_does_not_wait() {
    let (client, mut s) = connected();
    let client = std::sync::Arc::new(client);
    let first = start(&client, cast("a"));
    let (mut tx, mut rx) = answer_route(&mut s, &[], std::process::id());
    assert_eq!(first.join().unwrap(), Response::Cast { delivered: true });
    assert_eq!(client.request(cast("b"), Some(WAIT)).unwrap(), Response::Cast { delivered: true });
    let third = start(&client, call("c"));
    let subjects: Vec<_> = (0..3)
        .map(|_| match next_record(&mut rx) {
            Frame::Command(Command::Deliver { subject, delivery, .. }) => (subject, delivery),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(subjects.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!((subjects[0].1, subjects[1].1), (None, None), "casts are not answered");
    put(&mut tx, Frame::Response { req: subjects[2].1.expect("a call"), body: reply(1) });
    assert_eq!(third.join().unwrap(), reply(1));
}

#[test]
fn a_direct_message_names_its_sender_as_the_governor_would() {
    let (client, mut s) = connected();
    let client = std::sync::Arc::new(client);
    // The socket's reader learns this process's actors' names from their Start commands.
    let code = rebeam_proto::ChildCode::Script { path: "x.py".into() };
    let start_cmd = Command::Start { actor: 5, name: Some("front".into()), label: "'front'".into(), code };
    rebeam_proto::write_frame(&mut s, &Frame::Command(start_cmd)).unwrap();
    assert!(matches!(client.next_command(Some(WAIT)), Some(Command::Start { .. })));
    let payload = Payload::default();
    let from_front =
        Request::Cast { target: Target::Name("counter".into()), subject: "a".into(), sender: Some(5), payload };
    let first = start(&client, from_front);
    let (_tx, mut rx) = answer_route(&mut s, &[], std::process::id());
    assert_eq!(first.join().unwrap(), Response::Cast { delivered: true });
    match next_record(&mut rx) {
        Frame::Command(Command::Deliver { sender: Some(ActorRef { id: 5, name }), .. }) => {
            assert_eq!(name.as_deref(), Some("front"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_gated_subject_stays_on_the_governors_path() {
    let (client, mut s) = connected();
    let client = std::sync::Arc::new(client);
    let first = start(&client, call("fire"));
    let (_tx, mut rx) = answer_route(&mut s, &["fire"], std::process::id());
    let (req, body) = request_id(&mut s);
    assert!(matches!(body, Request::Call { target: Target::Name(ref n), .. } if n == "counter"), "{body:?}");
    crate::tests::answer(&mut s, req, reply(3));
    assert_eq!(first.join().unwrap(), reply(3));
    assert!(rx.try_recv().unwrap().is_none(), "nothing gated went on the ring");
}

#[test]
fn no_process_from_the_peer_sends_the_call_again_the_governors_way_once() {
    let (client, mut s) = connected();
    let client = std::sync::Arc::new(client);
    let first = start(&client, call("ping"));
    let (mut tx, mut rx) = answer_route(&mut s, &[], std::process::id());
    let Frame::Command(Command::Deliver { delivery: Some(req), .. }) = next_record(&mut rx) else { panic!("a call") };
    let gone = ErrorInfo::new(ErrorKind::NoProcess, "restarted");
    put(&mut tx, Frame::Response { req, body: Response::Call(Outcome::Failed(gone)) });
    let (again, body) = request_id(&mut s);
    assert_eq!(again, req, "the same request, now to the governor");
    assert_eq!(body, call("ping"), "under its original target");
    crate::tests::answer(&mut s, req, reply(4));
    assert_eq!(first.join().unwrap(), reply(4));
    // Its route was forgotten: the next call asks again.
    let _next = start(&client, call("ping"));
    assert!(matches!(request_id(&mut s).1, Request::Route { .. }));
}

#[test]
fn the_peer_dying_fails_every_call_in_flight_with_actor_down_at_once() {
    let (client, mut s) = connected();
    let client = std::sync::Arc::new(client);
    let mut peer = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let first = start(&client, call("ping"));
    let (_tx, mut rx) = answer_route(&mut s, &[], peer.id());
    next_record(&mut rx);
    let second = start(&client, call("ping"));
    next_record(&mut rx);
    // The governor's word of why comes once it has reaped the peer; here, just before.
    let why = "worker 1 (pid 1234) died: killed by SIGKILL".to_string();
    rebeam_proto::write_frame(&mut s, &Frame::Command(Command::ChannelClosed { channel: 1, why })).unwrap();
    peer.kill().unwrap();
    peer.wait().unwrap();
    for waiter in [first, second] {
        match waiter.join().unwrap() {
            Response::Call(Outcome::Failed(info)) => {
                assert_eq!(info.kind, ErrorKind::ActorDown, "{info:?}");
                assert!(info
                    .message
                    .ends_with("ended before it answered: worker 1 (pid 1234) died: killed by SIGKILL"));
            }
            other => panic!("expected ActorDown, got {other:?}"),
        }
    }
    // The route over the dead channel is gone: the next call asks the governor again.
    let _next = start(&client, call("ping"));
    assert!(matches!(request_id(&mut s).1, Request::Route { .. }));
}

#[test]
fn a_call_the_dead_peer_never_took_off_the_ring_goes_again_the_governors_way() {
    let (client, mut s) = connected();
    s.set_read_timeout(Some(WAIT)).unwrap(); // a call answered ActorDown instead fails, not hangs
    let client = std::sync::Arc::new(client);
    let mut peer = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let taken = start(&client, call("ping"));
    let (_tx, mut rx) = answer_route(&mut s, &[], peer.id());
    next_record(&mut rx); // read and released: it reached the peer's queue
    let unread = start(&client, call("pong"));
    while !rx.ready().unwrap() {
        std::thread::sleep(Duration::from_millis(1)); // in the ring, and never taken off it
    }
    let why = "worker 1 (pid 1234) died: killed by SIGKILL".to_string();
    rebeam_proto::write_frame(&mut s, &Frame::Command(Command::ChannelClosed { channel: 1, why })).unwrap();
    peer.kill().unwrap();
    peer.wait().unwrap();
    match taken.join().unwrap() {
        Response::Call(Outcome::Failed(info)) => assert_eq!(info.kind, ErrorKind::ActorDown, "{info:?}"),
        other => panic!("expected ActorDown, got {other:?}"),
    }
    // The unread one comes to the governor, under its original target, with its request id.
    let (req, body) = request_id(&mut s);
    match body {
        Request::Call { target, subject, .. } => {
            assert_eq!((target, subject.as_str()), (Target::Name("counter".into()), "pong"))
        }
        other => panic!("expected the call again, got {other:?}"),
    }
    rebeam_proto::write_frame(&mut s, &Frame::Response { req, body: reply(3) }).unwrap();
    assert_eq!(unread.join().unwrap(), reply(3));
}

#[test]
fn a_call_that_picked_its_route_just_before_the_link_was_lost_is_settled_not_stranded() {
    // A caller picks a route, then the channel thread loses the link (taking the calls in
    // flight) before the caller's call is among them: the caller itself must settle it.
    let (client, mut s) = connected();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let client = std::sync::Arc::new(client);
    let mut peer = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let first = start(&client, call("ping"));
    let (_tx, mut rx) = answer_route(&mut s, &[], peer.id());
    next_record(&mut rx);
    let stale = client.shared.direct.links().pop().expect("the channel in use");
    let why = "worker 1 (pid 1234) died: killed by SIGKILL".to_string();
    rebeam_proto::write_frame(&mut s, &Frame::Command(Command::ChannelClosed { channel: 1, why })).unwrap();
    peer.kill().unwrap();
    peer.wait().unwrap();
    assert!(matches!(
        first.join().unwrap(),
        Response::Call(Outcome::Failed(ErrorInfo { kind: ErrorKind::ActorDown, .. }))
    ));
    assert!(stale.dead.load(std::sync::atomic::Ordering::SeqCst), "the link was lost");
    // The late call goes onto the dead peer's ring (it has room) after the losing is over.
    let way = client.shared.direct.send_on(&client.shared, 4242, call("late"), ACTOR, false, stale.clone());
    assert!(matches!(way, crate::direct::Way::Sent(None)), "its answer must come some other way than the dead ring");
    assert!(lock(&stale.inflight).is_empty(), "nothing is left for a reader that will never come");
    // Never taken off the ring, it goes again the governor's way, under its original target.
    let (req, body) = request_id(&mut s);
    assert_eq!(req, 4242);
    match body {
        Request::Call { target, subject, .. } => {
            assert_eq!((target, subject.as_str()), (Target::Name("counter".into()), "late"))
        }
        other => panic!("expected the call again, got {other:?}"),
    }
}

#[test]
fn the_host_side_delivers_ring_records_as_commands_and_replies_on_the_ring() {
    let (client, s) = connected();
    let (fds, grant, (mut tx, mut rx)) = channel(11);
    client.send_event(Event::Started { actor: ACTOR, result: Ok(Gating::default()) }).unwrap();
    send_with_fds(&s, &Frame::Command(Command::ChannelOpened(grant.clone())), &fds);
    assert_eq!(client.next_command(Some(WAIT)), Some(Command::ChannelOpened(grant)));
    let call_for = |req, actor| {
        let sender = Some(ActorRef { id: 5, name: Some("front".into()) });
        let payload = Payload::default();
        Frame::Command(Command::Deliver { delivery: Some(req), actor, subject: "ping".into(), sender, payload })
    };
    put(&mut tx, call_for(70, ACTOR));
    let delivery = match client.next_command(Some(WAIT)) {
        Some(Command::Deliver { delivery: Some(d), actor: ACTOR, sender: Some(ActorRef { id: 5, name }), .. }) => {
            assert_eq!(name.as_deref(), Some("front"), "the sender keeps its name");
            d
        }
        other => panic!("expected the call as a delivery, got {other:?}"),
    };
    assert_ne!(delivery & LOCAL_DELIVERY, 0);
    let outcome = Outcome::Reply { status: Status::Ok, payload: Payload::default() };
    client.send_event(Event::Replied { delivery, outcome: outcome.clone() }).unwrap();
    assert_eq!(next_record(&mut rx), Frame::Response { req: 70, body: Response::Call(outcome) });

    // An id not hosted here (a restarted actor's old one) is answered NoProcess, not delivered.
    put(&mut tx, call_for(71, ACTOR + 1));
    match next_record(&mut rx) {
        Frame::Response { req: 71, body: Response::Call(Outcome::Failed(info)) } => {
            assert_eq!(info.kind, ErrorKind::NoProcess)
        }
        other => panic!("{other:?}"),
    }
    // A call in the actor's mailbox that it never answers before it exits is answered
    // ActorDown; one Python took off the queue only after the actor died (not into a
    // mailbox) is left for Python to answer.
    put(&mut tx, call_for(72, ACTOR));
    let Some(Command::Deliver { delivery: Some(in_mailbox), .. }) = client.next_command(Some(WAIT)) else {
        panic!("expected the call as a delivery")
    };
    client.took(in_mailbox);
    put(&mut tx, call_for(73, ACTOR));
    let Some(Command::Deliver { delivery: Some(late), .. }) = client.next_command(Some(WAIT)) else {
        panic!("expected the call as a delivery")
    };
    let exit = rebeam_proto::Exit::Normal;
    client.send_event(Event::Exited { actor: ACTOR, reason: exit, taken_up_to: u64::MAX }).unwrap();
    match next_record(&mut rx) {
        Frame::Response { req: 72, body: Response::Call(Outcome::Failed(info)) } => {
            assert_eq!(info.kind, ErrorKind::ActorDown)
        }
        other => panic!("{other:?}"),
    }
    let info = ErrorInfo::new(ErrorKind::NoProcess, "the actor is gone".to_string());
    client.send_event(Event::Replied { delivery: late, outcome: Outcome::Failed(info) }).unwrap();
    match next_record(&mut rx) {
        Frame::Response { req: 73, body: Response::Call(Outcome::Failed(info)) } => {
            assert_eq!(info.kind, ErrorKind::NoProcess, "Python's own answer, not ActorDown")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failure_too_large_for_the_ring_is_answered_on_it_cut_to_fit() {
    let (client, s) = connected();
    let (fds, grant, (mut tx, mut rx)) = channel(12);
    client.send_event(Event::Started { actor: ACTOR, result: Ok(Gating::default()) }).unwrap();
    send_with_fds(&s, &Frame::Command(Command::ChannelOpened(grant.clone())), &fds);
    assert_eq!(client.next_command(Some(WAIT)), Some(Command::ChannelOpened(grant)));
    let payload = Payload::default();
    put(
        &mut tx,
        Frame::Command(Command::Deliver {
            delivery: Some(80),
            actor: ACTOR,
            subject: "boom".into(),
            sender: None,
            payload,
        }),
    );
    let Some(Command::Deliver { delivery: Some(delivery), .. }) = client.next_command(Some(WAIT)) else {
        panic!("expected the call as a delivery")
    };
    // Many times the ring's largest record (about 2 KiB here).
    let info = ErrorInfo {
        kind: ErrorKind::Crashed,
        message: "m".repeat(20_000),
        exc_type: Some("ValueError".into()),
        traceback: Some(format!("Traceback (most recent call last):\n{}ValueError: end", "t".repeat(20_000))),
    };
    client.send_event(Event::Replied { delivery, outcome: Outcome::Failed(info) }).unwrap();
    match next_record(&mut rx) {
        Frame::Response { req: 80, body: Response::Call(Outcome::Failed(cut)) } => {
            assert_eq!((cut.kind, cut.exc_type.as_deref()), (ErrorKind::Crashed, Some("ValueError")));
            assert!(cut.message.starts_with("mmm") && cut.message.contains("too large for the channel"));
            assert!(cut.traceback.is_some_and(|t| t.ends_with("ValueError: end")));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn after_a_message_the_governors_way_later_ones_follow_it_until_a_call_is_answered_by_the_actor() {
    let (client, mut s) = connected();
    let client = std::sync::Arc::new(client);
    let first = start(&client, cast("plain"));
    let (_tx, mut rx) = answer_route(&mut s, &["fire"], std::process::id());
    assert_eq!(first.join().unwrap(), Response::Cast { delivered: true });
    assert!(matches!(next_record(&mut rx), Frame::Command(Command::Deliver { .. })));
    // A gated cast goes the governor's way; an ungated one after it must not overtake it.
    let fired = start(&client, cast("fire"));
    let (r1, b1) = request_id(&mut s);
    assert!(matches!(b1, Request::Cast { ref subject, .. } if subject == "fire"));
    crate::tests::answer(&mut s, r1, Response::Cast { delivered: true });
    fired.join().unwrap();
    let after = start(&client, cast("after"));
    let (r2, b2) = request_id(&mut s);
    assert!(matches!(b2, Request::Cast { ref subject, .. } if subject == "after"), "fenced: {b2:?}");
    crate::tests::answer(&mut s, r2, Response::Cast { delivered: true });
    after.join().unwrap();
    // A refusal from the governor lifts nothing; the actor's own answer does.
    let refused = start(&client, call("c1"));
    let (r3, _) = request_id(&mut s);
    let info = ErrorInfo::new(ErrorKind::Safety, "not armed");
    crate::tests::answer(&mut s, r3, Response::Call(Outcome::Failed(info)));
    refused.join().unwrap();
    let answered = start(&client, call("c2"));
    let (r4, b4) = request_id(&mut s);
    assert!(matches!(b4, Request::Call { ref subject, .. } if subject == "c2"), "still fenced: {b4:?}");
    crate::tests::answer(&mut s, r4, reply(2));
    assert_eq!(answered.join().unwrap(), reply(2));
    assert_eq!(client.request(cast("direct again"), Some(WAIT)).unwrap(), Response::Cast { delivered: true });
    match next_record(&mut rx) {
        Frame::Command(Command::Deliver { subject, .. }) => assert_eq!(subject, "direct again"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_caller_reading_its_ring_hands_on_what_else_it_finds_in_ring_order() {
    let (client, mut s) = connected();
    let client = std::sync::Arc::new(client);
    let first = start(&client, call("warm"));
    let (mut tx, mut rx) = answer_route(&mut s, &[], std::process::id());
    let Frame::Command(Command::Deliver { delivery: Some(req), .. }) = next_record(&mut rx) else { panic!("a call") };
    put(&mut tx, Frame::Response { req, body: reply(0) });
    first.join().unwrap();
    client.send_event(Event::Started { actor: 5, result: Ok(Gating::default()) }).unwrap();
    // The channel thread now leaves the ring to the callers.
    let first = start(&client, call("ping"));
    let Frame::Command(Command::Deliver { delivery: Some(req), .. }) = next_record(&mut rx) else { panic!("a call") };
    // The peer casts to an actor here, then answers: whoever reads, the cast reaches the
    // command queue and the reply its caller.
    let cast_here = |subject: &str| {
        let subject = subject.into();
        Frame::Command(Command::Deliver {
            delivery: None,
            actor: 5,
            subject,
            sender: None,
            payload: Payload::default(),
        })
    };
    put(&mut tx, cast_here("before"));
    put(&mut tx, Frame::Response { req, body: reply(7) });
    put(&mut tx, cast_here("after"));
    assert_eq!(first.join().unwrap(), reply(7));
    for expected in ["before", "after"] {
        match client.next_command(Some(WAIT)) {
            Some(Command::Deliver { subject, actor: 5, .. }) => assert_eq!(subject, expected),
            other => panic!("expected the cast {expected:?}, got {other:?}"),
        }
    }
}

#[test]
fn callers_sharing_a_channel_each_get_their_own_reply_whoever_reads() {
    let (client, mut s) = connected();
    let client = std::sync::Arc::new(client);
    let first = start(&client, call("warm"));
    let (mut tx, mut rx) = answer_route(&mut s, &[], std::process::id());
    let Frame::Command(Command::Deliver { delivery: Some(req), .. }) = next_record(&mut rx) else { panic!("a call") };
    put(&mut tx, Frame::Response { req, body: reply(0) });
    first.join().unwrap();
    let callers: Vec<_> = (0..4u8).map(|i| start(&client, call(&format!("ping {i}")))).collect();
    let mut calls: Vec<_> = (0..4)
        .map(|_| match next_record(&mut rx) {
            Frame::Command(Command::Deliver { delivery: Some(req), subject, .. }) => {
                (req, subject["ping ".len()..].parse::<u8>().unwrap())
            }
            other => panic!("{other:?}"),
        })
        .collect();
    // Answered last first, each caller with its own number, so a reply handed to another
    // caller's waiter shows.
    calls.sort();
    for (req, i) in calls.into_iter().rev() {
        put(&mut tx, Frame::Response { req, body: reply(i) });
    }
    for (i, caller) in callers.into_iter().enumerate() {
        assert_eq!(caller.join().unwrap(), reply(i as u8));
    }
}

#[test]
fn after_no_process_later_messages_follow_the_retried_call_until_it_is_answered() {
    let (client, mut s) = connected();
    let client = std::sync::Arc::new(client);
    let first = start(&client, call("ping"));
    let (mut tx, mut rx) = answer_route(&mut s, &[], std::process::id());
    let Frame::Command(Command::Deliver { delivery: Some(req), .. }) = next_record(&mut rx) else { panic!("a call") };
    let gone = ErrorInfo::new(ErrorKind::NoProcess, "restarted");
    put(&mut tx, Frame::Response { req, body: Response::Call(Outcome::Failed(gone)) });
    let (again, _) = request_id(&mut s);
    assert_eq!(again, req);
    // The retried call is not answered yet: a cast now goes the governor's way behind it, not
    // to a fresh route (which would ask for one first).
    let behind = start(&client, cast("behind"));
    let (r2, b2) = request_id(&mut s);
    assert!(matches!(b2, Request::Cast { ref subject, .. } if subject == "behind"), "fenced: {b2:?}");
    crate::tests::answer(&mut s, r2, Response::Cast { delivered: true });
    behind.join().unwrap();
    crate::tests::answer(&mut s, req, reply(4));
    assert_eq!(first.join().unwrap(), reply(4));
    // Answered: the next message resolves the target afresh.
    let _next = start(&client, cast("after"));
    assert!(matches!(request_id(&mut s).1, Request::Route { .. }));
}

#[test]
fn a_direct_call_given_up_on_leaves_nothing_in_flight_and_its_late_reply_is_dropped() {
    let (client, mut s) = connected();
    let client = std::sync::Arc::new(client);
    let caller = {
        let client = client.clone();
        std::thread::spawn(move || client.request(call("ping"), Some(Duration::from_millis(300))))
    };
    let (mut tx, mut rx) = answer_route(&mut s, &[], std::process::id());
    let Frame::Command(Command::Deliver { delivery: Some(req), .. }) = next_record(&mut rx) else { panic!("a call") };
    assert!(matches!(caller.join().unwrap(), Err(crate::ClientError::Timeout)));
    assert_eq!(client.direct_in_flight(), 0, "the call given up on is forgotten");
    // Its reply, late, reaches no one; the channel still serves the next call.
    put(&mut tx, Frame::Response { req, body: reply(1) });
    let next = start(&client, call("ping"));
    let Frame::Command(Command::Deliver { delivery: Some(req2), .. }) = next_record(&mut rx) else { panic!("a call") };
    put(&mut tx, Frame::Response { req: req2, body: reply(2) });
    assert_eq!(next.join().unwrap(), reply(2));
}

#[test]
fn a_cast_to_a_stale_id_returns_true_is_lost_and_makes_the_sender_resolve_the_target_again() {
    let (client, mut s) = connected();
    let client = std::sync::Arc::new(client);
    let first = start(&client, cast("a"));
    let (mut tx, mut rx) = answer_route(&mut s, &[], std::process::id());
    // Delivered means "in the actor's process's ring": the sender hears True before the
    // process finds that the id is no longer one of its actors.
    assert_eq!(first.join().unwrap(), Response::Cast { delivered: true });
    next_record(&mut rx);
    put(&mut tx, Frame::Response { req: 0, body: Response::Cast { delivered: false } });
    // Once that answer is read (by the channel thread, promptly), the route over this channel
    // is forgotten: the next message asks the governor again.
    let deadline = std::time::Instant::now() + WAIT;
    while client.direct_routes() > 0 {
        assert!(std::time::Instant::now() < deadline, "the stale route was never forgotten");
        std::thread::sleep(Duration::from_millis(1));
    }
    let _next = start(&client, cast("b"));
    assert!(matches!(request_id(&mut s).1, Request::Route { .. }));
}

/// A record that arrives just after the last caller stopped reading waits for no timer: the
/// caller hands the ring back to the channel thread as it goes. Each round, the peer answers
/// a call, its caller returns, and the peer casts to an actor here; a lost hand-over would
/// leave every cast in the ring until the channel thread's own wake-up (`COUNT_REPORT` at the
/// soonest), so most rounds taking well under that shows none was lost (a round slowed by a
/// busy machine is allowed).
#[test]
fn a_record_arriving_just_after_callers_stop_reading_is_taken_at_once() {
    const ROUNDS: usize = 20;
    let (client, mut s) = connected();
    let client = std::sync::Arc::new(client);
    let first = start(&client, call("warm"));
    let (mut tx, mut rx) = answer_route(&mut s, &[], std::process::id());
    let Frame::Command(Command::Deliver { delivery: Some(req), .. }) = next_record(&mut rx) else { panic!("a call") };
    put(&mut tx, Frame::Response { req, body: reply(0) });
    first.join().unwrap();
    client.send_event(Event::Started { actor: 5, result: Ok(Gating::default()) }).unwrap();
    let prompt = crate::direct::COUNT_REPORT / 2;
    let mut late = 0;
    for round in 0..ROUNDS {
        let caller = start(&client, call("ping"));
        let Frame::Command(Command::Deliver { delivery: Some(req), .. }) = next_record(&mut rx) else { panic!() };
        put(&mut tx, Frame::Response { req, body: reply(1) });
        assert_eq!(caller.join().unwrap(), reply(1));
        let cast_here = Command::Deliver {
            delivery: None,
            actor: 5,
            subject: format!("after {round}"),
            sender: None,
            payload: Payload::default(),
        };
        let sent = std::time::Instant::now();
        put(&mut tx, Frame::Command(cast_here));
        match client.next_command(Some(WAIT)) {
            Some(Command::Deliver { subject, .. }) => assert_eq!(subject, format!("after {round}")),
            other => panic!("expected the cast, got {other:?}"),
        }
        if sent.elapsed() >= prompt {
            late += 1;
        }
    }
    assert!(late < ROUNDS / 4, "{late} of {ROUNDS} records waited for the channel thread's own wake-up");
}
