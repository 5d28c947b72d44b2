//! Completions against the fake governor of `tests`: each request ends exactly once on the
//! queue, whether answered, timed out by the backstop, forgotten, or cut off by the close.

use std::time::{Duration, Instant};

use rebeam_proto::{Request, Response};

use crate::tests::{answer, connected, request_id, SHORT};
use crate::{ClientError, Completion};

/// A backstop that must not fire during a test.
const FAR: Duration = Duration::from_secs(600);

fn ok(c: Completion) -> (u64, Response) {
    (c.tag, c.result.expect("a response"))
}

#[test]
fn completions_carry_their_own_tags_whatever_the_order() {
    let (client, mut s) = connected();
    let first = client.start_completion(Request::BocStats, None).unwrap();
    let second = client.start_completion(Request::BocStats, Some(Instant::now() + FAR)).unwrap();
    let (r1, _) = request_id(&mut s);
    let (r2, _) = request_id(&mut s);
    assert_eq!((r1, r2), (first, second));
    answer(&mut s, r2, Response::Updated(false));
    answer(&mut s, r1, Response::Updated(true));
    assert_eq!(ok(client.next_completion(None).unwrap()), (second, Response::Updated(false)));
    assert_eq!(ok(client.next_completion(None).unwrap()), (first, Response::Updated(true)));
    assert!(matches!(client.next_completion(Some(SHORT)), Err(ClientError::Timeout)));
}

#[test]
fn waiters_and_completions_share_the_connection() {
    let (client, mut s) = connected();
    let tag = client.start_completion(Request::BocStats, None).unwrap();
    let waiter = client.start_request(Request::BocStats).unwrap();
    let (r1, _) = request_id(&mut s);
    let (r2, _) = request_id(&mut s);
    answer(&mut s, r2, Response::Done);
    answer(&mut s, r1, Response::Updated(true));
    assert_eq!(waiter.wait(None).unwrap(), Response::Done);
    assert_eq!(ok(client.next_completion(None).unwrap()), (tag, Response::Updated(true)));
}

#[test]
fn a_forgotten_request_completes_never_and_its_late_answer_is_dropped() {
    let (client, mut s) = connected();
    let dropped = client.start_completion(Request::BocStats, Some(Instant::now() + SHORT)).unwrap();
    let kept = client.start_completion(Request::BocStats, None).unwrap();
    let (r1, _) = request_id(&mut s);
    let (r2, _) = request_id(&mut s);
    assert!(client.forget(dropped));
    assert!(!client.forget(dropped), "forgotten twice");
    answer(&mut s, r1, Response::Updated(true));
    answer(&mut s, r2, Response::Done);
    assert_eq!(ok(client.next_completion(None).unwrap()), (kept, Response::Done));
    // Neither the late answer nor the passed deadline brings the forgotten one back.
    std::thread::sleep(SHORT);
    assert!(matches!(client.next_completion(Some(SHORT)), Err(ClientError::Timeout)));
    assert!(!client.forget(kept), "a completion already queued cannot be forgotten");
}

#[test]
fn no_answer_by_the_deadline_completes_with_timeout_and_a_late_answer_is_dropped() {
    let (client, mut s) = connected();
    let tag = client.start_completion(Request::BocStats, Some(Instant::now() + SHORT)).unwrap();
    let (req, _) = request_id(&mut s);
    let c = client.next_completion(None).unwrap();
    assert_eq!(c.tag, tag);
    assert!(matches!(c.result, Err(ClientError::Timeout)), "{:?}", c.result);
    answer(&mut s, req, Response::Done);
    assert!(matches!(client.next_completion(Some(SHORT)), Err(ClientError::Timeout)));
}

#[test]
fn an_earlier_deadline_wakes_a_consumer_blocked_for_ever() {
    let (client, mut s) = connected();
    std::thread::scope(|scope| {
        let consumer = scope.spawn(|| client.next_completion(None));
        // Give the consumer time to block with nothing to wait for; then a deadline arrives.
        std::thread::sleep(SHORT);
        let tag = client.start_completion(Request::BocStats, Some(Instant::now() + SHORT)).unwrap();
        let c = consumer.join().unwrap().unwrap();
        assert_eq!(c.tag, tag);
        assert!(matches!(c.result, Err(ClientError::Timeout)));
    });
    request_id(&mut s);
}

#[test]
fn the_close_completes_every_outstanding_request_with_gone_then_ends_the_queue() {
    let (client, mut s) = connected();
    let answered = client.start_completion(Request::BocStats, None).unwrap();
    let mut cut_off = vec![
        client.start_completion(Request::BocStats, None).unwrap(),
        client.start_completion(Request::BocStats, Some(Instant::now() + FAR)).unwrap(),
    ];
    let (req, _) = request_id(&mut s);
    answer(&mut s, req, Response::Done);
    std::thread::scope(|scope| {
        let consumer = scope.spawn(|| {
            let mut got = Vec::new();
            loop {
                match client.next_completion(None) {
                    Ok(c) => got.push(c),
                    Err(ClientError::Closed) => return got,
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
        });
        std::thread::sleep(SHORT);
        drop(s);
        let got = consumer.join().unwrap();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!((got[0].tag, got[0].result.as_ref().ok()), (answered, Some(&Response::Done)));
        let mut gone: Vec<u64> = got[1..].iter().map(|c| c.tag).collect();
        assert!(got[1..].iter().all(|c| matches!(c.result, Err(ClientError::Gone))), "{got:?}");
        gone.sort_unstable();
        cut_off.sort_unstable();
        assert_eq!(gone, cut_off);
    });
    assert!(matches!(client.start_completion(Request::BocStats, None), Err(ClientError::Closed)));
    assert!(matches!(client.next_completion(Some(SHORT)), Err(ClientError::Closed)));
}

#[test]
fn a_consumer_blocked_for_ever_on_an_empty_queue_ends_at_the_close() {
    let (client, s) = connected();
    std::thread::scope(|scope| {
        let consumer = scope.spawn(|| client.next_completion(None));
        std::thread::sleep(SHORT);
        drop(s);
        assert!(matches!(consumer.join().unwrap(), Err(ClientError::Closed)));
    });
}
