//! Backpressure: what the governor holds for a process that does not read.
//!
//! Each connection has an outbox: encoded frames waiting for the socket (their payload bytes
//! shared with the frames they came from, written with the header in one vectored write). Its budget is
//! [`budget`]: twice the largest frame (`--max-message-bytes` plus the frame overhead), so one
//! message of the largest size always fits behind another. The rule, one for every sender:
//!
//! - **Deliveries and publications are refused when they do not fit.** A `call` to an actor
//!   whose process's outbox is full fails at once with `CapacityError` naming the actor and
//!   saying its worker is not reading; a `cast` returns False; a publication is dropped and
//!   counted in the subscription's `dropped`, as a full subscription queue does.
//! - **Everything else is queued regardless** (replies, starts, stops, safety broadcasts):
//!   losing one would break the protocol, and they are bounded by what the process itself
//!   asked for or by the run's lifecycle.
//! - **Fds are bounded too.** A delivery that lends shared memory is small in bytes but holds
//!   fds (its segments) until it is written; one is refused, as above, when the outbox already
//!   holds [`MAX_QUEUED_FDS`], so a worker that does not read cannot make the governor run out
//!   of descriptors.
//! - **A worker whose outbox stays over budget for [`HUNG_AFTER`] is declared hung** and
//!   killed with its process group; its supervisors restart its actors elsewhere. The main
//!   process is never killed for this (it is the program; its frames are only refused).
//!
//! Frames *from* processes are bounded too (see `listener.rs`): each connection's reader
//! waits for room in the router's input budget before it reads on, so a flooding peer is
//! slowed down by its own socket, and the router, which never sends to itself there, cannot
//! deadlock on it.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rebeam_proto::{Encoded, ErrorInfo, ErrorKind, IntoEncoded, Role};
use tokio::sync::mpsc;

use crate::router::{ProcIdx, ProcState, Router};

/// How long a worker's outbox may stay over budget before the worker is declared hung.
pub const HUNG_AFTER: Duration = Duration::from_secs(5);

/// The most fds one outbox holds before it refuses deliveries that bring more (see the module
/// doc): a few hundred lent segments waiting for one worker means it is not reading.
pub const MAX_QUEUED_FDS: usize = 256;

/// The outbox budget for a frame limit: room for two frames of the largest size.
pub fn budget(frame_limit: u64) -> u64 {
    frame_limit.saturating_mul(2)
}

/// One queued frame, and the fds that go with its first byte (SCM_RIGHTS): the outbox holds
/// them until they are written, then they close, so the governor keeps no channel open.
pub struct Outgoing {
    pub bytes: Encoded,
    pub fds: Vec<OwnedFd>,
}

/// The sending half of one connection's outbox (the router's side).
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Outgoing>,
    state: Arc<State>,
}

struct State {
    queued: AtomicU64,
    /// Fds of the frames queued and not yet taken by the writer.
    fds: AtomicU64,
    budget: u64,
    /// Since when the outbox has been over budget (or refused a frame) without draining.
    over_since: Mutex<Option<Instant>>,
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Full {
        queued: u64,
        budget: u64,
    },
    /// The outbox holds [`MAX_QUEUED_FDS`] fds already.
    TooManyFds {
        queued: u64,
    },
    Closed,
}

/// The receiving half, for the connection's writer task.
pub struct Drain {
    rx: mpsc::UnboundedReceiver<Outgoing>,
    state: Arc<State>,
}

pub fn outbox(budget: u64) -> (Outbox, Drain) {
    let (tx, rx) = mpsc::unbounded_channel();
    let state =
        Arc::new(State { queued: AtomicU64::new(0), fds: AtomicU64::new(0), budget, over_since: Mutex::new(None) });
    (Outbox { tx, state: state.clone() }, Drain { rx, state })
}

impl State {
    /// `now` is the router's clock (`Os::now`), read only when the outbox goes over: the
    /// hung-worker sweep compares against the same clock, which the model test makes virtual.
    fn mark_over(&self, now: impl FnOnce() -> Instant) {
        let mut since = self.over_since.lock().unwrap_or_else(|p| p.into_inner());
        since.get_or_insert_with(now);
    }
}

impl Outbox {
    /// Queues a frame the protocol cannot lose, whatever the budget; false if the connection
    /// is gone. `now` tells the time should the outbox go over budget.
    #[cfg(test)]
    pub fn push(&self, bytes: Encoded, now: impl FnOnce() -> Instant) -> bool {
        self.push_with_fds(bytes, Vec::new(), now)
    }

    /// As `push`, with fds that travel with the frame (a channel end handed over).
    pub fn push_with_fds(&self, bytes: Encoded, fds: Vec<OwnedFd>, now: impl FnOnce() -> Instant) -> bool {
        let len = bytes.len() as u64;
        self.state.fds.fetch_add(fds.len() as u64, Ordering::SeqCst);
        let queued = self.state.queued.fetch_add(len, Ordering::SeqCst) + len;
        if queued > self.state.budget {
            self.state.mark_over(now);
        }
        self.tx.send(Outgoing { bytes, fds }).is_ok()
    }

    /// Queues a frame only if it fits in the budget.
    #[cfg(test)]
    pub fn offer(&self, bytes: Encoded, now: impl FnOnce() -> Instant) -> Result<(), Refusal> {
        self.offer_with_fds(bytes, Vec::new(), now)
    }

    /// As `offer`, with fds that travel with the frame; a refused frame's fds close here.
    pub fn offer_with_fds(
        &self,
        bytes: Encoded,
        fds: Vec<OwnedFd>,
        now: impl FnOnce() -> Instant,
    ) -> Result<(), Refusal> {
        let len = bytes.len() as u64;
        let queued = self.state.queued.load(Ordering::SeqCst);
        if queued > 0 && queued.saturating_add(len) > self.state.budget {
            self.state.mark_over(now);
            return Err(Refusal::Full { queued, budget: self.state.budget });
        }
        let held = self.state.fds.load(Ordering::SeqCst);
        if !fds.is_empty() && held + fds.len() as u64 > MAX_QUEUED_FDS as u64 {
            return Err(Refusal::TooManyFds { queued: held });
        }
        if self.push_with_fds(bytes, fds, now) {
            Ok(())
        } else {
            Err(Refusal::Closed)
        }
    }

    /// How long the outbox has been over budget without draining, if it is.
    pub fn over_for(&self, now: Instant) -> Option<Duration> {
        let since = *self.state.over_since.lock().unwrap_or_else(|p| p.into_inner());
        since.map(|at| now.saturating_duration_since(at))
    }
}

impl Drain {
    /// The next frame for the socket; its fds leave the outbox's count (the writer closes them
    /// once written).
    pub async fn recv(&mut self) -> Option<Outgoing> {
        let out = self.rx.recv().await?;
        self.state.fds.fetch_sub(out.fds.len() as u64, Ordering::SeqCst);
        Some(out)
    }

    /// The next frame if one is queued already, as `recv` gives it (the writer takes a burst
    /// in one write).
    pub fn try_next(&mut self) -> Option<Outgoing> {
        let out = self.rx.try_recv().ok()?;
        self.state.fds.fetch_sub(out.fds.len() as u64, Ordering::SeqCst);
        Some(out)
    }

    /// A frame already queued, if any, counted as written (the model test's fake processes).
    #[cfg(test)]
    pub fn try_recv(&mut self) -> Option<Encoded> {
        self.try_recv_with_fds().map(|out| out.bytes)
    }

    /// As `try_recv`, with the fds that go with the frame.
    #[cfg(test)]
    pub fn try_recv_with_fds(&mut self) -> Option<Outgoing> {
        let out = self.try_next()?;
        self.written(out.bytes.len());
        Some(out)
    }

    /// `len` bytes reached the socket.
    pub fn written(&self, len: usize) {
        let left = self.state.queued.fetch_sub(len as u64, Ordering::SeqCst).saturating_sub(len as u64);
        if left <= self.state.budget {
            *self.state.over_since.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }
}

impl Router {
    /// Sends a frame that may be refused (a delivery or a publication): see the module doc.
    pub fn offer(&self, proc: ProcIdx, frame: impl IntoEncoded) -> Result<(), Refusal> {
        self.offer_with_fds(proc, frame, Vec::new())
    }

    /// As `offer`, with fds that go with the frame (a delivery's lent segments); they close
    /// here if it is refused.
    pub fn offer_with_fds(&self, proc: ProcIdx, frame: impl IntoEncoded, fds: Vec<OwnedFd>) -> Result<(), Refusal> {
        let Some(tx) = self.procs.get(proc).and_then(|p| p.tx.as_ref()) else {
            return Err(Refusal::Closed);
        };
        match frame.into_encoded() {
            Ok(bytes) => tx.offer_with_fds(bytes, fds, || self.os.now()),
            Err(e) => {
                tracing::error!("cannot encode a frame for {}: {e}", self.procs[proc].describe());
                Err(Refusal::Closed)
            }
        }
    }

    /// What the sender of a refused delivery to `target` is told.
    pub fn refusal_info(&self, proc: ProcIdx, target: &str, refusal: Refusal) -> ErrorInfo {
        let place = self.procs.get(proc).map_or_else(|| "its worker".to_string(), |p| p.describe());
        match refusal {
            Refusal::Closed => ErrorInfo::new(ErrorKind::ActorDown, format!("the worker of actor {target} is gone")),
            Refusal::TooManyFds { queued } => ErrorInfo::new(
                ErrorKind::Full,
                format!(
                    "actor {target} cannot take the message: its {place} is not reading ({queued} shared-memory \
                     segments wait for it, at most {MAX_QUEUED_FDS}); try again later"
                ),
            ),
            Refusal::Full { queued, budget } => ErrorInfo::new(
                ErrorKind::Full,
                format!(
                    "actor {target} cannot take the message: its {place} is not reading ({queued} bytes wait for it, \
                     over the budget of {budget}); try again later (a worker that stays so for {HUNG_AFTER:?} is \
                     killed and its actors restarted)"
                ),
            ),
        }
    }

    /// Kills every worker whose outbox has stayed over budget for [`HUNG_AFTER`].
    pub fn kill_hung_workers(&mut self, now: Instant) {
        for proc in self.procs.ids() {
            let p = &self.procs[proc];
            let hung = p.tx.as_ref().and_then(|tx| tx.over_for(now)).is_some_and(|t| t >= HUNG_AFTER);
            if !hung || p.role != Role::Worker || p.state == ProcState::Dead {
                continue;
            }
            tracing::error!(
                "{} has not read its messages for {HUNG_AFTER:?} (its outbox is full); killing it as hung, \
                 with the {} actor(s) in it",
                p.describe(),
                self.actors.count_on(proc)
            );
            self.kill_proc(proc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` raw bytes, as a frame the outbox only counts.
    fn frame(n: usize) -> Encoded {
        Encoded::from(vec![0; n])
    }

    #[tokio::test]
    async fn an_outbox_refuses_what_does_not_fit_and_takes_it_again_once_drained() {
        let (out, mut drain) = outbox(10);
        assert_eq!(out.offer(frame(6), Instant::now), Ok(()));
        assert_eq!(out.offer(frame(6), Instant::now), Err(Refusal::Full { queued: 6, budget: 10 }));
        let now = Instant::now();
        assert!(out.over_for(now).is_some());
        // Frames that cannot be lost are queued anyway.
        assert!(out.push(frame(6), Instant::now));
        let first = drain.recv().await.expect("queued").bytes;
        drain.written(first.len());
        let second = drain.recv().await.expect("queued").bytes;
        drain.written(second.len());
        assert_eq!(out.over_for(now), None);
        assert_eq!(out.offer(frame(10), Instant::now), Ok(()));
        drop(drain);
        assert_eq!(out.offer(frame(1), Instant::now), Err(Refusal::Full { queued: 10, budget: 10 }));
    }

    #[tokio::test]
    async fn an_empty_outbox_takes_one_frame_of_any_size() {
        let (out, _drain) = outbox(10);
        assert_eq!(out.offer(frame(50), Instant::now), Ok(()));
    }

    fn fds(n: usize) -> Vec<OwnedFd> {
        (0..n).map(|_| rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).expect("an eventfd")).collect()
    }

    #[tokio::test]
    async fn an_outbox_refuses_deliveries_past_its_fd_bound_and_takes_them_once_written() {
        let (out, mut drain) = outbox(1 << 20);
        assert_eq!(out.offer_with_fds(frame(1), fds(MAX_QUEUED_FDS - 1), Instant::now), Ok(()));
        let refused = out.offer_with_fds(frame(1), fds(2), Instant::now);
        assert_eq!(refused, Err(Refusal::TooManyFds { queued: MAX_QUEUED_FDS as u64 - 1 }));
        assert_eq!(out.offer(frame(1), Instant::now), Ok(()), "a delivery without fds still fits");
        assert!(out.push_with_fds(frame(1), fds(2), Instant::now), "what cannot be lost is queued anyway");
        while drain.try_recv_with_fds().is_some() {}
        assert_eq!(out.offer_with_fds(frame(1), fds(MAX_QUEUED_FDS), Instant::now), Ok(()));
    }
}
