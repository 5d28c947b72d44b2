//! bocpy's tagged messages (`send`, `receive`, `drain`), kept by the governor so any process
//! can send to any other: one queue per tag, and receivers waiting on a set of tags.
//!
//! A receiver gets the oldest message among its tags (messages carry one global sequence
//! number, so "whichever arrived first" holds across tags); a message sent while someone
//! waits for its tag goes straight to the longest-waiting such receiver. A tag's queue holds
//! at most `MAX_QUEUED` messages; sending to a full one is refused, as bocpy's ring buffers
//! refuse.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use rebeam_proto::{ErrorInfo, ErrorKind, Frame, Payload, ReqId, Response};

use crate::router::{Input, ProcIdx, Router};

/// Messages a tag may hold before `send` is refused (bocpy's capacity).
pub const MAX_QUEUED: usize = 16_384;

struct Waiter {
    proc: ProcIdx,
    req: ReqId,
    tags: Vec<String>,
    token: u64,
}

#[derive(Default)]
pub struct Messages {
    queues: HashMap<String, VecDeque<(u64, Payload)>>,
    waiters: Vec<Waiter>,
    seq: u64,
}

impl Router {
    pub fn send_tagged(&mut self, tag: String, payload: Payload) -> Result<(), ErrorInfo> {
        if let Some(i) = self.messages.waiters.iter().position(|w| w.tags.contains(&tag)) {
            let w = self.messages.waiters.remove(i);
            self.send(w.proc, &Frame::Response { req: w.req, body: Response::Received(Some((tag, payload))) });
            return Ok(());
        }
        let queue = self.messages.queues.entry(tag.clone()).or_default();
        if queue.len() >= MAX_QUEUED {
            return Err(ErrorInfo::new(
                ErrorKind::Full,
                format!("the message queue for tag {tag:?} is full ({MAX_QUEUED} messages): receive or drain it"),
            ));
        }
        self.messages.seq += 1;
        queue.push_back((self.messages.seq, payload));
        Ok(())
    }

    pub fn receive_tagged(&mut self, proc: ProcIdx, req: ReqId, tags: Vec<String>, timeout_ms: Option<u64>) {
        let oldest = tags
            .iter()
            .filter_map(|t| self.messages.queues.get(t).and_then(|q| q.front()).map(|(seq, _)| (*seq, t.clone())))
            .min();
        if let Some((_, tag)) = oldest {
            let (_, payload) = self.messages.queues.get_mut(&tag).and_then(VecDeque::pop_front).expect("found");
            self.send(proc, &Frame::Response { req, body: Response::Received(Some((tag, payload))) });
            return;
        }
        if timeout_ms == Some(0) {
            self.send(proc, &Frame::Response { req, body: Response::Received(None) });
            return;
        }
        let token = self.next_id();
        self.messages.waiters.push(Waiter { proc, req, tags, token });
        if let Some(ms) = timeout_ms {
            self.after(Duration::from_millis(ms), Input::ReceiveDeadline(token));
        }
    }

    pub fn receive_deadline(&mut self, token: u64) {
        if let Some(i) = self.messages.waiters.iter().position(|w| w.token == token) {
            let w = self.messages.waiters.remove(i);
            self.send(w.proc, &Frame::Response { req: w.req, body: Response::Received(None) });
        }
    }

    pub fn drain_tagged(&mut self, tags: &[String]) {
        for t in tags {
            self.messages.queues.remove(t);
        }
    }

    pub fn drain_all(&mut self) {
        self.messages.queues.clear();
    }

    /// A process that died waits no more.
    pub fn messages_proc_died(&mut self, proc: ProcIdx) {
        self.messages.waiters.retain(|w| w.proc != proc);
    }
}

#[cfg(test)]
impl Messages {
    /// For the model test: the process of every waiting receiver.
    pub(crate) fn waiting_procs(&self) -> Vec<ProcIdx> {
        self.waiters.iter().map(|w| w.proc).collect()
    }
}
