//! Times encode + decode of one frame carrying a large payload (the cost a 64 MiB NumPy array
//! pays on each hop), and the governor's forward of one small call (read, decoded, sent on as a
//! delivery), as a `Frame` and as a routed frame. A measurement to print, not a test: `cargo run
//! --release -p rebeam-proto --example frame_bench [MiB] [rounds]`.

use std::time::Instant;

use bytes::Bytes;
use rebeam_proto::{
    decode_body, decode_frame, decode_inbound, encode, encode_parts, Command, Encoded, Frame, Inbound, Payload,
    Request, Target, HEADER_BYTES,
};

/// Payload size when none is given: the 64 MiB array of the figures.
const DEFAULT_MIB: usize = 64;
/// Rounds when none is given; the best one is reported, as the least disturbed by other load.
const DEFAULT_ROUNDS: usize = 5;
/// Small frames encoded per round: enough that the clock's resolution does not matter.
const SMALL_FRAMES: u32 = 200_000;

/// A small delivery, as the governor builds one for each ordinary `call`.
fn small_frame() -> Frame {
    Frame::Command(Command::Deliver {
        delivery: Some(1),
        actor: 7,
        subject: "compute".into(),
        sender: None,
        payload: Payload { data: Bytes::from_static(&[0x80, 5, 75, 1, 46]), buffers: Vec::new() },
    })
}

/// Best time, in µs, to build one small frame and encode it for the wire, as `Router::send` does.
fn small_encode(rounds: usize) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..SMALL_FRAMES {
            std::hint::black_box(encode_parts(std::hint::black_box(small_frame())).expect("encodes"));
        }
        best = best.min(t.elapsed().as_secs_f64() / f64::from(SMALL_FRAMES));
    }
    best * 1e6
}

/// A small call by name, as a Python `call("counter", "compute", x)` sends it, on the wire.
fn small_call_wire() -> Bytes {
    let call = Request::Call {
        target: Target::Name("counter".into()),
        subject: "compute".into(),
        sender: None,
        payload: Payload { data: Bytes::from_static(&[0x80, 5, 75, 1, 46]), buffers: Vec::new() },
        timeout_ms: 5000,
    };
    Bytes::from(encode(&Frame::Request { req: 1, body: call }).expect("encodes")).slice(HEADER_BYTES..)
}

/// The forward as a `Frame`: the whole header decoded, the delivery built and encoded.
fn forward_as_frame(body: Bytes) -> Encoded {
    let Ok(Frame::Request { body: Request::Call { subject, sender, payload, .. }, .. }) = decode_frame(body) else {
        panic!("a call")
    };
    let sender = sender.map(|id| rebeam_proto::ActorRef { id, name: None });
    encode_parts(Frame::Command(Command::Deliver { delivery: Some(1), actor: 7, subject, sender, payload }))
        .expect("encodes")
}

/// The forward as the governor does it: routed from the fixed header, a new header written.
fn forward_routed(body: Bytes) -> Encoded {
    let Ok(Inbound::Hot(call)) = decode_inbound(body) else { panic!("a hot call") };
    call.into_delivery(7, Some(1), None).encode().expect("encodes")
}

/// Best time, in µs, of one forward of a small call.
fn small_forward(rounds: usize, forward: fn(Bytes) -> Encoded) -> f64 {
    let wire = small_call_wire();
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..SMALL_FRAMES {
            std::hint::black_box(forward(std::hint::black_box(wire.clone())));
        }
        best = best.min(t.elapsed().as_secs_f64() / f64::from(SMALL_FRAMES));
    }
    best * 1e6
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map_or(DEFAULT_MIB, |a| a.parse().expect("MiB: a number"));
    let rounds: usize = args.next().map_or(DEFAULT_ROUNDS, |a| a.parse().expect("rounds: a number"));
    let big: Vec<u8> = (0..mib << 20).map(|i| i as u8).collect();
    let frame = Frame::Command(Command::Deliver {
        delivery: Some(1),
        actor: 7,
        subject: "compute".into(),
        sender: None,
        payload: Payload { data: vec![0x80, 5].into(), buffers: vec![big.into()] },
    });
    let (mut best_enc, mut best_dec) = (f64::MAX, f64::MAX);
    // As the governor does it: header and shared pieces out, payload sliced from the read buffer.
    let (mut best_parts, mut best_shared) = (f64::MAX, f64::MAX);
    for _ in 0..rounds {
        let t = Instant::now();
        let parts = encode_parts(frame.clone()).expect("encodes");
        best_parts = best_parts.min(t.elapsed().as_secs_f64());
        let read = Bytes::from(parts.to_vec()).slice(HEADER_BYTES..);
        let t = Instant::now();
        let back = decode_frame(read).expect("decodes");
        best_shared = best_shared.min(t.elapsed().as_secs_f64());
        assert!(back == frame, "the frame must survive the round trip");
        let t = Instant::now();
        let bytes = encode(&frame).expect("encodes");
        let enc = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let back = decode_body(&bytes[HEADER_BYTES..]).expect("decodes");
        let dec = t.elapsed().as_secs_f64();
        assert!(back == frame, "the frame must survive the round trip");
        best_enc = best_enc.min(enc);
        best_dec = best_dec.min(dec);
    }
    println!("{mib} MiB payload, best of {rounds}: encode {:.1} ms, decode {:.1} ms", best_enc * 1e3, best_dec * 1e3);
    println!(
        "  without copying the payload: encode_parts {:.3} ms, decode_frame {:.3} ms",
        best_parts * 1e3,
        best_shared * 1e3
    );
    println!("small frame (build + encode_parts), best of {rounds}: {:.3} µs", small_encode(rounds));
    println!(
        "forward of a small call (decode + re-encode as a delivery), best of {rounds}: as a Frame {:.3} µs, routed {:.3} µs",
        small_forward(rounds, forward_as_frame),
        small_forward(rounds, forward_routed)
    );
}
