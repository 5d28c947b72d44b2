//! Length-prefixed framing, for blocking streams and for incremental (async) readers. A body is
//! a bincode header and the payload bytes beside it (see `segments.rs`): reading slices the
//! payloads out of the read buffer, writing sends them without concatenating.

use std::io::{IoSlice, Read, Write};

use bincode::Options;
use bytes::{Buf, Bytes, BytesMut};

use crate::segments::{payloads, pieces};
use crate::{Frame, ProtoError};

/// Bytes of the length prefix.
pub const HEADER_BYTES: usize = 4;

/// Bytes of the header-length field that opens a body.
const HEADER_LEN_BYTES: usize = 4;

/// Slack the bincode limit needs past the bytes it reads (its own bookkeeping).
const BINCODE_SLACK: u64 = 16;

fn options(limit: u64) -> impl Options {
    // The limit bounds every allocation the decoder makes, so a lying length prefix inside a
    // body cannot make us allocate gigabytes.
    bincode::DefaultOptions::new().with_limit(limit)
}

fn malformed(e: impl std::fmt::Display) -> ProtoError {
    ProtoError::Malformed(e.to_string())
}

/// One frame ready for the wire: the length prefix and header, then the payload pieces as they
/// are (shared with the frame they came from, not copied).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoded {
    head: Vec<u8>,
    pieces: Vec<Bytes>,
}

impl Encoded {
    /// Bytes on the wire.
    pub fn len(&self) -> usize {
        self.head.len() + self.pieces.iter().map(Bytes::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole frame in one buffer (for writers that cannot write vectored).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        out.extend_from_slice(&self.head);
        self.pieces.iter().for_each(|p| out.extend_from_slice(p));
        out
    }

    /// What is left to write once `written` bytes are out, as slices for a vectored write.
    pub fn slices_after(&self, written: usize) -> Vec<IoSlice<'_>> {
        let mut skip = written;
        let mut out = Vec::with_capacity(1 + self.pieces.len());
        for part in std::iter::once(&self.head[..]).chain(self.pieces.iter().map(|p| &p[..])) {
            if skip >= part.len() {
                skip -= part.len();
            } else {
                out.push(IoSlice::new(&part[skip..]));
                skip = 0;
            }
        }
        out
    }

    /// Writes the frame to a blocking stream, header and payloads in vectored writes.
    pub fn write_to(&self, w: &mut impl Write) -> std::io::Result<()> {
        let (mut written, total) = (0, self.len());
        while written < total {
            match w.write_vectored(&self.slices_after(written)) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Raw bytes sent as they are (a frame encoded elsewhere, or a test's malformed one).
impl From<Vec<u8>> for Encoded {
    fn from(head: Vec<u8>) -> Self {
        Encoded { head, pieces: Vec::new() }
    }
}

/// Encodes a frame for a vectored write; the payload bytes are shared, not copied.
pub fn encode_parts(frame: &Frame) -> Result<Encoded, ProtoError> {
    // Cloning a frame clones its payloads' `Bytes` handles, not their bytes.
    let mut stripped = frame.clone();
    let pieces: Vec<Bytes> = self::pieces(payloads(&mut stripped)).map(std::mem::take).collect();
    let lens: Vec<u64> = pieces.iter().map(|p| p.len() as u64).collect();
    let header = options(u32::MAX as u64).serialize(&(&stripped, &lens)).map_err(malformed)?;
    let len = (HEADER_LEN_BYTES + header.len()) as u64 + lens.iter().sum::<u64>();
    if len > u32::MAX as u64 {
        return Err(ProtoError::TooLarge { len, limit: u32::MAX as u64 });
    }
    let mut head = Vec::with_capacity(HEADER_BYTES + HEADER_LEN_BYTES + header.len());
    head.extend_from_slice(&(len as u32).to_le_bytes());
    head.extend_from_slice(&(header.len() as u32).to_le_bytes());
    head.extend_from_slice(&header);
    Ok(Encoded { head, pieces })
}

/// Encodes a frame with its length prefix, in one buffer.
pub fn encode(frame: &Frame) -> Result<Vec<u8>, ProtoError> {
    encode_parts(frame).map(|e| e.to_vec())
}

/// Decodes one frame body (without its prefix); its payloads are slices of `body`.
pub fn decode_frame(body: Bytes) -> Result<Frame, ProtoError> {
    let Some(len_field) = body.get(..HEADER_LEN_BYTES) else {
        return Err(malformed("a frame body too short for its header length"));
    };
    let header_len = u32::from_le_bytes(len_field.try_into().expect("4 bytes")) as usize;
    let Some(header) = body.get(HEADER_LEN_BYTES..HEADER_LEN_BYTES + header_len) else {
        return Err(malformed(format!("a header of {header_len} bytes in a body of {}", body.len())));
    };
    let (mut frame, lens): (Frame, Vec<u64>) =
        options(header_len as u64 + BINCODE_SLACK).deserialize(header).map_err(malformed)?;
    let mut at = HEADER_LEN_BYTES + header_len;
    let mut lens = lens.into_iter();
    for piece in pieces(payloads(&mut frame)) {
        let len = lens.next().ok_or_else(|| malformed("fewer payload lengths than payloads"))?;
        if !piece.is_empty() {
            return Err(malformed("payload bytes inside a frame's header"));
        }
        let end = usize::try_from(len).ok().and_then(|l| at.checked_add(l)).filter(|&end| end <= body.len());
        let end = end.ok_or_else(|| malformed("payload lengths past the end of the frame"))?;
        *piece = body.slice(at..end);
        at = end;
    }
    if lens.next().is_some() || at != body.len() {
        return Err(malformed("payload lengths that do not match the frame"));
    }
    Ok(frame)
}

/// Decodes one frame body (without its prefix) from a borrowed buffer, copying it once.
pub fn decode_body(body: &[u8]) -> Result<Frame, ProtoError> {
    decode_frame(Bytes::copy_from_slice(body))
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
    decode_frame(Bytes::from(body))
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
    encode_parts(frame)?.write_to(w)?;
    Ok(())
}

/// Incremental decoder for readers that get bytes in arbitrary chunks. The frames it returns
/// share its buffer: a payload held on to keeps that buffer's allocation alive, never more than
/// the frames read with it (bounded by the reader's budget).
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    limit: u64,
}

impl FrameDecoder {
    pub fn new(limit: u64) -> Self {
        Self { buf: BytesMut::new(), limit }
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
        let mut frame = self.buf.split_to(HEADER_BYTES + len).freeze();
        frame.advance(HEADER_BYTES);
        decode_frame(frame).map(Some)
    }

    /// Bytes held that do not yet form a frame; non-zero at end of stream means truncation.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests;
