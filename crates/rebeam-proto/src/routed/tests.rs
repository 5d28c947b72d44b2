//! Hot frames against the frames they stand for, and forwarding by rewriting the header.

use super::*;
use crate::{decode_inbound, encode, Inbound, LentPiece, HEADER_BYTES};

fn payload() -> Payload {
    Payload { data: vec![0x80, 5].into(), buffers: vec![vec![7; 32].into(), Bytes::new()] }
}

fn call(target: Target, sender: Option<ActorId>) -> Frame {
    Frame::Request {
        req: 4,
        body: Request::Call { target, subject: "compute".into(), sender, payload: payload(), timeout_ms: 250 },
    }
}

/// Every shape of every hot frame.
fn hot_frames() -> Vec<Frame> {
    let reply = |status| Outcome::Reply { status, payload: payload() };
    let deliver = |delivery, sender| {
        Frame::Command(Command::Deliver { delivery, actor: 9, subject: "s".into(), sender, payload: payload() })
    };
    vec![
        call(Target::Name("counter".into()), None),
        call(Target::Actor(0), Some(0)),
        call(Target::Name(String::new()), Some(3)),
        Frame::Request {
            req: 1,
            body: Request::Cast { target: Target::Actor(8), subject: String::new(), sender: None, payload: payload() },
        },
        deliver(None, None),
        deliver(Some(0), Some(ActorRef { id: 2, name: None })),
        deliver(Some(6), Some(ActorRef { id: 2, name: Some("échos".into()) })),
        Frame::Event(Event::Replied { delivery: 6, outcome: reply(Status::Ok) }),
        Frame::Event(Event::Replied { delivery: 0, outcome: reply(Status::Error) }),
        Frame::Response { req: 4, body: Response::Call(reply(Status::Error)) },
        Frame::Response { req: 4, body: Response::Cast { delivered: true } },
        Frame::Response { req: 5, body: Response::Cast { delivered: false } },
    ]
}

fn read(frame: &Frame) -> Routed {
    match decode_inbound(Bytes::from(encode(frame).unwrap()).slice(HEADER_BYTES..)).unwrap() {
        Inbound::Hot(hot) => hot,
        Inbound::Frame(f) => panic!("not hot: {f:?}"),
    }
}

#[test]
fn every_hot_frame_comes_back_as_itself() {
    for frame in hot_frames() {
        assert!(Routed::is_hot(&frame));
        let hot = Routed::from_frame(frame.clone()).unwrap();
        assert_eq!(hot.clone().into_frame(), frame);
        assert_eq!(read(&frame), hot, "{frame:?}");
    }
}

#[test]
fn other_frames_are_given_back() {
    let failed = Outcome::Failed(crate::ErrorInfo::new(crate::ErrorKind::Crashed, "boom"));
    for frame in [
        Frame::Ready,
        Frame::Event(Event::Replied { delivery: 1, outcome: failed.clone() }),
        Frame::Response { req: 1, body: Response::Call(failed) },
        Frame::Response { req: 1, body: Response::Done },
    ] {
        assert!(!Routed::is_hot(&frame));
        assert_eq!(Routed::from_frame(frame.clone()), Err(frame));
    }
}

#[test]
fn a_call_reads_its_routing_fields_from_the_header() {
    let hot = read(&call(Target::Name("counter".into()), Some(3)));
    assert_eq!(hot.kind(), Kind::Call);
    assert_eq!(hot.target(), TargetRef::Name("counter"));
    assert_eq!(hot.target().to_string(), Target::Name("counter".into()).to_string());
    assert_eq!(hot.target_label().to_string(), "'counter'");
    assert_eq!(read(&call(Target::Actor(9), None)).target_label().to_string(), Target::Actor(9).to_string());
    assert_eq!((hot.subject(), hot.sender(), hot.request(), hot.timeout_ms()), ("compute", Some(3), 4, 250));
    assert_eq!(hot.payload_len(), payload().len());
}

#[test]
fn a_forwarded_call_is_its_delivery_with_the_same_pieces() {
    let hot = read(&call(Target::Name("counter".into()), Some(3)));
    let read_at: Vec<_> = hot.pieces().iter().map(|p| p.as_ptr()).collect();
    let delivery = hot.into_delivery(9, Some(12), Some("client"));
    let sent_at: Vec<_> = delivery.pieces().iter().map(|p| p.as_ptr()).collect();
    assert_eq!(sent_at, read_at, "the payload was copied");
    let expected = Frame::Command(Command::Deliver {
        delivery: Some(12),
        actor: 9,
        subject: "compute".into(),
        sender: Some(ActorRef { id: 3, name: Some("client".into()) }),
        payload: payload(),
    });
    assert_eq!(delivery.into_frame(), expected);
    // A sender that is a process, not an actor, has no name to carry.
    let anonymous = read(&call(Target::Actor(9), None)).into_delivery(9, None, Some("ignored"));
    let Frame::Command(Command::Deliver { sender, delivery, .. }) = anonymous.into_frame() else { panic!() };
    assert_eq!((sender, delivery), (None, None));
}

#[test]
fn a_forwarded_reply_is_the_callers_answer_with_the_same_pieces() {
    let replied = Frame::Event(Event::Replied {
        delivery: 12,
        outcome: Outcome::Reply { status: Status::Error, payload: payload() },
    });
    let hot = read(&replied);
    assert_eq!(hot.delivery(), Some(12));
    let read_at = hot.pieces()[1].as_ptr();
    let answer = hot.into_call_reply(4);
    assert_eq!(answer.pieces()[1].as_ptr(), read_at, "the payload was copied");
    let expected =
        Frame::Response { req: 4, body: Response::Call(Outcome::Reply { status: Status::Error, payload: payload() }) };
    assert_eq!(answer.into_frame(), expected);
    assert_eq!(
        Routed::cast_answer(7, true).into_frame(),
        Frame::Response { req: 7, body: Response::Cast { delivered: true } }
    );
}

proptest::proptest! {
    #[test]
    fn any_call_read_and_forwarded_is_its_delivery(
        name in proptest::option::of("\\PC{0,12}"),
        id in proptest::num::u64::ANY,
        subject in "\\PC{0,24}",
        sender in proptest::option::of(proptest::num::u64::ANY),
        sender_name in proptest::option::of("[a-z]{0,8}"),
        delivery in proptest::option::of(proptest::num::u64::ANY),
        buffers in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..64), 0..4),
    ) {
        let target = name.map_or(Target::Actor(id), Target::Name);
        let payload = Payload { data: vec![0x80, 5].into(), buffers: buffers.into_iter().map(Bytes::from).collect() };
        let body = Request::Call { target, subject: subject.clone(), sender, payload: payload.clone(), timeout_ms: id };
        let hot = read(&Frame::Request { req: id, body });
        let forwarded = hot.into_delivery(id, delivery, sender_name.as_deref()).encode().unwrap().to_vec();
        let got = crate::decode_body(&forwarded[HEADER_BYTES..]).unwrap();
        let sender = sender.map(|s| ActorRef { id: s, name: sender_name });
        let expected = Frame::Command(Command::Deliver { delivery, actor: id, subject, sender, payload });
        proptest::prop_assert_eq!(got, expected);
    }
}

fn lent_call() -> Routed {
    let mut call = Routed::from_frame(call(Target::Actor(5), Some(2))).unwrap();
    call.pieces[2] = Bytes::new();
    call.lend(&[LentPiece { piece: 2, segment_len: 8192, len: 100, slot: 1 }]).unwrap()
}

#[test]
fn a_lent_call_reads_back_and_its_delivery_lends_the_same_pieces() {
    let call = lent_call();
    assert_eq!(call.lent(), 1);
    let bytes = Bytes::from(call.clone().encode().unwrap().to_vec()).slice(HEADER_BYTES..);
    let Inbound::Hot(read) = decode_inbound(bytes).unwrap() else { panic!("not hot") };
    assert_eq!(read, call);
    let delivery = read.into_delivery(9, Some(4), None);
    assert_eq!((delivery.lent(), delivery.loans().unwrap()), (1, call.loans().unwrap()));
    let plain = Routed::from_frame(call.clone().into_delivery(9, None, None).into_frame()).unwrap();
    assert_eq!(plain.lent(), 0, "a frame does not carry loans: the table is only its last buffer");
}

#[test]
fn only_calls_and_casts_lend_and_a_lent_frame_with_a_bad_table_is_malformed() {
    let reply = Routed::from_frame(Frame::Response {
        req: 1,
        body: Response::Call(Outcome::Reply { status: Status::Ok, payload: payload() }),
    })
    .unwrap();
    assert!(reply.lend(&[]).is_err());
    assert!(lent_call().lend(&[]).is_err(), "lends already");
    let no_room = Routed::from_frame(call(Target::Actor(5), None)).unwrap();
    assert!(no_room.lend(&[LentPiece { piece: 1, segment_len: 1, len: 1, slot: 0 }]).is_err(), "piece 1 has bytes");
    // The flag without a table, as a peer might send it.
    let mut bytes = Routed::from_frame(call(Target::Actor(5), None)).unwrap().encode().unwrap().to_vec();
    bytes[6] |= FLAG_LENT as u8;
    assert!(matches!(decode_inbound(Bytes::from(bytes).slice(HEADER_BYTES..)), Err(ProtoError::Malformed(_))));
}

fn lent_reply() -> Routed {
    let replied = Frame::Event(Event::Replied {
        delivery: 6,
        outcome: Outcome::Reply { status: Status::Error, payload: payload() },
    });
    let mut reply = Routed::from_frame(replied).unwrap();
    reply.pieces[1] = Bytes::new();
    reply.lend(&[LentPiece { piece: 1, segment_len: 8192, len: 32, slot: 2 }]).unwrap()
}

#[test]
fn a_lent_reply_reads_back_and_its_answer_lends_the_same_pieces() {
    let reply = lent_reply();
    let bytes = Bytes::from(reply.clone().encode().unwrap().to_vec()).slice(HEADER_BYTES..);
    let Inbound::Hot(read) = decode_inbound(bytes).unwrap() else { panic!("not hot") };
    assert_eq!(read, reply);
    let answer = read.into_call_reply(11);
    let bytes = Bytes::from(answer.clone().encode().unwrap().to_vec()).slice(HEADER_BYTES..);
    let Inbound::Hot(answer) = decode_inbound(bytes).unwrap() else { panic!("not hot") };
    assert_eq!((answer.kind(), answer.request(), answer.lent()), (Kind::CallReply, 11, 1));
    assert_eq!(answer.loans().unwrap(), reply.loans().unwrap());
    let Frame::Response { body: Response::Call(Outcome::Reply { status, .. }), .. } = answer.into_frame() else {
        panic!("not a call's answer")
    };
    assert_eq!(status, Status::Error, "the status survives the loan");
}

#[test]
fn a_delivered_call_names_its_callers_pid_and_nothing_else_does() {
    let call = Routed::from_frame(call(Target::Actor(5), Some(2))).unwrap();
    let delivery = call.clone().into_delivery(9, Some(4), None).with_caller_pid(4321);
    let bytes = Bytes::from(delivery.encode().unwrap().to_vec()).slice(HEADER_BYTES..);
    let Inbound::Hot(read) = decode_inbound(bytes).unwrap() else { panic!("not hot") };
    assert_eq!(read.caller_pid(), Some(4321));
    let Frame::Command(Command::Deliver { delivery: Some(4), actor: 9, .. }) = read.into_frame() else {
        panic!("not the delivery")
    };
    let cast = call.clone().into_delivery(9, None, None).with_caller_pid(4321);
    assert_eq!(cast.caller_pid(), None, "a delivery nobody answers names no caller");
    assert_eq!(call.caller_pid(), None);
    assert_eq!(call.into_delivery(9, Some(4), None).with_caller_pid(0).caller_pid(), None);
    // A pid on a delivery nobody answers, as a peer might send it, is malformed.
    let mut bytes = Routed::from_frame(call_cast_delivery()).unwrap().encode().unwrap().to_vec();
    bytes[40..48].copy_from_slice(&7u64.to_le_bytes());
    assert!(matches!(decode_inbound(Bytes::from(bytes).slice(HEADER_BYTES..)), Err(ProtoError::Malformed(_))));
}

fn call_cast_delivery() -> Frame {
    Frame::Command(Command::Deliver { delivery: None, actor: 9, subject: "s".into(), sender: None, payload: payload() })
}

#[test]
fn a_direct_reply_names_its_channel_and_request_and_its_answer_neither() {
    let replied = Frame::Event(Event::Replied {
        delivery: 6,
        outcome: Outcome::Reply { status: Status::Ok, payload: payload() },
    });
    let plain = Routed::from_frame(replied).unwrap();
    assert_eq!(plain.direct_reply(), None);
    let direct = plain.clone().into_direct_reply(12, 34);
    let wire = direct.clone().encode().unwrap().to_vec();
    let Inbound::Hot(read) = decode_inbound(Bytes::from(wire.clone()).slice(HEADER_BYTES..)).unwrap() else {
        panic!("not hot")
    };
    assert_eq!((read.direct_reply(), read.delivery()), (Some((12, 34)), Some(0)));
    let answer = read.into_call_reply(34);
    assert_eq!((answer.kind(), answer.request(), answer.direct_reply()), (Kind::CallReply, 34, None));
    // A direct reply with a delivery id, or a plain one with a channel, is malformed.
    let mut with_delivery = wire.clone();
    with_delivery[32..40].copy_from_slice(&6u64.to_le_bytes());
    let mut plain_with_target = plain.encode().unwrap().to_vec();
    plain_with_target[24..32].copy_from_slice(&12u64.to_le_bytes());
    for bytes in [with_delivery, plain_with_target] {
        assert!(matches!(decode_inbound(Bytes::from(bytes).slice(HEADER_BYTES..)), Err(ProtoError::Malformed(_))));
    }
    assert_eq!(Routed::from_frame(call(Target::Actor(5), None)).unwrap().into_direct_reply(1, 2).direct_reply(), None);
}

#[test]
fn a_cast_delivery_from_borrowed_parts_is_the_one_encoded_from_the_frame() {
    let senders = [None, Some((9, None)), Some((9, Some("logger")))];
    let payloads = [payload(), Payload { data: vec![0x80].into(), buffers: Vec::new() }, Payload::default()];
    let mut out = vec![0xAA; 3]; // appended to, not overwritten
    for sender in senders {
        for payload in payloads.clone() {
            let name = |n: Option<&str>| n.map(str::to_owned);
            let frame = Frame::Command(Command::Deliver {
                delivery: None,
                actor: 31,
                subject: "note".into(),
                sender: sender.map(|(id, n)| ActorRef { id, name: name(n) }),
                payload: payload.clone(),
            });
            out.truncate(3);
            Routed::write_cast_delivery(&mut out, 31, "note", sender, &payload).unwrap();
            out.extend(std::iter::once(&payload.data).chain(&payload.buffers).flat_map(|p| p.iter().copied()));
            assert_eq!(out[..3], [0xAA; 3]);
            assert_eq!(out[3..], encode(&frame).unwrap()[..], "sender {sender:?}, payload {payload:?}");
        }
    }
}
