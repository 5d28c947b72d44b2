//! bocpy's tagged messages (`send`, `receive`, `drain`), kept by the governor so any process
//! can send to any other: one queue per tag, and receivers waiting on a set of tags.
//!
//! A receiver gets the oldest message among its tags (messages carry one global sequence
//! number, so "whichever arrived first" holds across tags); a message sent while someone
//! waits for its tag goes straight to the longest-waiting such receiver. A tag's queue holds
//! at most `MAX_QUEUED` messages; sending to a full one is refused, as bocpy's ring buffers
//! refuse.
//!
//! As in bocpy there are `MAX_TAGS` queues. A tag gets one the first time it is sent to or
//! received from, and keeps it (drained or not) until `set_tags` hands the queues out anew;
//! a tag that finds every queue taken is refused (`ErrorKind::NoQueue`, bocpy's `KeyError`).
//! `drain` of a tag without a queue does nothing.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use rebeam_proto::{ErrorInfo, ErrorKind, Frame, Payload, ReqId, Response};

use crate::router::{Input, ProcIdx, Router};

/// Messages a tag may hold before `send` is refused (bocpy's capacity).
pub const MAX_QUEUED: usize = 16_384;

/// Tags that may have a queue at once (bocpy's queue count; bocpy's own runtime takes 3 of
/// them while it runs, rebeam's none).
pub const MAX_TAGS: usize = 16;

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

impl Messages {
    /// The queue of `tag`, given it now if it has none and one is free.
    fn queue(&mut self, tag: &str) -> Result<&mut VecDeque<(u64, Payload)>, ErrorInfo> {
        if !self.queues.contains_key(tag) {
            if self.queues.len() >= MAX_TAGS {
                let mut taken: Vec<&str> = self.queues.keys().map(String::as_str).collect();
                taken.sort_unstable();
                return Err(ErrorInfo::new(
                    ErrorKind::NoQueue,
                    format!(
                        "no message queue for tag {tag:?}: all {MAX_TAGS} are taken by tags {taken:?}; \
                         reuse one of those tags, or hand the queues out anew with set_tags()"
                    ),
                ));
            }
            self.queues.insert(tag.to_string(), VecDeque::new());
        }
        Ok(self.queues.get_mut(tag).expect("inserted above"))
    }
}

impl Router {
    pub fn send_tagged(&mut self, tag: String, payload: Payload) -> Result<(), ErrorInfo> {
        self.messages.queue(&tag)?;
        if let Some(i) = self.messages.waiters.iter().position(|w| w.tags.contains(&tag)) {
            let w = self.messages.waiters.remove(i);
            self.send(w.proc, Frame::Response { req: w.req, body: Response::Received(Some((tag, payload))) });
            return Ok(());
        }
        let seq = self.messages.seq + 1;
        let queue = self.messages.queue(&tag)?;
        if queue.len() >= MAX_QUEUED {
            return Err(ErrorInfo::new(
                ErrorKind::Full,
                format!("the message queue for tag {tag:?} is full ({MAX_QUEUED} messages): receive or drain it"),
            ));
        }
        queue.push_back((seq, payload));
        self.messages.seq = seq;
        Ok(())
    }

    pub fn receive_tagged(&mut self, proc: ProcIdx, req: ReqId, tags: Vec<String>, timeout_ms: Option<u64>) {
        for t in &tags {
            if let Err(info) = self.messages.queue(t) {
                self.send(proc, Frame::Response { req, body: Response::Refused(info) });
                return;
            }
        }
        let oldest = tags
            .iter()
            .filter_map(|t| self.messages.queues.get(t).and_then(|q| q.front()).map(|(seq, _)| (*seq, t.clone())))
            .min();
        if let Some((_, tag)) = oldest {
            let payload = self.messages.queues.get_mut(&tag).and_then(VecDeque::pop_front).map(|(_, p)| p);
            let body = Response::Received(payload.map(|p| (tag, p)));
            self.send(proc, Frame::Response { req, body });
            return;
        }
        if timeout_ms == Some(0) {
            self.send(proc, Frame::Response { req, body: Response::Received(None) });
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
            self.send(w.proc, Frame::Response { req: w.req, body: Response::Received(None) });
        }
    }

    /// Empties the queues of `tags`; they keep their queues.
    pub fn drain_tagged(&mut self, tags: &[String]) {
        for t in tags {
            if let Some(q) = self.messages.queues.get_mut(t) {
                q.clear();
            }
        }
    }

    /// bocpy's `set_tags`: every queue is emptied, and `tags` get them.
    pub fn set_tags(&mut self, tags: Vec<String>) -> Result<(), ErrorInfo> {
        let tags: std::collections::BTreeSet<String> = tags.into_iter().collect();
        if tags.len() > MAX_TAGS {
            return Err(ErrorInfo::new(
                ErrorKind::BadRequest,
                format!("set_tags() got {} tags; there are {MAX_TAGS} message queues", tags.len()),
            ));
        }
        self.messages.queues = tags.into_iter().map(|t| (t, VecDeque::new())).collect();
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_get_queues_until_none_is_left_and_keep_them() {
        let mut m = Messages::default();
        for i in 0..MAX_TAGS {
            m.queue(&format!("t{i}")).expect("a free queue");
        }
        m.queue("t0").expect("a tag keeps its queue");
        let err = m.queue("one-too-many").expect_err("every queue is taken");
        assert_eq!(err.kind, ErrorKind::NoQueue);
        assert!(err.message.contains("\"one-too-many\"") && err.message.contains("set_tags()"), "{}", err.message);
    }
}
