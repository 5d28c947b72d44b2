//! Times encode + decode of one frame carrying a large payload (the cost a 64 MiB NumPy array
//! pays on each hop). A measurement to print, not a test: `cargo run --release -p rebeam-proto
//! --example frame_bench [MiB] [rounds]`.

use std::time::Instant;

use bytes::Bytes;
use rebeam_proto::{decode_body, decode_frame, encode, encode_parts, Command, Frame, Payload, HEADER_BYTES};

/// Payload size when none is given: the 64 MiB array of the figures.
const DEFAULT_MIB: usize = 64;
/// Rounds when none is given; the best one is reported, as the least disturbed by other load.
const DEFAULT_ROUNDS: usize = 5;

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
        let parts = encode_parts(&frame).expect("encodes");
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
}
