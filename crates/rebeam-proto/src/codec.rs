//! Length-prefixed framing, for blocking streams and for incremental (async) readers. A frame
//! is a fixed header, a variable part and the payload pieces (see `header.rs`): reading slices
//! the payloads out of the read buffer, writing sends them without concatenating. Hot frames
//! (`routed.rs`) are all header; every other frame is a bincode body in the variable part,
//! with its payload bytes taken out into the pieces (`segments.rs`).
//!
//! The decoder is bounded: every length is checked against the frame before anything is
//! sliced or allocated, and bincode may allocate no more than its body's bytes.

use std::io::{IoSlice, Read, Write};

use bincode::Options;
use bytes::{Buf, Bytes, BytesMut};

use crate::header::{Fixed, Kind, FIXED_HEADER_BYTES, U64_BYTES};
use crate::routed::Routed;
use crate::segments::{payloads, pieces};
use crate::{Frame, ProtoError};

/// Bytes of the length prefix (the fixed header's first field).
pub const HEADER_BYTES: usize = 4;

/// Bytes of the fixed header after its length field: where a body's variable part starts.
const FIXED_AFTER_LENGTH: usize = FIXED_HEADER_BYTES - HEADER_BYTES;

/// Slack the bincode limit needs past the bytes it reads (its own bookkeeping).
const BINCODE_SLACK: u64 = 16;

fn options(limit: u64) -> impl Options {
    // The limit bounds every allocation the decoder makes, so a lying length inside a body
    // cannot make us allocate gigabytes.
    bincode::DefaultOptions::new().with_limit(limit)
}

fn malformed(e: impl std::fmt::Display) -> ProtoError {
    ProtoError::Malformed(e.to_string())
}

/// One frame ready for the wire: the length prefix and header, then the payload pieces as they
/// are (shared with the frame they came from, not copied).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoded {
    /// The fixed header and the variable part.
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

    /// The payload pieces, in wire order: the caller can see they are the bytes it was given.
    pub fn pieces(&self) -> &[Bytes] {
        &self.pieces
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

/// A frame from its fixed fields, variable part and pieces; fills in the lengths.
pub(crate) fn assemble(
    fixed: Fixed,
    subject: &[u8],
    name: &[u8],
    body: &[u8],
    pieces: Vec<Bytes>,
) -> Result<Encoded, ProtoError> {
    let variable = subject.len() + name.len() + body.len() + U64_BYTES * pieces.len();
    let mut head = Vec::with_capacity(FIXED_HEADER_BYTES + variable);
    write_head(fixed, subject, name, body, pieces.iter().map(Bytes::len), &mut head)?;
    Ok(Encoded { head, pieces })
}

/// Appends a frame's length prefix, fixed header and variable part (the piece table last) to
/// `out`, filling in the lengths from the parts; the pieces, of lengths `piece_lens`, follow
/// it on the wire as they are. On an error nothing is appended.
pub(crate) fn write_head(
    mut fixed: Fixed,
    subject: &[u8],
    name: &[u8],
    body: &[u8],
    piece_lens: impl Iterator<Item = usize> + Clone,
    out: &mut Vec<u8>,
) -> Result<(), ProtoError> {
    let too_large = |len: u64| ProtoError::TooLarge { len, limit: u32::MAX as u64 };
    let u32_len = |n: usize| u32::try_from(n).map_err(|_| too_large(n as u64));
    let count = piece_lens.clone().count();
    (fixed.subject, fixed.name, fixed.body, fixed.pieces) =
        (u32_len(subject.len())?, u32_len(name.len())?, u32_len(body.len())?, u32_len(count)?);
    let variable = subject.len() + name.len() + body.len() + U64_BYTES * count;
    let len = (FIXED_AFTER_LENGTH + variable) as u64 + piece_lens.clone().map(|n| n as u64).sum::<u64>();
    let len = u32::try_from(len).map_err(|_| too_large(len))?;
    out.reserve(FIXED_HEADER_BYTES + variable);
    fixed.write(len, out);
    out.extend_from_slice(subject);
    out.extend_from_slice(name);
    out.extend_from_slice(body);
    piece_lens.for_each(|n| out.extend_from_slice(&(n as u64).to_le_bytes()));
    Ok(())
}

/// Encodes a frame for a vectored write; the payload bytes are moved out of it, not copied. It
/// takes the frame by value so that a sender done with it (the governor, always) pays no clone
/// of its strings and handles; one that keeps it clones it first (`encode`).
pub fn encode_parts(frame: Frame) -> Result<Encoded, ProtoError> {
    let mut frame = match Routed::from_frame(frame) {
        Ok(hot) => return hot.encode(),
        Err(frame) => frame,
    };
    let pieces: Vec<Bytes> = self::pieces(payloads(&mut frame)).map(std::mem::take).collect();
    let body = options(u32::MAX as u64).serialize(&frame).map_err(malformed)?;
    assemble(Fixed::new(Kind::Bincode), &[], &[], &body, pieces)
}

/// Encodes a frame with its length prefix, in one buffer. Cloning a frame clones its payloads'
/// `Bytes` handles, not their bytes.
pub fn encode(frame: &Frame) -> Result<Vec<u8>, ProtoError> {
    encode_parts(frame.clone()).map(|e| e.to_vec())
}

/// A frame as read: a hot one as the router takes it, or any other decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Hot(Routed),
    Frame(Frame),
}

impl Inbound {
    pub fn into_frame(self) -> Frame {
        match self {
            Inbound::Hot(hot) => hot.into_frame(),
            Inbound::Frame(frame) => frame,
        }
    }
}

/// Decodes one frame body (without its length prefix); its subject, name and payloads are
/// slices of `body`. A hot frame stays as its header says (nothing is decoded but the header).
pub fn decode_inbound(body: Bytes) -> Result<Inbound, ProtoError> {
    let fixed = Fixed::read(&body)?;
    let mut at = FIXED_AFTER_LENGTH;
    // Every length is checked against the body before it is sliced or allocated for.
    let mut take = |len: u64, what: &str| {
        let end = usize::try_from(len).ok().and_then(|l| at.checked_add(l)).filter(|&end| end <= body.len());
        let end = end.ok_or_else(|| malformed(format!("a {what} of {len} bytes past the end of the frame")))?;
        let range = at..end;
        at = end;
        Ok::<_, ProtoError>(range)
    };
    let subject = take(fixed.subject.into(), "subject")?;
    let name = take(fixed.name.into(), "name")?;
    let bincode_body = take(fixed.body.into(), "body")?;
    let table = take(u64::from(fixed.pieces) * U64_BYTES as u64, "piece table")?;
    let mut read = Vec::with_capacity(fixed.pieces as usize);
    for len in body[table].chunks_exact(U64_BYTES) {
        read.push(body.slice(take(u64::from_le_bytes(len.try_into().expect("8 bytes")), "payload piece")?));
    }
    if at != body.len() {
        return Err(malformed(format!("{} bytes after the last payload piece", body.len() - at)));
    }
    if fixed.kind != Kind::Bincode {
        return Routed::read(fixed, body.slice(subject), body.slice(name), read).map(Inbound::Hot);
    }
    let mut frame: Frame =
        options(fixed.body as u64 + BINCODE_SLACK).deserialize(&body[bincode_body]).map_err(malformed)?;
    let mut read = read.into_iter();
    for piece in pieces(payloads(&mut frame)) {
        let got = read.next().ok_or_else(|| malformed("fewer payload pieces than payloads"))?;
        if !piece.is_empty() {
            return Err(malformed("payload bytes inside a frame's bincode body"));
        }
        *piece = got;
    }
    if read.next().is_some() {
        return Err(malformed("more payload pieces than payloads"));
    }
    if Routed::is_hot(&frame) {
        // One encoding per frame: a hot frame in a bincode body would route another way.
        return Err(malformed("a hot frame in a bincode body"));
    }
    Ok(Inbound::Frame(frame))
}

/// Decodes one frame body (without its prefix); its payloads are slices of `body`.
pub fn decode_frame(body: Bytes) -> Result<Frame, ProtoError> {
    decode_inbound(body).map(Inbound::into_frame)
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

/// As [`read_frame`], with a hot frame as its header says (so its loans, if it lends pieces,
/// are still there to read: see `lent.rs`).
pub fn read_inbound(r: &mut impl Read, limit: u64) -> Result<Inbound, ProtoError> {
    let mut header = [0u8; HEADER_BYTES];
    read_full(r, &mut header, true)?;
    let len = check_len(header, limit)?;
    let mut body = vec![0u8; len];
    read_full(r, &mut body, false)?;
    decode_inbound(Bytes::from(body))
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
    encode_parts(frame.clone())?.write_to(w)?;
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
        Ok(self.next_inbound()?.map(Inbound::into_frame))
    }

    /// The next complete frame, a hot one as its header says; `Ok(None)` if more bytes are needed.
    pub fn next_inbound(&mut self) -> Result<Option<Inbound>, ProtoError> {
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
        decode_inbound(frame).map(Some)
    }

    /// Bytes held that do not yet form a frame; non-zero at end of stream means truncation.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests;
