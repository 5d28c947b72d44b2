//! The completion queue's drainer reading the rings itself (`completion_reader.rs`), against a
//! fake governor that hands out real channels.

use std::sync::Arc;
use std::time::Instant;

use rebeam_proto::{Command, ErrorKind, Frame, Outcome, Response};

use crate::direct_tests::{answer_route, call, next_record, put, reply, start, WAIT};
use crate::tests::connected;
use crate::{Client, ClientError, Completion};

/// A drainer taking `n` completions, as the futures thread does.
fn drain(client: &Arc<Client>, n: usize) -> std::thread::JoinHandle<Vec<Completion>> {
    let client = client.clone();
    std::thread::spawn(move || (0..n).map(|_| client.next_completion(Some(WAIT)).expect("a completion")).collect())
}

fn request_of(frame: Frame) -> u64 {
    match frame {
        Frame::Command(Command::Deliver { delivery: Some(req), .. }) => req,
        other => panic!("expected a call, got {other:?}"),
    }
}

#[test]
fn answers_on_a_ring_reach_a_drainer_in_order_while_a_caller_here_still_reads_its_own() {
    let (client, mut s) = connected();
    let client = Arc::new(client);
    let warm = start(&client, call("warm"));
    let (mut tx, mut rx) = answer_route(&mut s, &[], std::process::id());
    put(&mut tx, Frame::Response { req: request_of(next_record(&mut rx)), body: reply(0) });
    assert_eq!(warm.join().unwrap(), reply(0));
    for round in 0..10u8 {
        let drainer = drain(&client, 3);
        let tags: Vec<u64> = (0..3).map(|_| client.start_completion(call("ping"), None).unwrap()).collect();
        let reqs: Vec<u64> = (0..3).map(|_| request_of(next_record(&mut rx))).collect();
        assert_eq!(tags, reqs);
        // The drainer may be asleep on the ring by now: each answer must wake it.
        for (i, req) in reqs.iter().enumerate() {
            put(&mut tx, Frame::Response { req: *req, body: reply(round + i as u8) });
        }
        let got = drainer.join().unwrap();
        assert_eq!(got.iter().map(|c| c.tag).collect::<Vec<_>>(), tags, "round {round}");
        for (i, c) in got.iter().enumerate() {
            assert_eq!(c.result.as_ref().unwrap(), &reply(round + i as u8));
        }
        // A caller waiting for its reply takes the ring from a drainer asleep on it.
        let drainer = drain(&client, 1);
        let tag = client.start_completion(call("later"), None).unwrap();
        let later = request_of(next_record(&mut rx));
        let caller = start(&client, call("now"));
        let now = request_of(next_record(&mut rx));
        put(&mut tx, Frame::Response { req: now, body: reply(7) });
        assert_eq!(caller.join().unwrap(), reply(7));
        put(&mut tx, Frame::Response { req: later, body: reply(8) });
        let got = drainer.join().unwrap();
        assert_eq!((got[0].tag, got[0].result.as_ref().unwrap()), (tag, &reply(8)));
    }
}

#[test]
fn a_deadline_and_an_answer_on_the_socket_end_a_drainer_asleep_on_the_rings() {
    let (client, mut s) = connected();
    let client = Arc::new(client);
    let warm = start(&client, call("warm"));
    let (mut tx, mut rx) = answer_route(&mut s, &[], std::process::id());
    put(&mut tx, Frame::Response { req: request_of(next_record(&mut rx)), body: reply(0) });
    assert_eq!(warm.join().unwrap(), reply(0));
    let drainer = drain(&client, 2);
    std::thread::sleep(crate::tests::SHORT); // asleep on the ring, with nothing due
    let timed = client.start_completion(call("slow"), Some(Instant::now() + crate::tests::SHORT)).unwrap();
    next_record(&mut rx);
    let socket = client.start_completion(rebeam_proto::Request::BocStats, None).unwrap();
    let (req, _) = crate::tests::request_id(&mut s);
    crate::tests::answer(&mut s, req, reply(5));
    let got = drainer.join().unwrap();
    let by_tag = |tag| got.iter().find(|c| c.tag == tag).expect("completed");
    assert_eq!(by_tag(socket).result.as_ref().unwrap(), &reply(5));
    assert!(matches!(by_tag(timed).result, Err(ClientError::Timeout)));
}

#[test]
fn the_peer_dying_answers_every_completion_in_flight_on_its_ring() {
    let (client, mut s) = connected();
    let client = Arc::new(client);
    let mut peer = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let warm = start(&client, call("warm"));
    let (mut tx, mut rx) = answer_route(&mut s, &[], peer.id());
    put(&mut tx, Frame::Response { req: request_of(next_record(&mut rx)), body: reply(0) });
    assert_eq!(warm.join().unwrap(), reply(0));
    let drainer = drain(&client, 2);
    let tags: Vec<u64> = (0..2).map(|_| client.start_completion(call("ping"), None).unwrap()).collect();
    for _ in 0..2 {
        next_record(&mut rx);
    }
    std::thread::sleep(crate::tests::SHORT); // the drainer asleep on the ring
    let why = "worker 1 (pid 1234) died: killed by SIGKILL".to_string();
    rebeam_proto::write_frame(&mut s, &Frame::Command(Command::ChannelClosed { channel: 1, why })).unwrap();
    peer.kill().unwrap();
    peer.wait().unwrap();
    let got = drainer.join().unwrap();
    assert_eq!(got.iter().map(|c| c.tag).collect::<Vec<_>>(), tags);
    for c in got {
        match c.result {
            Ok(Response::Call(Outcome::Failed(info))) => assert_eq!(info.kind, ErrorKind::ActorDown, "{info:?}"),
            other => panic!("expected ActorDown, got {other:?}"),
        }
    }
}
