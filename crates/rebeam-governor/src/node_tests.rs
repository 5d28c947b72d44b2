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

/// Whether `next_input` has an input at its first poll.
async fn ready_now(inputs: &mut Option<mpsc::UnboundedReceiver<NodeIn>>) -> Option<NodeIn> {
    tokio::select! {
        biased;
        input = next_input(inputs) => Some(input),
        () = std::future::ready(()) => None,
    }
}

#[tokio::test]
async fn the_router_reads_the_transports_inputs_in_order_and_none_once_it_is_gone() {
    let (out, _outputs) = mpsc::unbounded_channel();
    let (to_router, inputs) = mpsc::unbounded_channel();
    let (_link, inputs) =
        attach(Seam { out, inputs, name: "a".into(), window: Arc::new(Closed), now: Arc::new(Queued) });
    let mut inputs = Some(inputs);
    to_router.send(NodeIn::Up(vec!["a".into()])).expect("open");
    to_router
        .send(NodeIn::Answer { call: 3, outcome: Outcome::Failed(ErrorInfo::new(ErrorKind::ActorDown, "gone")) })
        .expect("open");
    assert!(matches!(ready_now(&mut inputs).await, Some(NodeIn::Up(up)) if up == ["a"]));
    assert!(matches!(ready_now(&mut inputs).await, Some(NodeIn::Answer { call: 3, .. })));
    assert!(ready_now(&mut inputs).await.is_none(), "nothing more was sent");
    drop(to_router);
    assert!(ready_now(&mut inputs).await.is_none(), "a transport that is gone sends nothing, ever");
    assert!(ready_now(&mut None).await.is_none(), "a run that is not a node has no inputs");
}
