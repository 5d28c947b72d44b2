//! A cast at once ([`Client::try_cast`]): what it puts on the ring, and every case it hands
//! back untouched to the full path (which may wait, go the governor's way, or drop).

use std::sync::Arc;

use rebeam_proto::{Command, Frame, Payload, Request, Response, Target};

use crate::direct_tests::{answer_route, call, cast, next_record, reply, start, WAIT};
use crate::tests::{connected, request_id};
use crate::Client;

/// The subjects of the next `n` records on the ring, each checked to be a cast to the actor.
fn casts_on_ring(rx: &mut rebeam_shm::Receiver, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| match next_record(rx) {
            Frame::Command(Command::Deliver { delivery: None, actor: 9, subject, .. }) => subject,
            other => panic!("expected a cast to actor 9 on the ring, got {other:?}"),
        })
        .collect()
}

/// A client with the route to "counter" cached (its first cast took the full path), the
/// test's ends of the channel, and the socket.
fn routed(gated: &[&str]) -> (Arc<Client>, std::os::unix::net::UnixStream, rebeam_shm::Sender, rebeam_shm::Receiver) {
    let (client, mut s) = connected();
    let client = Arc::new(client);
    let first = start(&client, cast("first"));
    let (tx, mut rx) = answer_route(&mut s, gated, std::process::id());
    assert_eq!(first.join().unwrap(), Response::Cast { delivered: true });
    assert_eq!(casts_on_ring(&mut rx, 1), ["first"]);
    (client, s, tx, rx)
}

#[test]
fn a_cast_with_no_route_known_yet_is_handed_back_untouched() {
    let (client, _s) = connected();
    assert_eq!(client.try_cast(cast("a")), Some(cast("a")));
    assert_eq!(client.try_cast(call("c")), Some(call("c")), "only casts");
}

#[test]
fn a_cast_at_once_goes_on_the_ring_in_order_with_the_full_paths_messages() {
    let (client, _s, _tx, mut rx) = routed(&[]);
    assert_eq!(client.try_cast(cast("a")), None);
    assert_eq!(client.request(cast("b"), Some(WAIT)).unwrap(), Response::Cast { delivered: true });
    assert_eq!(client.try_cast(cast("c")), None);
    assert_eq!(casts_on_ring(&mut rx, 3), ["a", "b", "c"]);
    assert!(rx.try_recv().unwrap().is_none(), "one record each");
}

#[test]
fn a_gated_subject_or_a_fenced_actor_takes_the_full_path() {
    let (client, mut s, _tx, mut rx) = routed(&["fire"]);
    assert_eq!(client.try_cast(cast("fire")), Some(cast("fire")));
    // Sent the full way, it goes to the governor and fences the actor: a later cast must
    // not overtake it on the ring.
    let fired = start(&client, cast("fire"));
    let (r1, b1) = request_id(&mut s);
    assert!(matches!(b1, Request::Cast { ref subject, .. } if subject == "fire"), "{b1:?}");
    crate::tests::answer(&mut s, r1, Response::Cast { delivered: true });
    fired.join().unwrap();
    assert_eq!(client.try_cast(cast("after")), Some(cast("after")), "fenced");
    // The actor's own answer to a call sent behind the fence lifts it.
    let lifting = start(&client, call("c"));
    let (r2, _) = request_id(&mut s);
    crate::tests::answer(&mut s, r2, reply(1));
    assert_eq!(lifting.join().unwrap(), reply(1));
    assert_eq!(client.try_cast(cast("direct")), None);
    assert_eq!(casts_on_ring(&mut rx, 1), ["direct"]);
}

#[test]
fn a_full_ring_hands_the_cast_back_and_the_full_path_waits_then_counts_a_drop() {
    let (client, _s, _tx, mut rx) = routed(&[]);
    let big = |subject: &str| Request::Cast {
        target: Target::Name("counter".into()),
        subject: subject.into(),
        sender: None,
        payload: Payload { data: vec![7; 512].into(), buffers: vec![] },
    };
    let mut sent = 0;
    let refused = loop {
        match client.try_cast(big(&sent.to_string())) {
            None => sent += 1,
            Some(back) => break back,
        }
        assert!(sent < 100, "a 4 KiB ring holds a few 512-byte casts");
    };
    assert!(sent > 0);
    assert_eq!(refused, big(&sent.to_string()), "handed back untouched");
    // Nobody reads: the full path waits for room, then drops it and counts the drop.
    assert_eq!(client.request(refused, Some(WAIT)).unwrap(), Response::Cast { delivered: false });
    assert_eq!(client.direct_drops(), 1);
    // Once the reader takes what is there, casts go at once again, in their order.
    let taken = casts_on_ring(&mut rx, sent);
    assert_eq!(taken, (0..sent).map(|i| i.to_string()).collect::<Vec<_>>());
    assert_eq!(client.try_cast(big("again")), None);
    assert_eq!(casts_on_ring(&mut rx, 1), ["again"]);
}

#[test]
fn a_closed_connection_hands_every_cast_back() {
    let (client, s, _tx, _rx) = routed(&[]);
    drop(s);
    let deadline = std::time::Instant::now() + WAIT;
    while !client.closed() {
        assert!(std::time::Instant::now() < deadline, "the reader sees the socket close");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(client.try_cast(cast("late")), Some(cast("late")));
}
