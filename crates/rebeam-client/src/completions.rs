//! Completions: requests answered onto one queue instead of to a thread that waits for each.
//!
//! The rules (one future per request, and none ever hangs):
//! - [`Client::start_completion`](crate::Client::start_completion) returns a [`Tag`] only if
//!   exactly one [`Completion`] for that tag will be queued: the governor's response, or
//!   [`ClientError::Timeout`] once its deadline passes with no response (a backstop: the governor
//!   answers every call by its own deadline), or [`ClientError::Gone`] when the connection
//!   closes first. Whichever comes first removes the request from the pending map, so the others
//!   find nothing and add nothing.
//! - [`Client::forget`](crate::Client::forget) removes a request the same way: nothing is
//!   queued for it afterwards, and a late response is dropped.
//! - [`Client::next_completion`](crate::Client::next_completion) takes the oldest completion
//!   (expiring deadlines first); once the connection has closed and every completion is taken
//!   it returns [`ClientError::Closed`], so a draining thread knows to end.
//! - The queue is unbounded so that the reader never blocks on a slow consumer (a response
//!   queued behind it would stall every other waiter), but it is bounded in practice by what
//!   the process started: one entry per outstanding completion, one wake-up per start that
//!   brought the earliest deadline forward, and one at the close.
//!
//! - The drainer may read the rings itself while the queue is empty (`completion_reader.rs`):
//!   it says so ([`Completions::rings_waiting`]) before it looks at the queue a last time, and
//!   whoever queues anything looks at that after it is in (behind a `SeqCst` fence on both
//!   sides), ringing the queue's doorbell, which the drainer sleeps on beside the rings.
//!
//! Lock order: the deadlines, then the pending map; nothing holds the pending map while
//! taking the deadlines.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use rebeam_proto::{ReqId, Response};
use rebeam_shm::Doorbell;

use crate::client::{lock, Waiter};
use crate::ClientError;

/// Names one request started with a completion (it is the request's id on the wire).
pub type Tag = ReqId;

/// How one request started with a completion ended.
#[derive(Debug)]
pub struct Completion {
    pub tag: Tag,
    /// The governor's response; else `Timeout` (its deadline passed) or `Gone` (the connection closed).
    pub result: Result<Response, ClientError>,
}

enum Queued {
    Done(Completion),
    /// Something changed that a blocked consumer must look at: an earlier deadline, or the close.
    Wake,
}

/// The completion queue and the deadlines of the requests on it.
pub(crate) struct Completions {
    tx: Sender<Queued>,
    rx: Receiver<Queued>,
    deadlines: Mutex<BinaryHeap<Reverse<(Instant, Tag)>>>,
    /// Set by the reader once every completion outstanding at the close is queued.
    ended: AtomicBool,
    /// The drainer sleeps on the rings and on `bell` (see `completion_reader.rs`).
    pub(crate) rings_waiting: AtomicBool,
    /// None if no eventfd could be made: the drainer then always sleeps on the queue.
    bell: Option<Doorbell>,
}

impl Completions {
    pub(crate) fn new() -> Completions {
        let (tx, rx) = unbounded();
        Completions {
            tx,
            rx,
            deadlines: Mutex::new(BinaryHeap::new()),
            ended: AtomicBool::new(false),
            rings_waiting: AtomicBool::new(false),
            bell: Doorbell::new().ok(),
        }
    }

    /// The doorbell a drainer reading the rings sleeps on.
    pub(crate) fn bell(&self) -> Option<&Doorbell> {
        self.bell.as_ref()
    }

    /// Whether anything is queued for the drainer to look at.
    pub(crate) fn queued(&self) -> bool {
        !self.rx.is_empty()
    }

    /// Queues the end of a request the caller has just removed from the pending map.
    pub(crate) fn push(&self, completion: Completion) {
        self.send(Queued::Done(completion));
    }

    fn send(&self, queued: Queued) {
        // The receiver lives as long as `self`, so the send cannot fail.
        let _ = self.tx.send(queued);
        // Pairs with the fence in `completion_reader`: either this sees the flag, or the
        // drainer sees the entry before it sleeps.
        fence(Ordering::SeqCst);
        if self.rings_waiting.load(Ordering::SeqCst) {
            if let Some(bell) = &self.bell {
                let _ = bell.ring();
            }
        }
    }

    /// Arms the backstop for `tag`. Entries of requests answered or forgotten meanwhile stay
    /// until their deadline and are skipped then, which is cheaper than finding them now.
    pub(crate) fn add_deadline(&self, tag: Tag, deadline: Instant) {
        let mut heap = lock(&self.deadlines);
        let earliest = heap.peek().is_none_or(|Reverse((first, _))| deadline < *first);
        heap.push(Reverse((deadline, tag)));
        drop(heap);
        if earliest {
            // A consumer may be blocked until a later deadline (or for ever): it must look again.
            self.send(Queued::Wake);
        }
    }

    /// Called by the reader after it queued `Gone` for every outstanding completion.
    pub(crate) fn end(&self) {
        self.ended.store(true, Ordering::SeqCst);
        self.send(Queued::Wake);
    }

    /// The next completion, waiting up to `timeout` (None: until there is one or the queue ends).
    /// Before it sleeps on an empty queue it calls `idle` with the time it would wake at
    /// (None: for ever), which may wait meanwhile (reading the rings) until something is queued.
    pub(crate) fn next(
        &self,
        pending: &Mutex<HashMap<ReqId, Waiter>>,
        timeout: Option<Duration>,
        idle: impl Fn(Option<Instant>),
    ) -> Result<Completion, ClientError> {
        let until = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            let next_deadline = match self.expire(pending, Instant::now()) {
                Ok(expired) => return Ok(expired),
                Err(next) => next,
            };
            if self.ended.load(Ordering::SeqCst) {
                // Everything that will ever be queued is queued: drain it, then say it is over.
                loop {
                    match self.rx.try_recv() {
                        Ok(Queued::Done(c)) => return Ok(c),
                        Ok(Queued::Wake) => continue,
                        Err(_) => return Err(ClientError::Closed),
                    }
                }
            }
            let wake = [until, next_deadline].into_iter().flatten().min();
            if self.rx.is_empty() {
                idle(wake);
            }
            let got = match wake {
                Some(at) => self.rx.recv_deadline(at),
                None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match got {
                Ok(Queued::Done(c)) => return Ok(c),
                Ok(Queued::Wake) | Err(RecvTimeoutError::Timeout) => {
                    if until.is_some_and(|u| Instant::now() >= u) {
                        return Err(ClientError::Timeout);
                    }
                }
                // `self` holds a sender, so the queue never disconnects.
                Err(RecvTimeoutError::Disconnected) => return Err(ClientError::Closed),
            }
        }
    }

    /// The first request whose deadline has passed unanswered, as a timed-out completion; else
    /// the next deadline still ahead.
    fn expire(&self, pending: &Mutex<HashMap<ReqId, Waiter>>, now: Instant) -> Result<Completion, Option<Instant>> {
        let mut heap = lock(&self.deadlines);
        while let Some(&Reverse((deadline, tag))) = heap.peek() {
            if deadline > now {
                return Err(Some(deadline));
            }
            heap.pop();
            if let Some(Waiter::Completion) = lock(pending).remove(&tag) {
                return Ok(Completion { tag, result: Err(ClientError::Timeout) });
            }
        }
        Err(None)
    }
}
