//! Shared memory segments: anonymous, sealed, mapped, pre-faulted.
//!
//! Rules:
//! - A segment is a memfd (`MFD_CLOEXEC | MFD_ALLOW_SEALING`), so it has no name in `/dev/shm`
//!   and dies with its last fd and mapping: no crash can leak it.
//! - Its creator sizes it once and seals it against shrinking and growing, then seals the seals.
//!   A peer that could shrink the file could make our next access past the new end raise SIGBUS;
//!   the seals are what make mapping a peer's segment safe.
//! - `Segment::from_fd` (the receiving side) refuses an fd whose size differs from the one
//!   announced or which lacks those seals.
//! - Both sides pre-fault their mapping: a fresh segment's page faults cost far more than the
//!   copies that go through it.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use rustix::fs::{FallocateFlags, MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};

use crate::error::{Result, ShmError};

/// The seals every segment carries, creator's and receiver's alike.
const REQUIRED_SEALS: SealFlags = SealFlags::SHRINK.union(SealFlags::GROW).union(SealFlags::SEAL);

/// A name only shown in `/proc/<pid>/fd` listings, to tell rebeam's segments apart.
const MEMFD_NAME: &str = "rebeam-shm";

/// One mapped, sealed shared memory segment.
#[derive(Debug)]
pub struct Segment {
    fd: OwnedFd,
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory owned by this value; every access to its bytes goes
// through raw pointers or atomics, whose synchronisation is the user's (the ring's) concern.
unsafe impl Send for Segment {}
// SAFETY: as above; `&Segment` exposes only the base pointer and length.
unsafe impl Sync for Segment {}

impl Segment {
    /// Creates a segment of `len` bytes (rounded up to whole pages), sealed, mapped and
    /// pre-faulted.
    pub fn create(len: usize) -> Result<Segment> {
        if len == 0 {
            return Err(ShmError::BadSegment("a segment cannot be empty".into()));
        }
        let len = len.next_multiple_of(rustix::param::page_size());
        let fd = rustix::fs::memfd_create(MEMFD_NAME, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .map_err(ShmError::os("memfd_create"))?;
        rustix::fs::ftruncate(&fd, len as u64).map_err(ShmError::os("ftruncate"))?;
        // Allocating the pages now, once, is what pre-faulting means for the file; MAP_POPULATE
        // below then only maps them.
        rustix::fs::fallocate(&fd, FallocateFlags::empty(), 0, len as u64).map_err(ShmError::os("fallocate"))?;
        rustix::fs::fcntl_add_seals(&fd, REQUIRED_SEALS).map_err(ShmError::os("add seals"))?;
        Self::map(fd, len)
    }

    /// Adopts a segment a peer created and handed over, insisting on the announced length and
    /// the seals that make mapping it safe.
    pub fn from_fd(fd: OwnedFd, expected_len: usize) -> Result<Segment> {
        Self::adopt(fd, expected_len, MapFlags::POPULATE)
    }

    /// As [`Segment::from_fd`], with the pages mapped as they are first touched rather than all
    /// at once: for a large buffer of which the receiver may read only part (a lent array).
    pub fn from_fd_lazy(fd: OwnedFd, expected_len: usize) -> Result<Segment> {
        Self::adopt(fd, expected_len, MapFlags::empty())
    }

    fn adopt(fd: OwnedFd, expected_len: usize, populate: MapFlags) -> Result<Segment> {
        let stat = rustix::fs::fstat(&fd).map_err(ShmError::os("fstat"))?;
        if u64::try_from(stat.st_size).ok() != Some(expected_len as u64) || expected_len == 0 {
            return Err(ShmError::BadSegment(format!(
                "size {} where {expected_len} bytes were announced",
                stat.st_size
            )));
        }
        // Only memfd (shmem) files carry seals, so this also rejects ordinary files and pipes.
        let seals = rustix::fs::fcntl_get_seals(&fd)
            .map_err(|e| ShmError::BadSegment(format!("not a sealable memfd ({e})")))?;
        if !seals.contains(REQUIRED_SEALS) {
            return Err(ShmError::BadSegment(format!("seals {seals:?} lack {:?}", REQUIRED_SEALS.difference(seals))));
        }
        Self::map_with(fd, expected_len, populate)
    }

    fn map(fd: OwnedFd, len: usize) -> Result<Segment> {
        Self::map_with(fd, len, MapFlags::POPULATE)
    }

    fn map_with(fd: OwnedFd, len: usize, populate: MapFlags) -> Result<Segment> {
        // SAFETY: a fresh mapping at an address the kernel picks aliases no Rust object; the
        // file is sealed at `len` bytes, so every byte of the mapping stays backed.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED | populate,
                &fd,
                0,
            )
        }
        .map_err(ShmError::os("mmap"))?;
        let base = NonNull::new(ptr.cast::<u8>()).expect("mmap never returns null on success");
        Ok(Segment { fd, base, len })
    }

    /// The mapping's first byte (page aligned).
    pub fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// The mapping's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: a segment has at least one page. Present for the `len` convention.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl AsFd for Segment {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `map` with this length and nothing borrows it past
        // `self` (rings borrow their segment).
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_segment_is_sealed_zeroed_and_writable() {
        let seg = Segment::create(5000).unwrap();
        assert_eq!(seg.len() % rustix::param::page_size(), 0);
        assert!(seg.len() >= 5000);
        let seals = rustix::fs::fcntl_get_seals(&seg).unwrap();
        assert!(seals.contains(REQUIRED_SEALS));
        assert!(rustix::fs::ftruncate(&seg, 1).is_err(), "shrinking is sealed");
        // SAFETY: within the mapping, which no reference aliases.
        unsafe {
            assert_eq!(*seg.base().as_ptr().add(seg.len() - 1), 0);
            *seg.base().as_ptr() = 7;
        }
    }

    #[test]
    fn from_fd_sees_the_creators_bytes() {
        let seg = Segment::create(4096).unwrap();
        // SAFETY: within the mapping.
        unsafe { *seg.base().as_ptr().add(10) = 42 };
        let other = Segment::from_fd(seg.as_fd().try_clone_to_owned().unwrap(), seg.len()).unwrap();
        // SAFETY: within the mapping.
        assert_eq!(unsafe { *other.base().as_ptr().add(10) }, 42);
    }

    /// The resident size the kernel reports for the mapping that starts at `base`.
    fn resident_bytes(base: NonNull<u8>) -> usize {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let start = format!("{:x}-", base.as_ptr() as usize);
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&start));
        let rss = lines.find_map(|l| l.strip_prefix("Rss:")).expect("the mapping is listed");
        rss.trim().trim_end_matches("kB").trim().parse::<usize>().unwrap() * 1024
    }

    #[test]
    fn both_ends_are_mapped_pre_faulted() {
        let seg = Segment::create(1 << 20).unwrap();
        assert_eq!(resident_bytes(seg.base()), seg.len(), "the creator's pages are all present");
        let other = Segment::from_fd(seg.as_fd().try_clone_to_owned().unwrap(), seg.len()).unwrap();
        assert_eq!(resident_bytes(other.base()), other.len(), "and so are the receiver's");
    }

    #[test]
    fn from_fd_refuses_a_wrong_size() {
        let seg = Segment::create(4096).unwrap();
        let fd = seg.as_fd().try_clone_to_owned().unwrap();
        assert!(matches!(Segment::from_fd(fd, 8192), Err(ShmError::BadSegment(_))));
        let fd = seg.as_fd().try_clone_to_owned().unwrap();
        assert!(matches!(Segment::from_fd(fd, 0), Err(ShmError::BadSegment(_))));
    }

    #[test]
    fn from_fd_refuses_an_unsealed_memfd() {
        let fd = rustix::fs::memfd_create("t", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::fs::ftruncate(&fd, 4096).unwrap();
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK).unwrap();
        let err = Segment::from_fd(fd, 4096).unwrap_err();
        assert!(matches!(err, ShmError::BadSegment(ref m) if m.contains("lack")), "{err}");
    }

    #[test]
    fn from_fd_refuses_something_that_is_not_a_memfd() {
        let r = crate::Doorbell::new().unwrap().as_fd().try_clone_to_owned().unwrap();
        assert!(matches!(Segment::from_fd(r, 4096), Err(ShmError::BadSegment(_))));
    }
}
