//! Direct channels: the governor creates them and hands them out; it never carries their traffic.
//!
//! The rules:
//! - A process asks for a route to an actor ([`Request::Route`](rebeam_proto::Request::Route)).
//!   The answer names the actor's current id and its gated handlers (under
//!   `--safety require-armed`, all of them: a catch-all gated and no handler of its own), and a channel between the
//!   asking process and the actor's process. Refused (the asker stays on the governor's path)
//!   when there is no such actor, when it is a task (no mailbox), when it has not started yet
//!   (its gated handlers are not known),
//!   when it lives in the asking process itself, or when the channel cannot be made. Groups
//!   stay on the governor's path too: a group's name (each message picks its member here) and
//!   a member of a least-busy group (the pick counts the calls it sees in flight).
//! - One channel per pair of processes, whichever asked first: two rings (one each way), both
//!   ends' doorbells, and a pidfd of each process for the other. The second process to ask gets
//!   the channel's id only (`fresh: false`): it already holds its end.
//! - The actor's process is told first ([`Command::ChannelOpened`](rebeam_proto::Command)), on
//!   its socket, behind every delivery the governor already sent it; then the asker gets its
//!   end. So a process opens a channel only after everything that reached it the old way
//!   before, which is what keeps each sender → actor pair in order across the switch.
//! - The governor owns lifetimes and keeps nothing: the fds leave with the frames that carry
//!   them and close once written. A channel dies with its two processes; when either dies, the
//!   other is told why ([`Command::ChannelClosed`](rebeam_proto::Command)), for the calls it
//!   had in flight there, and the entry here goes, so a replacement process gets a new one.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rebeam_proto::{
    ActorRef, ChannelGrant, Command, ErrorInfo, ErrorKind, Frame, Gating, ReqId, Response, Route, TargetRef,
    CHANNEL_FDS,
};
use rebeam_shm::{ChannelFds, PeerWatch};

use crate::router::{ProcIdx, Router};

/// Bytes of records each ring of a channel holds: room for many small calls in flight, small
/// enough that the rings of every peer of a worker keep an idle worker small. A record that does
/// not fit goes the governor's way.
pub const CHANNEL_RING_BYTES: usize = 256 * 1024;
/// The smallest ring a channel may have (tests use it to keep their channels cheap).
#[cfg(test)]
pub const MIN_RING_BYTES: usize = rebeam_shm::ring::MIN_CAPACITY;

/// One end of a new channel: its grant (without the id, which the router gives) and its fds in
/// [`CHANNEL_FDS`] order.
pub struct EndFds {
    pub peer_pid: u32,
    pub send_len: u64,
    pub recv_len: u64,
    pub fds: Vec<OwnedFd>,
}

impl EndFds {
    fn grant(&self, id: u64) -> ChannelGrant {
        ChannelGrant { id, peer_pid: self.peer_pid, send_len: self.send_len, recv_len: self.recv_len }
    }
}

/// Creates a channel between processes `a` and `b`: the two ends, `a`'s first. Called while both
/// are alive and unreaped (a child is not reaped before the router learns it died), so the
/// pidfds name them and not a recycled pid.
pub fn create(a: u32, b: u32, ring_bytes: usize) -> io::Result<(EndFds, EndFds)> {
    let shm = |e: rebeam_shm::ShmError| io::Error::other(e.to_string());
    let a_to_b = ChannelFds::create(ring_bytes).map_err(shm)?;
    let b_to_a = ChannelFds::create(ring_bytes).map_err(shm)?;
    let watch_a = PeerWatch::new(a).map_err(shm)?;
    let watch_b = PeerWatch::new(b).map_err(shm)?;
    let end = |send: &ChannelFds, recv: &ChannelFds, peer: &PeerWatch| -> io::Result<EndFds> {
        let mut fds = Vec::with_capacity(CHANNEL_FDS);
        for fd in send.fds().into_iter().chain(recv.fds()).chain([peer.as_fd()]) {
            fds.push(fd.try_clone_to_owned()?);
        }
        Ok(EndFds { peer_pid: peer.pid(), send_len: send.len as u64, recv_len: recv.len as u64, fds })
    };
    Ok((end(&a_to_b, &b_to_a, &watch_b)?, end(&b_to_a, &a_to_b, &watch_a)?))
}

/// The channels handed out, by pair of processes: the channel's id and its two processes.
#[derive(Default)]
pub struct Channels {
    open: HashMap<(u64, u64), (u64, ProcIdx, ProcIdx)>,
}

fn pair(a: ProcIdx, b: ProcIdx) -> (u64, u64) {
    let (a, b) = (a.to_raw(), b.to_raw());
    (a.min(b), a.max(b))
}

impl Channels {
    /// Forgets every channel of a process that died.
    pub fn proc_died(&mut self, proc: ProcIdx) {
        self.open.retain(|_, &mut (_, a, b)| a != proc && b != proc);
    }

    /// The channels of `proc`: each one's id and the process at its other end.
    pub fn of(&self, proc: ProcIdx) -> Vec<(u64, ProcIdx)> {
        let other =
            |&(id, a, b): &(u64, ProcIdx, ProcIdx)| (a == proc).then_some((id, b)).or((b == proc).then_some((id, a)));
        self.open.values().filter_map(other).collect()
    }

    /// How many channels are open.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.open.len()
    }
}

impl Router {
    /// Tells the process at the other end of each channel of `proc`, which died, why: the
    /// direct calls it has in flight there fail with these words, as they would have on the
    /// governor's path.
    pub(crate) fn channels_peer_died(&self, proc: ProcIdx, why: &str) {
        for (channel, other) in self.channels.of(proc) {
            self.send(other, Frame::Command(Command::ChannelClosed { channel, why: why.to_string() }));
        }
    }

    /// Answers a `Request::Route` (see the module doc).
    pub(crate) fn route(&mut self, proc: ProcIdx, req: ReqId, target: TargetRef<'_>) {
        match self.route_to(proc, target) {
            Ok((route, fds)) => {
                let frame = Frame::Response { req, body: Response::Route(Ok(route)) };
                self.send_with_fds(proc, frame, fds);
            }
            Err(info) => {
                self.send(proc, Frame::Response { req, body: Response::Route(Err(info)) });
            }
        }
    }

    fn route_to(&mut self, proc: ProcIdx, target: TargetRef<'_>) -> Result<(Route, Vec<OwnedFd>), ErrorInfo> {
        if let TargetRef::Name(name) = target {
            if self.names.lookup(name).is_none() && self.names.groups().any(|(g, _)| g == name) {
                // Each message to a group's name picks its member here: a route would pin one.
                return Err(ErrorInfo::new(
                    ErrorKind::BadRequest,
                    format!("'{name}' names a group: each message picks its member in the governor"),
                ));
            }
            if self.is_elsewhere(name) {
                // Only the governor's path crosses to other nodes (node.rs).
                return Err(ErrorInfo::new(
                    ErrorKind::BadRequest,
                    format!("no actor here is named '{name}': calls to it go through the governor to the other nodes"),
                ));
            }
        }
        let id = self.resolve(target)?;
        let counted = self
            .names
            .groups()
            .any(|(_, g)| g.balance() == rebeam_core::registry::Balance::LeastBusy && g.members().contains(&Some(id)));
        if counted {
            // A least-busy group picks by the calls it sees in flight: its members' calls must
            // all pass here to be counted.
            return Err(ErrorInfo::new(
                ErrorKind::BadRequest,
                "a member of a least-busy group takes its calls through the governor, which counts them",
            ));
        }
        let actor = self.actors.get(&id).expect("resolve() found it");
        let (label, name, mut gating) = (actor.label.clone(), actor.name.clone(), actor.gating.clone());
        if self.gate.gates(false) {
            // `--safety require-armed`: every subject is gated, so none may go direct.
            gating = Gating { handled: Vec::new(), subjects: Vec::new(), catch_all: true };
        }
        let host = self
            .actors
            .proc_of(id)
            .filter(|_| actor.started)
            .ok_or_else(|| ErrorInfo::new(ErrorKind::NoProcess, format!("actor {label} has not started yet")))?;
        if actor.is_task() {
            return Err(ErrorInfo::new(ErrorKind::NoMailbox, format!("{label} is a task; tasks take no messages")));
        }
        if host == proc {
            return Err(ErrorInfo::new(ErrorKind::BadRequest, format!("actor {label} lives in this process")));
        }
        let actor = ActorRef { id, name };
        let host_pid = self.procs[host].pid;
        if let Some(&(channel, _, _)) = self.channels.open.get(&pair(proc, host)) {
            let channel = ChannelGrant { id: channel, peer_pid: host_pid, send_len: 0, recv_len: 0 };
            return Ok((Route { actor, gating, channel, fresh: false }, Vec::new()));
        }
        let (mine, theirs) = self.os.open_channel(self.procs[proc].pid, host_pid).map_err(|e| {
            ErrorInfo::new(ErrorKind::BadRequest, format!("cannot open a channel to actor {label}: {e}"))
        })?;
        let channel = self.next_id();
        self.channels.open.insert(pair(proc, host), (channel, proc, host));
        self.send_with_fds(host, Frame::Command(Command::ChannelOpened(theirs.grant(channel))), theirs.fds);
        Ok((Route { actor, gating, channel: mine.grant(channel), fresh: true }, mine.fds))
    }
}
