//! Bus topics across nodes on a router with the fake OS (see node.rs's rules).

use rebeam_proto::{Command, Frame, Payload, Request, Response};

use super::fake::FakeOs;
use super::nodes::{decoded, encoded, node_router};
use super::regressions::{connect, frames};
use crate::node::{NodeIn, NodeOut};
use crate::router::Input;

fn publication(topic: &str, data: &'static [u8]) -> Request {
    let payload = Payload { data: bytes::Bytes::from_static(data), buffers: vec![] };
    Request::Publish { topic: topic.into(), payload }
}

fn publications(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Command(Command::Publication { topic, .. }) => Some(topic.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_publication_here_goes_to_the_other_nodes_and_one_from_them_is_delivered_here_only() {
    let os = FakeOs::default();
    let (mut router, mut out) = node_router(&os);
    let main = router.main;
    let mut conn = connect(&mut router, main, 1 << 20);
    let subscribe = Request::Subscribe { actor: None, pattern: "news.*".into(), throttle_ms: 0, queue: 64 };
    router.handle(Input::Frame(main, Frame::Request { req: 1, body: subscribe }));
    router.handle(Input::Frame(main, Frame::Request { req: 2, body: publication("news.here", b"1") }));
    let Ok(NodeOut::Publish { frame }) = out.try_recv() else { panic!("the publication did not go out") };
    assert_eq!(decoded(&frame), Frame::Request { req: 0, body: publication("news.here", b"1") });
    router.handle(Input::Node(NodeIn::Publication { from: "b".into(), frame: encoded(publication("news.far", b"2")) }));
    let got = frames(&mut conn);
    assert!(got.contains(&Frame::Response { req: 2, body: Response::Done }), "{got:?}");
    assert_eq!(publications(&got), ["news.here", "news.far"]);
    assert!(out.try_recv().is_err(), "a publication from another node is not sent on");
}

#[test]
fn another_node_cannot_publish_under_a_reserved_prefix_here() {
    let os = FakeOs::default();
    let (mut router, mut out) = node_router(&os);
    let main = router.main;
    let mut conn = connect(&mut router, main, 1 << 20);
    let subscribe = Request::Subscribe { actor: None, pattern: "safety.*".into(), throttle_ms: 0, queue: 64 };
    router.handle(Input::Frame(main, Frame::Request { req: 1, body: subscribe }));
    let frame = encoded(publication("safety.transition", b"armed"));
    router.handle(Input::Node(NodeIn::Publication { from: "b".into(), frame }));
    router.handle(Input::Node(NodeIn::Publication { from: "b".into(), frame: bytes::Bytes::from_static(b"junk") }));
    assert!(publications(&frames(&mut conn)).is_empty(), "a reserved topic is the governor's own");
    // The governor's own publications stay on its node.
    router.publish_as_host("safety.transition", Payload::default());
    assert_eq!(publications(&frames(&mut conn)), ["safety.transition"]);
    assert!(out.try_recv().is_err(), "the governor's publications do not cross nodes");
}
