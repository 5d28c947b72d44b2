//! Length-prefixed bincode framing, for blocking streams and for incremental (async) readers.

use std::io::{Read, Write};

use bincode::Options;

use crate::{Frame, ProtoError};

/// Bytes of the length prefix.
pub const HEADER_BYTES: usize = 4;

fn options(limit: u64) -> impl Options {
    // The limit bounds every allocation the decoder makes, so a lying length prefix inside a
    // body cannot make us allocate gigabytes.
    bincode::DefaultOptions::new().with_limit(limit)
}

/// Encodes a frame with its length prefix.
pub fn encode(frame: &Frame) -> Result<Vec<u8>, ProtoError> {
    let len = options(u32::MAX as u64).serialized_size(frame).map_err(|e| ProtoError::Malformed(e.to_string()))?;
    if len > u32::MAX as u64 {
        return Err(ProtoError::TooLarge { len, limit: u32::MAX as u64 });
    }
    let mut out = Vec::with_capacity(HEADER_BYTES + len as usize);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    options(u32::MAX as u64).serialize_into(&mut out, frame).map_err(|e| ProtoError::Malformed(e.to_string()))?;
    Ok(out)
}

/// Decodes one frame body (without its prefix).
pub fn decode_body(body: &[u8]) -> Result<Frame, ProtoError> {
    options(body.len() as u64 + 16).deserialize(body).map_err(|e| ProtoError::Malformed(e.to_string()))
}

fn check_len(header: [u8; HEADER_BYTES], limit: u64) -> Result<usize, ProtoError> {
    let len = u32::from_le_bytes(header) as u64;
    if len > limit {
        return Err(ProtoError::TooLarge { len, limit });
    }
    Ok(len as usize)
}

/// Reads one frame from a blocking stream.
pub fn read_frame(r: &mut impl Read, limit: u64) -> Result<Frame, ProtoError> {
    let mut header = [0u8; HEADER_BYTES];
    read_full(r, &mut header, true)?;
    let len = check_len(header, limit)?;
    let mut body = vec![0u8; len];
    read_full(r, &mut body, false)?;
    decode_body(&body)
}

fn read_full(r: &mut impl Read, buf: &mut [u8], at_boundary: bool) -> Result<(), ProtoError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 && at_boundary => return Err(ProtoError::Closed),
            Ok(0) => return Err(ProtoError::Truncated { got, expected: buf.len() }),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Writes one frame to a blocking stream.
pub fn write_frame(w: &mut impl Write, frame: &Frame) -> Result<(), ProtoError> {
    w.write_all(&encode(frame)?)?;
    Ok(())
}

/// Incremental decoder for readers that get bytes in arbitrary chunks.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    limit: u64,
}

impl FrameDecoder {
    pub fn new(limit: u64) -> Self {
        Self { buf: Vec::new(), limit }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ProtoError> {
        if self.buf.len() < HEADER_BYTES {
            return Ok(None);
        }
        let header: [u8; HEADER_BYTES] = self.buf[..HEADER_BYTES].try_into().expect("4 bytes");
        let len = check_len(header, self.limit)?;
        if self.buf.len() < HEADER_BYTES + len {
            return Ok(None);
        }
        let frame = decode_body(&self.buf[HEADER_BYTES..HEADER_BYTES + len]);
        self.buf.drain(..HEADER_BYTES + len);
        frame.map(Some)
    }

    /// Bytes held that do not yet form a frame; non-zero at end of stream means truncation.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;

    fn sample_frames() -> Vec<Frame> {
        let payload = Payload { data: vec![1, 2, 3], buffers: vec![vec![9; 1000], vec![]] };
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
                        children: vec![ChildSpec {
                            name: Some("a".into()),
                            label: "A".into(),
                            restart: Restart::Permanent,
                            shutdown_ms: Some(5000),
                            code: ChildCode::Script { path: "x.py".into() },
                        }],
                    },
                },
            },
            Frame::Event(Event::Exited { actor: 9, reason: Exit::Killed("SIGSEGV".into()) }),
            Frame::Event(Event::BodyDone { error: None }),
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

    proptest::proptest! {
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
            let payload = Payload { data: data.clone(), buffers: vec![data; n] };
            let frame = Frame::Command(Command::Deliver { delivery: None, actor: 1, subject, sender: None, payload });
            let bytes = encode(&frame).unwrap();
            proptest::prop_assert_eq!(read_frame(&mut &bytes[..], 1 << 20).unwrap(), frame);
        }
    }
}
