//! Watching a peer process: a pidfd, readable once the process has exited.
//!
//! Rules: a pidfd names one process, not a pid number, so a recycled pid is never mistaken for
//! the peer once the watch exists. Best, the governor (which holds a pidfd for every process it
//! spawns) hands the pidfd itself over with the channel's fds ([`PeerWatch::from_pidfd`]); a
//! watch opened from a pid number ([`PeerWatch::new`]) must be opened while the peer is known
//! to be alive. It sits in the same `poll` as the doorbell, so
//! a wait ends at once when the peer dies, whatever the ring holds.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

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

    /// Adopts a pidfd handed over by another process, checking that it is one. A watch on a
    /// process already reaped reports pid 0 and is gone.
    pub fn from_pidfd(pidfd: OwnedFd) -> Result<PeerWatch> {
        let raw = pidfd.as_raw_fd();
        let link = std::fs::read_link(format!("/proc/self/fd/{raw}"))
            .map_err(|e| ShmError::Os { op: "read the fd's link", source: e })?;
        if link.as_os_str() != "anon_inode:[pidfd]" {
            return Err(ShmError::BadMessage(format!("{} is not a pidfd", link.display())));
        }
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{raw}"))
            .map_err(|e| ShmError::Os { op: "read the fd's info", source: e })?;
        let pid = info
            .lines()
            .find_map(|l| l.strip_prefix("Pid:"))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .ok_or_else(|| ShmError::BadMessage("a pidfd without a Pid line".into()))?;
        Ok(PeerWatch { pidfd, pid: u32::try_from(pid).unwrap_or(0) })
    }

    /// A second watch on the same process (a dup of the pidfd), for a second channel end.
    pub fn try_clone(&self) -> Result<PeerWatch> {
        let pidfd = self.pidfd.try_clone().map_err(|e| ShmError::Os { op: "dup", source: e })?;
        Ok(PeerWatch { pidfd, pid: self.pid })
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
    fn a_pidfd_handed_over_watches_the_same_process() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let watch = PeerWatch::new(child.id()).unwrap();
        let (a, b) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        crate::fdpass::send_fds(&a, b"p", &[watch.as_fd()]).unwrap();
        let (_, mut fds) = crate::fdpass::recv_fds(&b, &mut [0u8; 1]).unwrap();
        let adopted = PeerWatch::from_pidfd(fds.pop().unwrap()).unwrap();
        assert_eq!(adopted.pid(), child.id());
        let clone = adopted.try_clone().unwrap();
        assert!(!adopted.gone() && !clone.gone());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(adopted.gone() && clone.gone());
    }

    #[test]
    fn an_fd_that_is_not_a_pidfd_is_refused() {
        let bell = crate::Doorbell::new().unwrap();
        let fd = bell.as_fd().try_clone_to_owned().unwrap();
        assert!(matches!(PeerWatch::from_pidfd(fd), Err(ShmError::BadMessage(_))));
    }

    #[test]
    fn a_pid_that_does_not_exist_is_gone() {
        // Pid numbers stop at 2^22 on Linux; this one cannot exist.
        assert!(matches!(PeerWatch::new(1 << 30), Err(ShmError::PeerGone)));
        assert!(matches!(PeerWatch::new(u32::MAX), Err(ShmError::PeerGone)));
    }
}
