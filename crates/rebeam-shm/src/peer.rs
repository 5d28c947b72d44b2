//! Watching a peer process: a pidfd, readable once the process has exited.
//!
//! Rules: a pidfd names one process, not a pid number, so a recycled pid is never mistaken for
//! the peer once the watch exists; open it while the peer is known to be alive (the governor
//! tells each end its peer's pid while both run). It sits in the same `poll` as the doorbell, so
//! a wait ends at once when the peer dies, whatever the ring holds.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, PidfdFlags};

use crate::error::{Result, ShmError};

/// A watch on one peer process.
#[derive(Debug)]
pub struct PeerWatch {
    pidfd: OwnedFd,
    pid: u32,
}

impl PeerWatch {
    /// Watches process `pid`; `PeerGone` if it no longer exists.
    pub fn new(pid: u32) -> Result<PeerWatch> {
        let raw = i32::try_from(pid).ok().and_then(Pid::from_raw);
        let pid_ = raw.ok_or(ShmError::PeerGone)?;
        match rustix::process::pidfd_open(pid_, PidfdFlags::empty()) {
            Ok(pidfd) => Ok(PeerWatch { pidfd, pid }),
            Err(rustix::io::Errno::SRCH) => Err(ShmError::PeerGone),
            Err(e) => Err(ShmError::os("pidfd_open")(e)),
        }
    }

    /// The watched pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the peer has exited, without waiting (one `poll` system call).
    pub fn gone(&self) -> bool {
        let mut fds = [PollFd::new(&self.pidfd, PollFlags::IN)];
        let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
        matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
    }
}

impl AsFd for PeerWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_process_is_not_gone_and_an_exited_one_is() {
        let me = PeerWatch::new(std::process::id()).unwrap();
        assert!(!me.gone());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let watch = PeerWatch::new(child.id()).unwrap();
        child.wait().unwrap();
        assert!(watch.gone());
    }

    #[test]
    fn a_pid_that_does_not_exist_is_gone() {
        // Pid numbers stop at 2^22 on Linux; this one cannot exist.
        assert!(matches!(PeerWatch::new(1 << 30), Err(ShmError::PeerGone)));
        assert!(matches!(PeerWatch::new(u32::MAX), Err(ShmError::PeerGone)));
    }
}
