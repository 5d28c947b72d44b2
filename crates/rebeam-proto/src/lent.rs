//! Lent pieces: payload buffers that travel as shared-memory segments, not as bytes.
//!
//! A call, cast or delivery with [`FLAG_LENT`](crate::header::FLAG_LENT) set lends some of its
//! buffers: each lent buffer's piece is empty in the frame, and its bytes lie in a segment
//! whose fd travels with the frame (SCM_RIGHTS, attached to the frame's first bytes, so it
//! arrives with that frame and no other). The frame's last piece is then the loan table: one
//! [`LOAN_BYTES`]-byte entry per lent piece, in the order of the frame's fds:
//!
//! | offset | size | field         | meaning                                                 |
//! |-------:|-----:|---------------|---------------------------------------------------------|
//! |      0 |    8 | `piece`       | index of the lent piece among the frame's pieces         |
//! |      8 |    8 | `segment_len` | the segment's length in bytes (checked on mapping)       |
//! |     16 |    8 | `len`         | the buffer's length in bytes                             |
//! |     24 |    8 | `slot`        | the loan slot in the segment's header the receiver frees |
//!
//! The rules, or the frame is malformed:
//! - the table has 1 to [`MAX_LENT_PIECES`] entries, and the frame brings exactly as many fds;
//! - each entry names a buffer (not the pickle, piece 0, nor the table itself), in strictly
//!   ascending order, and that piece is empty in the frame;
//! - `len` fits in `segment_len`, and `slot` is a u32 (the receiver checks the rest against
//!   the segment itself).
//!
//! Why a table in a piece rather than header fields: the governor forwards a frame's pieces as
//! they are, so the table moves with the delivery untouched, and the fixed header keeps its
//! size. The governor checks only the count (its fds must match); what a loan means is the
//! receiver's business.

use bytes::Bytes;

use crate::header::U64_BYTES;
use crate::ProtoError;

/// The most lent pieces (so fds) one frame may carry: the same bound as one SCM_RIGHTS message
/// a receiver takes (a peer sending more has them closed).
pub const MAX_LENT_PIECES: usize = 16;
/// Bytes of one loan table entry (four u64 fields).
pub const LOAN_BYTES: usize = 4 * U64_BYTES;

/// One lent piece, as the loan table describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LentPiece {
    /// Its index among the frame's pieces (0 is the pickle, which is never lent).
    pub piece: u32,
    pub segment_len: u64,
    pub len: u64,
    pub slot: u32,
}

/// The loan table for `loans` (in the order of the frame's fds).
pub fn table(loans: &[LentPiece]) -> Bytes {
    let mut out = Vec::with_capacity(loans.len() * LOAN_BYTES);
    for l in loans {
        for n in [u64::from(l.piece), l.segment_len, l.len, u64::from(l.slot)] {
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
    out.into()
}

/// The loans of a frame whose pieces are `pieces` (the last being the table), checked against
/// the module's rules.
pub fn loans(pieces: &[Bytes]) -> Result<Vec<LentPiece>, ProtoError> {
    let bad = |why: String| ProtoError::Malformed(format!("a frame with lent pieces: {why}"));
    let Some((table, rest)) = pieces.split_last() else {
        return Err(bad("no loan table".into()));
    };
    if table.is_empty() || table.len() % LOAN_BYTES != 0 {
        return Err(bad(format!("a loan table of {} bytes", table.len())));
    }
    let count = table.len() / LOAN_BYTES;
    if count > MAX_LENT_PIECES {
        return Err(bad(format!("{count} lent pieces, at most {MAX_LENT_PIECES}")));
    }
    let mut out = Vec::with_capacity(count);
    for entry in table.chunks_exact(LOAN_BYTES) {
        let field = |i: usize| u64::from_le_bytes(entry[i * U64_BYTES..(i + 1) * U64_BYTES].try_into().expect("8"));
        let (piece, segment_len, len, slot) = (field(0), field(1), field(2), field(3));
        let after = out.last().map_or(0, |l: &LentPiece| u64::from(l.piece));
        if piece <= after || piece >= rest.len() as u64 {
            return Err(bad(format!("piece {piece} is not a buffer after piece {after}")));
        }
        if !rest[piece as usize].is_empty() {
            return Err(bad(format!("lent piece {piece} also has bytes in the frame")));
        }
        if len > segment_len {
            return Err(bad(format!("{len} bytes lent in a segment of {segment_len}")));
        }
        let slot = u32::try_from(slot).map_err(|_| bad(format!("slot {slot}")))?;
        out.push(LentPiece { piece: piece as u32, segment_len, len, slot });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loan(piece: u32) -> LentPiece {
        LentPiece { piece, segment_len: 1 << 20, len: 1000, slot: 3 }
    }

    fn frame(pieces: usize, loans: &[LentPiece]) -> Vec<Bytes> {
        let mut out: Vec<Bytes> = (0..pieces).map(|_| Bytes::new()).collect();
        out[0] = Bytes::from_static(b"pickle");
        out.push(table(loans));
        out
    }

    #[test]
    fn a_table_reads_back_as_written() {
        let loans = [loan(1), LentPiece { piece: 3, segment_len: u64::MAX, len: 0, slot: u32::MAX }];
        assert_eq!(super::loans(&frame(4, &loans)).unwrap(), loans);
    }

    #[test]
    fn tables_against_the_rules_are_malformed() {
        let mut with_bytes = frame(3, &[loan(1)]);
        with_bytes[1] = Bytes::from_static(b"x");
        let mut ragged = frame(3, &[loan(1)]);
        ragged[3] = ragged[3].slice(1..);
        let mut big_slot = table(&[loan(1)]).to_vec();
        big_slot[24..32].copy_from_slice(&(u64::from(u32::MAX) + 1).to_le_bytes());
        let many: Vec<_> = (1..=MAX_LENT_PIECES as u32 + 1).map(loan).collect();
        let cases = [
            vec![],
            frame(3, &[]),
            ragged,
            with_bytes,
            frame(3, &[loan(0)]),
            frame(3, &[loan(3)]),
            frame(3, &[loan(2), loan(1)]),
            frame(3, &[loan(1), loan(1)]),
            frame(3, &[LentPiece { len: 2, segment_len: 1, ..loan(1) }]),
            vec![Bytes::new(), Bytes::new(), Bytes::from(big_slot)],
            frame(MAX_LENT_PIECES + 2, &many),
        ];
        for (i, pieces) in cases.iter().enumerate() {
            assert!(matches!(loans(pieces), Err(ProtoError::Malformed(_))), "case {i}");
        }
    }
}
