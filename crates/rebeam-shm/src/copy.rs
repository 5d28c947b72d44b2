//! Copying a large buffer into a bulk segment on every core this process may use.
//!
//! One core's copy is bounded by how many cache lines one core keeps in flight, not by the
//! memory's bandwidth: on a 2-core machine a 64 MiB copy into a pre-faulted memfd mapping took
//! 9.7 ms on one thread and 3.9 ms split over two (numpy `copyto`, p50 of 20). So a buffer of at
//! least [`PARALLEL_ABOVE`] is cut into one contiguous part per CPU ([`crate::idle::cpus`], at
//! most [`MAX_PARTS`]); the caller's thread copies the first part and scoped threads the others,
//! all joined before [`copy_in`] returns, so the copy is complete (and visible to whoever the
//! caller then hands the segment to) when it returns. A thread's start costs tens of
//! microseconds, nothing beside a copy of several milliseconds; with no core free the parts
//! simply take turns, as one copy would.

/// Buffers at least this large are copied in parts (one 8 MiB copy takes about 1 ms on one core).
pub const PARALLEL_ABOVE: usize = 8 << 20;
/// The most parts a copy is cut into, whatever the CPU count.
pub const MAX_PARTS: usize = 4;

/// A destination address sent to a scoped thread. Each part's range is disjoint from every
/// other part's and the caller's borrow of `dst` outlives the scope.
#[derive(Clone, Copy)]
struct Dst(*mut u8);
// SAFETY: see the type's comment: each thread writes only its own range, joined before return.
unsafe impl Send for Dst {}

/// Copies `src` to `dst`, in parts on several threads when `src` is large (see the module rules).
///
/// # Safety
/// `dst` must be valid for writes of `src.len()` bytes, must not overlap `src`, and nothing else
/// may read or write those bytes until this returns.
pub unsafe fn copy_in(src: &[u8], dst: *mut u8) {
    let parts = parts_for(src.len(), crate::idle::cpus());
    if parts <= 1 {
        // SAFETY: the caller's contract.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
        return;
    }
    let step = src.len().div_ceil(parts);
    std::thread::scope(|scope| {
        let mut chunks = src.chunks(step).enumerate();
        let (_, first) = chunks.next().expect("a large buffer has a first part");
        for (i, chunk) in chunks {
            let to = Dst(dst);
            let spawned = std::thread::Builder::new().name("rebeam-copy".into()).spawn_scoped(scope, move || {
                let to = to;
                // SAFETY: part `i` is `chunk.len()` bytes at offset `i * step` of `dst`, inside
                // the caller's range and disjoint from every other part's.
                unsafe { std::ptr::copy_nonoverlapping(chunk.as_ptr(), to.0.add(i * step), chunk.len()) };
            });
            if spawned.is_err() {
                // No thread to be had (a limit on threads): this thread copies the part itself.
                // SAFETY: as above.
                unsafe { std::ptr::copy_nonoverlapping(chunk.as_ptr(), dst.add(i * step), chunk.len()) };
            }
        }
        // SAFETY: part 0 is the first `first.len()` bytes of `dst`.
        unsafe { std::ptr::copy_nonoverlapping(first.as_ptr(), dst, first.len()) };
    });
}

/// How many parts a copy of `len` bytes is cut into with `cpus` CPUs.
fn parts_for(len: usize, cpus: usize) -> usize {
    if len < PARALLEL_ABOVE {
        1
    } else {
        cpus.clamp(1, MAX_PARTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 4099) as u8).collect()
    }

    #[test]
    fn small_buffers_are_one_part_and_large_ones_one_per_cpu_up_to_the_cap() {
        assert_eq!(parts_for(PARALLEL_ABOVE - 1, 8), 1);
        assert_eq!(parts_for(PARALLEL_ABOVE, 1), 1);
        assert_eq!(parts_for(PARALLEL_ABOVE, 2), 2);
        assert_eq!(parts_for(PARALLEL_ABOVE * 4, 64), MAX_PARTS);
    }

    #[test]
    fn a_copy_in_parts_writes_every_byte_and_nothing_past_the_end() {
        // Lengths that do not divide evenly, around the threshold, so the last part is short.
        for len in [PARALLEL_ABOVE - 3, PARALLEL_ABOVE, PARALLEL_ABOVE + 7, 3 * PARALLEL_ABOVE + 1] {
            let src = pattern(len);
            let mut dst = vec![0xAAu8; len + 16];
            // SAFETY: dst holds len + 16 bytes and is a different allocation from src.
            unsafe { copy_in(&src, dst.as_mut_ptr()) };
            assert!(dst[..len] == src[..], "bytes differ for len {len}");
            assert!(dst[len..].iter().all(|&b| b == 0xAA), "wrote past the end for len {len}");
        }
    }

    #[test]
    fn an_empty_buffer_copies_nothing() {
        let mut dst = [7u8; 4];
        // SAFETY: zero bytes are written.
        unsafe { copy_in(&[], dst.as_mut_ptr()) };
        assert_eq!(dst, [7; 4]);
    }
}
