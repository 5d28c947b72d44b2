use super::*;

#[test]
fn a_call_loses_its_sender_and_keeps_the_rest() {
    let payload = rebeam_proto::Payload { data: Bytes::from_static(b"abc"), buffers: vec![Bytes::from_static(b"buf")] };
    let body = Request::Call {
        target: rebeam_proto::Target::Name("counter".into()),
        subject: "add".into(),
        sender: Some(7),
        payload: payload.clone(),
        timeout_ms: 1500,
    };
    let hot = Routed::from_frame(Frame::Request { req: 9, body }).expect("a call is hot");
    let frame = strip_sender(hot).into_frame();
    let want = Request::Call {
        target: rebeam_proto::Target::Name("counter".into()),
        subject: "add".into(),
        sender: None,
        payload,
        timeout_ms: 1500,
    };
    assert_eq!(frame, Frame::Request { req: 9, body: want });
}

#[test]
fn an_answer_names_its_query() {
    let info = ErrorInfo::new(ErrorKind::ActorDown, "gone");
    let frame = Frame::Response { req: 42, body: Response::Call(Outcome::Failed(info)) };
    let encoded = frame.into_encoded().expect("encodes").to_vec();
    assert_eq!(answer_query(&encoded), Some(42));
    assert_eq!(answer_query(&encoded[..2]), None, "a truncated frame names nothing");
    let ready = Frame::Ready.into_encoded().expect("encodes").to_vec();
    assert_eq!(answer_query(&ready), None, "only a response names a query");
}
