//! Records held behind a direct call's reply that went the governor's way, on a real channel:
//! a cast the callee's process sent after such a reply reaches this process's queue only once
//! the reply is in, and a reply that never comes holds it no longer than the call's timeout.

use std::sync::Arc;
use std::time::Duration;

use rebeam_proto::{Command, Event, Frame, Gating, Payload, Request, Response};

use crate::direct_tests::{answer_route, call, next_record, put, reply, WAIT};
use crate::tests::{connected, read};
use crate::{Client, ClientError};

const HERE: u64 = 3;
/// The `AWAY` record: the call's reply comes the governor's way.
const AWAY: Response = Response::Cast { delivered: true };
/// How long a test looks for a command that must not come yet.
const NOT_YET: Duration = Duration::from_millis(300);

fn cast_for(n: u8) -> Frame {
    let payload = Payload { data: vec![n].into(), buffers: vec![] };
    Frame::Command(Command::Deliver { delivery: None, actor: HERE, subject: "note".into(), sender: None, payload })
}

fn note(command: Option<Command>) -> u8 {
    match command {
        Some(Command::Deliver { subject, payload, .. }) if subject == "note" => payload.data[0],
        other => panic!("expected a cast, got {other:?}"),
    }
}

/// A client hosting actor HERE, with a call of `timeout_ms` sent on its channel to the test:
/// the client, the socket, the call's thread, the test's ends of the channel and the call's id.
#[allow(clippy::type_complexity)]
fn a_call_on_the_ring(
    timeout_ms: u64,
) -> (
    Arc<Client>,
    std::os::unix::net::UnixStream,
    std::thread::JoinHandle<Result<Response, ClientError>>,
    rebeam_shm::Sender,
    u64,
) {
    let (client, mut s) = connected();
    let client = Arc::new(client);
    client.send_event(Event::Started { actor: HERE, result: Ok(Gating::default()) }).unwrap();
    assert!(matches!(read(&mut s), Frame::Event(Event::Started { .. })));
    let mut request = call("big");
    if let Request::Call { timeout_ms: t, .. } = &mut request {
        *t = timeout_ms;
    }
    let caller = {
        let client = client.clone();
        std::thread::spawn(move || client.request(request, Some(Duration::from_millis(timeout_ms))))
    };
    let (tx, mut rx) = answer_route(&mut s, &[], std::process::id());
    let Frame::Command(Command::Deliver { delivery: Some(req), .. }) = next_record(&mut rx) else {
        panic!("expected the call on the ring")
    };
    (client, s, caller, tx, req)
}

#[test]
fn a_cast_after_a_reply_that_went_the_governors_way_does_not_overtake_it() {
    let (client, mut s, caller, mut tx, req) = a_call_on_the_ring(5000);
    put(&mut tx, Frame::Response { req, body: AWAY });
    put(&mut tx, cast_for(1));
    put(&mut tx, cast_for(2));
    assert_eq!(client.next_command(Some(NOT_YET)), None, "the casts wait behind the reply");
    crate::tests::answer(&mut s, req, reply(5));
    assert_eq!(caller.join().unwrap().unwrap(), reply(5));
    assert_eq!(note(client.next_command(Some(WAIT))), 1, "then they come, in order");
    assert_eq!(note(client.next_command(Some(WAIT))), 2);
    put(&mut tx, cast_for(3));
    assert_eq!(note(client.next_command(Some(WAIT))), 3, "and nothing is held any more");
}

#[test]
fn a_reply_the_governor_never_forwards_holds_what_follows_only_until_the_calls_timeout() {
    let (client, _s, caller, mut tx, req) = a_call_on_the_ring(200);
    put(&mut tx, Frame::Response { req, body: AWAY });
    put(&mut tx, cast_for(1));
    assert!(matches!(caller.join().unwrap(), Err(ClientError::Timeout)), "the caller's own wait ended");
    assert_eq!(note(client.next_command(Some(WAIT))), 1);
}

#[test]
fn a_reply_already_in_when_its_away_record_is_read_holds_nothing() {
    let (client, mut s, caller, mut tx, req) = a_call_on_the_ring(5000);
    crate::tests::answer(&mut s, req, reply(5));
    assert_eq!(caller.join().unwrap().unwrap(), reply(5));
    put(&mut tx, Frame::Response { req, body: AWAY });
    put(&mut tx, cast_for(1));
    assert_eq!(note(client.next_command(Some(WAIT))), 1);
}
