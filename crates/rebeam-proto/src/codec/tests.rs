//! The codec against well-formed, cut, padded, lying and random input.

use super::*;
use crate::header::{Fixed, Kind, LANE_GOVERNOR};
use crate::*;
use bytes::Bytes;

fn sample_frames() -> Vec<Frame> {
    let payload = Payload { data: vec![1, 2, 3].into(), buffers: vec![vec![9; 1000].into(), Bytes::new()] };
    vec![
        Frame::Hello { version: PROTOCOL_VERSION, role: Role::Worker, token: "t0k".into(), pid: 42 },
        Frame::Welcome { index: 3, max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES, workers: 2 },
        Frame::Ready,
        Frame::Request {
            req: 7,
            body: Request::Call {
                target: Target::Name("counter".into()),
                subject: "increment".into(),
                sender: Some(5),
                payload: payload.clone(),
                timeout_ms: 5000,
            },
        },
        Frame::Response {
            req: 7,
            body: Response::Call(Outcome::Reply { status: Status::Ok, payload: payload.clone() }),
        },
        Frame::Response {
            req: 8,
            body: Response::Call(Outcome::Failed(ErrorInfo {
                kind: ErrorKind::Crashed,
                message: "division by zero".into(),
                exc_type: Some("ZeroDivisionError".into()),
                traceback: Some("Traceback ...".into()),
            })),
        },
        Frame::Command(Command::Deliver {
            delivery: Some(1),
            actor: 9,
            subject: "s".into(),
            sender: Some(ActorRef { id: 2, name: None }),
            payload,
        }),
        Frame::Request {
            req: 1,
            body: Request::StartTree {
                spec: TreeSpec {
                    name: Some("root".into()),
                    strategy: Strategy::OneForAll,
                    max_restarts: 3,
                    max_seconds_ms: 5000,
                    children: vec![
                        ChildSpec {
                            name: Some("a".into()),
                            label: "A".into(),
                            restart: Restart::Permanent,
                            shutdown_ms: Some(5000),
                            code: ChildCode::Script { path: "x.py".into() },
                            group: None,
                            node: Placement::Nodes(vec!["b".into(), "c".into()]),
                        },
                        ChildSpec {
                            name: None,
                            label: "A".into(),
                            restart: Restart::Permanent,
                            shutdown_ms: Some(5000),
                            code: ChildCode::Script { path: "x.py".into() },
                            group: Some(GroupSlot {
                                name: "pool".into(),
                                position: 1,
                                size: 3,
                                balance: Balance::LeastBusy,
                            }),
                            node: Placement::Any,
                        },
                    ],
                },
            },
        },
        Frame::Event(Event::Exited { actor: 9, reason: Exit::Killed("SIGSEGV".into()), taken_up_to: 41 }),
        Frame::Event(Event::BodyDone { error: None, exit: None }),
    ]
}

#[test]
fn every_frame_round_trips_through_blocking_io() {
    for frame in sample_frames() {
        let bytes = encode(&frame).unwrap();
        let back = read_frame(&mut &bytes[..], DEFAULT_MAX_MESSAGE_BYTES).unwrap();
        assert_eq!(back, frame);
    }
}

#[test]
fn decoder_reassembles_frames_split_at_every_byte() {
    let frames = sample_frames();
    let stream: Vec<u8> = frames.iter().flat_map(|f| encode(f).unwrap()).collect();
    let mut dec = FrameDecoder::new(DEFAULT_MAX_MESSAGE_BYTES);
    let mut got = Vec::new();
    for b in &stream {
        dec.push(std::slice::from_ref(b));
        while let Some(f) = dec.next_frame().unwrap() {
            got.push(f);
        }
    }
    assert_eq!(got, frames);
    assert_eq!(dec.pending(), 0);
}

#[test]
fn oversized_length_prefix_is_refused_before_allocating() {
    let mut bytes = (u32::MAX).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"garbage");
    match read_frame(&mut &bytes[..], 1024) {
        Err(ProtoError::TooLarge { len, limit }) => {
            assert_eq!(len, u32::MAX as u64);
            assert_eq!(limit, 1024);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let mut dec = FrameDecoder::new(1024);
    dec.push(&bytes);
    assert!(matches!(dec.next_frame(), Err(ProtoError::TooLarge { .. })));
}

#[test]
fn garbage_body_is_malformed() {
    let body = b"\xff\xfe\xfd\xfc this is not a frame";
    let mut bytes = (body.len() as u32).to_le_bytes().to_vec();
    bytes.extend_from_slice(body);
    assert!(matches!(read_frame(&mut &bytes[..], 1024), Err(ProtoError::Malformed(_))));
}

#[test]
fn lying_inner_length_does_not_allocate_past_the_frame() {
    // A Payload whose Vec length claims 2^60 bytes inside a 20-byte frame.
    let mut body = vec![3u8]; // Frame::Request variant index
    body.extend_from_slice(&[0xff; 19]);
    let mut bytes = (body.len() as u32).to_le_bytes().to_vec();
    bytes.extend_from_slice(&body);
    assert!(matches!(read_frame(&mut &bytes[..], 1024), Err(ProtoError::Malformed(_))));
}

#[test]
fn truncation_and_clean_close_are_told_apart() {
    assert!(matches!(read_frame(&mut &[][..], 1024), Err(ProtoError::Closed)));
    let bytes = encode(&Frame::Ready).unwrap();
    let cut = &bytes[..bytes.len() - 1];
    let cut = if cut.len() == HEADER_BYTES { &bytes[..2] } else { cut };
    assert!(matches!(read_frame(&mut &cut[..], 1024), Err(ProtoError::Truncated { .. })));
}

#[test]
fn lying_length_inside_the_header_does_not_allocate_past_it() {
    // A well-formed header length, then a Frame::Request whose inner lengths claim 2^60.
    let mut body = 16u32.to_le_bytes().to_vec();
    body.push(3);
    body.extend_from_slice(&[0xff; 15]);
    let mut bytes = (body.len() as u32).to_le_bytes().to_vec();
    bytes.extend_from_slice(&body);
    assert!(matches!(read_frame(&mut &bytes[..], 1024), Err(ProtoError::Malformed(_))));
}

/// A bincode frame's body (a publication, whose payload is two pieces) with its piece table
/// replaced by `lens`.
fn body_with_lens(lens: &[u64], pieces: &[u8]) -> Vec<u8> {
    let frame = Frame::Command(Command::Publication {
        subscription: 1,
        actor: None,
        topic: "t".into(),
        payload: Payload { data: Bytes::new(), buffers: vec![Bytes::new()] },
        dropped: 0,
    });
    let body = options(1 << 20).serialize(&frame).unwrap();
    let fixed = Fixed { body: body.len() as u32, pieces: lens.len() as u32, ..Fixed::new(Kind::Bincode) };
    let mut out = Vec::new();
    fixed.write(0, &mut out);
    out.drain(..HEADER_BYTES);
    out.extend_from_slice(&body);
    lens.iter().for_each(|l| out.extend_from_slice(&l.to_le_bytes()));
    out.extend_from_slice(pieces);
    out
}

#[test]
fn piece_lengths_must_match_the_payloads_and_fill_the_body() {
    assert!(decode_body(&body_with_lens(&[2, 3], b"abcde")).is_ok());
    for (lens, pieces) in [
        (&[2u64, 3][..], &b"abcd"[..]), // past the end
        (&[2, 3], b"abcdef"),           // bytes left over
        (&[5], b"abcde"),               // a length missing
        (&[2, 3, 0], b"abcde"),         // a length too many
        (&[u64::MAX, 1], b"abcde"),     // overflows
    ] {
        let got = decode_body(&body_with_lens(lens, pieces));
        assert!(matches!(got, Err(ProtoError::Malformed(_))), "{lens:?} {got:?}");
    }
}

#[test]
fn decoded_payloads_are_slices_of_the_read_buffer() {
    let frame = &sample_frames()[6];
    let bytes = Bytes::from(encode(frame).unwrap());
    let body = bytes.slice(HEADER_BYTES..);
    let range = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
    let Frame::Command(Command::Deliver { payload, .. }) = decode_frame(body.clone()).unwrap() else {
        panic!("a Deliver")
    };
    assert_eq!(payload.buffers[0].len(), 1000);
    assert!(range.contains(&(payload.buffers[0].as_ptr() as usize)), "the payload was copied");
    let mut dec = FrameDecoder::new(DEFAULT_MAX_MESSAGE_BYTES);
    dec.push(&bytes);
    let Some(Frame::Command(Command::Deliver { payload, .. })) = dec.next_frame().unwrap() else { panic!("a Deliver") };
    assert_eq!(payload.buffers[0], vec![9u8; 1000]);
}

/// Takes at most 3 bytes per write, and counts the writes.
struct Trickle(Vec<u8>, usize);

impl std::io::Write for Trickle {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        self.1 += 1;
        let flat: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).take(3).collect();
        self.0.extend_from_slice(&flat);
        Ok(flat.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn vectored_writes_resume_after_short_writes() {
    for frame in sample_frames() {
        let mut w = Trickle(Vec::new(), 0);
        write_frame(&mut w, &frame).unwrap();
        assert_eq!(w.0, encode(&frame).unwrap());
        assert_eq!(w.1, w.0.len().div_ceil(3));
    }
}

/// Offsets of the fixed header's four u32 lengths (subject, name, body, pieces) in a frame.
const LENGTH_FIELDS: [usize; 4] = [8, 12, 16, 20];
/// Offset of the kind byte in a frame.
const KIND_AT: usize = 5;

#[test]
fn the_frames_of_a_call_are_hot_and_the_rest_bincode() {
    for frame in sample_frames() {
        let bytes = encode(&frame).unwrap();
        let kind = bytes[KIND_AT];
        assert_eq!(kind != Kind::Bincode as u8, Routed::is_hot(&frame), "{frame:?}");
        let Inbound::Hot(hot) = decode_inbound(Bytes::from(bytes).slice(HEADER_BYTES..)).unwrap() else { continue };
        assert_eq!(hot.kind() as u8, kind);
        assert_eq!(hot.into_frame(), frame);
    }
}

#[test]
fn a_hot_frame_in_a_bincode_body_is_malformed() {
    let call = sample_frames().swap_remove(3);
    let body = options(1 << 20).serialize(&call).unwrap();
    let fixed = Fixed { body: body.len() as u32, pieces: 2, ..Fixed::new(Kind::Bincode) };
    let mut bytes = Vec::new();
    fixed.write(0, &mut bytes);
    bytes.drain(..HEADER_BYTES);
    bytes.extend_from_slice(&body);
    [3u64, 0].iter().for_each(|l| bytes.extend_from_slice(&l.to_le_bytes()));
    bytes.extend_from_slice(&[1, 2, 3]);
    assert!(matches!(decode_body(&bytes), Err(ProtoError::Malformed(_))));
}

#[test]
fn a_subject_that_is_not_utf8_is_malformed() {
    let mut bytes = encode(&sample_frames()[3]).unwrap();
    // The subject opens the variable part, right after the fixed header.
    bytes[FIXED_HEADER_BYTES] = 0xff;
    assert!(matches!(decode_body(&bytes[HEADER_BYTES..]), Err(ProtoError::Malformed(_))));
}

#[test]
fn each_length_one_off_is_malformed() {
    let bytes = encode(&sample_frames()[3]).unwrap();
    for at in LENGTH_FIELDS {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        for lie in [len.wrapping_sub(1), len + 1] {
            let mut lying = bytes.clone();
            lying[at..at + 4].copy_from_slice(&lie.to_le_bytes());
            let got = decode_body(&lying[HEADER_BYTES..]);
            assert!(matches!(got, Err(ProtoError::Malformed(_))), "field at {at} = {lie}: {got:?}");
        }
    }
}

/// Random fixed-header fields: mostly refused by the kind's rules, sometimes a frame.
fn random_header() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    (0u8..8, any::<u16>(), proptest::collection::vec(0u32..24, 4), proptest::collection::vec(0u64..3, 5)).prop_map(
        |(kind, flags, lens, ids)| {
            let mut out = vec![0; HEADER_BYTES];
            out.push(LANE_GOVERNOR);
            out.push(kind);
            out.extend_from_slice(&flags.to_le_bytes());
            lens.iter().for_each(|n| out.extend_from_slice(&n.to_le_bytes()));
            ids.iter().for_each(|n| out.extend_from_slice(&n.to_le_bytes()));
            out
        },
    )
}

proptest::proptest! {
    #[test]
    fn lying_lengths_in_the_fixed_header_never_read_past_the_frame(field in 0usize..4, len in proptest::num::u32::ANY) {
        let bytes = encode(&sample_frames()[3]).unwrap();
        let at = LENGTH_FIELDS[field];
        let mut lying = bytes.clone();
        lying[at..at + 4].copy_from_slice(&len.to_le_bytes());
        let got = decode_body(&lying[HEADER_BYTES..]);
        if len as usize > bytes.len() {
            proptest::prop_assert!(matches!(got, Err(ProtoError::Malformed(_))), "{len}: {got:?}");
        }
    }

    #[test]
    fn unknown_kinds_are_malformed(kind in 7u8..) {
        let mut bytes = encode(&sample_frames()[3]).unwrap();
        bytes[KIND_AT] = kind;
        proptest::prop_assert!(matches!(decode_body(&bytes[HEADER_BYTES..]), Err(ProtoError::Malformed(_))));
    }

    #[test]
    fn garbage_behind_a_fixed_header_never_panics_and_hot_frames_have_one_encoding(
        header in random_header(),
        tail in proptest::collection::vec(proptest::num::u8::ANY, 0..96),
    ) {
        let mut bytes = header;
        bytes.extend_from_slice(&tail);
        let len = (bytes.len() - HEADER_BYTES) as u32;
        bytes[..HEADER_BYTES].copy_from_slice(&len.to_le_bytes());
        if let Ok(Inbound::Hot(hot)) = decode_inbound(Bytes::from(bytes.clone()).slice(HEADER_BYTES..)) {
            proptest::prop_assert_eq!(hot.encode().unwrap().to_vec(), bytes);
        }
    }

    #[test]
    fn random_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
        let mut dec = FrameDecoder::new(4096);
        dec.push(&bytes);
        for _ in 0..8 {
            match dec.next_frame() {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
    }

    #[test]
    fn payloads_round_trip(data in proptest::collection::vec(proptest::num::u8::ANY, 0..256),
                           n in 0usize..4, subject in "[a-z._]{0,20}") {
        let payload = Payload { data: data.clone().into(), buffers: vec![data.into(); n] };
        let frame = Frame::Command(Command::Deliver { delivery: None, actor: 1, subject, sender: None, payload });
        let bytes = encode(&frame).unwrap();
        proptest::prop_assert_eq!(read_frame(&mut &bytes[..], 1 << 20).unwrap(), frame);
    }

    #[test]
    fn a_body_cut_or_padded_anywhere_is_malformed(cut in 0usize..1200, pad in 1usize..8) {
        let bytes = encode(&sample_frames()[6]).unwrap();
        let body = &bytes[HEADER_BYTES..];
        let cut = cut.min(body.len() - 1);
        proptest::prop_assert!(matches!(decode_body(&body[..cut]), Err(ProtoError::Malformed(_))));
        let mut padded = body.to_vec();
        padded.extend(std::iter::repeat_n(0u8, pad));
        proptest::prop_assert!(matches!(decode_body(&padded), Err(ProtoError::Malformed(_))));
    }
}
