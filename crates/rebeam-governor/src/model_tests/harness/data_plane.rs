//! The data plane's frames in the model: messages and replies that lend shared-memory pieces,
//! and direct calls' replies that go the governor's way.
//!
//! The rules checked:
//! - **A lent fd is released exactly once.** Each lent fd is the write end of a pipe the
//!   harness watches: no fake process may receive the same one twice (forwarded once at most),
//!   and once the run is over and every process's connection gone, every one must be closed
//!   (the governor keeps none: forwarded, or closed where refused).
//! - **A direct reply reaches its caller, or the caller learns the channel closed.** A direct
//!   call is made on a channel the caller got from a route (it goes on the ring, which the
//!   model has none of: the host owes its reply); once the host replies the governor's way,
//!   the caller, while it reads, must have the answer or have been told the channel closed (a
//!   real caller then fails the call with `ActorDown`); likewise once the channel is gone.

use std::io::Read;
use std::os::fd::OwnedFd;

use bytes::Bytes;
use rebeam_proto::{decode_inbound, Event, Frame, Inbound, LentPiece, Outcome, Routed, Status, HEADER_BYTES};

use super::Harness;
use crate::model_tests::gen;
use crate::router::{Input, ProcState};

/// The size each lent piece's segment claims (the governor reads no segment).
const SEGMENT_LEN: u64 = 8192;

impl Harness {
    /// Sends `frame` from process `i`, lending its buffers now and then (a call, a cast or a
    /// reply with buffers), else as it is.
    pub(super) fn send_maybe_lent(&mut self, i: usize, mut frame: Frame) -> Result<bool, String> {
        let buffers = match &frame {
            Frame::Request { body: rebeam_proto::Request::Call { payload, .. }, .. }
            | Frame::Request { body: rebeam_proto::Request::Cast { payload, .. }, .. }
            | Frame::Event(Event::Replied { outcome: Outcome::Reply { payload, .. }, .. }) => payload.buffers.len(),
            _ => 0,
        };
        if buffers == 0 || !self.rng.chance(1, 2) {
            return self.frame(i, frame);
        }
        match &mut frame {
            Frame::Request { body: rebeam_proto::Request::Call { payload, .. }, .. }
            | Frame::Request { body: rebeam_proto::Request::Cast { payload, .. }, .. }
            | Frame::Event(Event::Replied { outcome: Outcome::Reply { payload, .. }, .. }) => lent_away(payload),
            _ => {}
        }
        let hot = Routed::from_frame(frame).map_err(|f| format!("not a hot frame: {f:?}"))?;
        let (hot, fds) = self.lend(hot, buffers)?;
        self.feed(Input::Lent(self.ids[i], hot, fds)).map(|()| true)
    }

    /// `hot` lending its `buffers` pieces, as the listener reads it, with one watched fd for
    /// each (now and then one too many or too few: the governor must refuse it and close them).
    fn lend(&mut self, hot: Routed, buffers: usize) -> Result<(Routed, Vec<OwnedFd>), String> {
        let loans: Vec<LentPiece> =
            (1..=buffers as u32).map(|piece| LentPiece { piece, segment_len: SEGMENT_LEN, len: 0, slot: 0 }).collect();
        let hot = hot.lend(&loans).map_err(|e| format!("cannot lend: {e}"))?;
        *self.known.seen.entry("(a lent frame sent)".into()).or_default() += 1;
        let wire = Bytes::from(hot.encode().map_err(|e| format!("cannot encode: {e}"))?.to_vec());
        let Inbound::Hot(hot) = decode_inbound(wire.slice(HEADER_BYTES..)).map_err(|e| format!("{e}"))? else {
            return Err("a lent frame read back cold".into());
        };
        let n = match self.rng.below(20) {
            0 => buffers + 1,
            1 => buffers - 1,
            _ => buffers,
        };
        let what = crate::model_tests::fake::describe(&Input::Hot(self.ids[0], hot.clone()));
        let mut fds = Vec::with_capacity(n);
        for _ in 0..n {
            let (read, write) = std::io::pipe().map_err(|e| format!("a pipe: {e}"))?;
            rustix::io::ioctl_fionbio(&read, true).map_err(|e| format!("non-blocking: {e}"))?;
            self.lent.push((read, what.clone()));
            fds.push(write.into());
        }
        Ok((hot, fds))
    }

    /// A direct call: a process with a route's channel calls the actor's process on it.
    pub(super) fn direct_call(&mut self) -> Result<bool, String> {
        let Some(i) = self.pick(|f, _, _| f.talking() && !f.routes.is_empty()) else {
            return Ok(false);
        };
        let open = self.router.channels.of(self.ids[i]);
        let mine: Vec<(u64, usize)> = open
            .iter()
            .filter(|(c, _)| self.fakes[i].routes.contains(c))
            .filter_map(|&(c, other)| self.ids.iter().position(|&id| id == other).map(|j| (c, j)))
            .collect();
        if mine.is_empty() {
            return Ok(false);
        }
        let (channel, j) = mine[self.rng.below(mine.len() as u64) as usize];
        let f = &mut self.fakes[i];
        f.next_req += 1;
        let req = f.next_req;
        f.direct_waiting.insert(req, channel);
        self.fakes[j].direct_owed.push((channel, req, i));
        *self.known.seen.entry("(a direct call made)".into()).or_default() += 1;
        self.note(format!("process {i} calls direct on channel {channel} (request {req}), process {j} owes it"));
        Ok(true)
    }

    /// The host of a direct call replies the governor's way (its ring too small for the reply),
    /// lending its buffers now and then; or, now and then, names a channel that is not its own.
    pub(super) fn direct_reply(&mut self) -> Result<bool, String> {
        let Some(j) = self.pick(|f, _, _| f.talking() && !f.direct_owed.is_empty()) else {
            return Ok(false);
        };
        let owed = &mut self.fakes[j].direct_owed;
        let (channel, req, caller) = owed.swap_remove(self.rng.below(owed.len() as u64) as usize);
        let stray = self.rng.chance(1, 10);
        let status = if self.rng.chance(1, 5) { Status::Error } else { Status::Ok };
        let mut payload = gen::payload(&mut self.rng);
        let buffers = payload.buffers.len();
        let lent = buffers > 0 && self.rng.chance(1, 2);
        if lent {
            lent_away(&mut payload);
        }
        let outcome = Outcome::Reply { status, payload };
        let replied = Routed::from_frame(Frame::Event(Event::Replied { delivery: 0, outcome }))
            .map_err(|f| format!("not hot: {f:?}"))?;
        // A channel no process has: the governor answers no one.
        let named = if stray { channel + 1_000_000 } else { channel };
        let hot = replied.into_direct_reply(named, req);
        if !stray {
            self.fakes[caller].direct_replied.insert(req);
        }
        let what =
            if stray { "(a direct reply naming another channel)" } else { "(a direct reply the governor's way)" };
        *self.known.seen.entry(what.into()).or_default() += 1;
        if lent {
            let (hot, fds) = self.lend(hot, buffers)?;
            return self.feed(Input::Lent(self.ids[j], hot, fds)).map(|()| true);
        }
        self.feed(Input::Hot(self.ids[j], hot)).map(|()| true)
    }

    /// Every direct call whose host replied, or whose channel is gone, has reached its caller
    /// as an answer or a closed channel, while the caller reads (see the module rules).
    pub(super) fn directs_answered_or_closed(&self) -> Result<(), String> {
        for (i, f) in self.fakes.iter().enumerate() {
            let id = self.ids[i];
            let Some(p) = self.router.procs.get(id) else { continue };
            if f.stalled || f.gone || f.closed || p.tx.is_none() || p.state == ProcState::Dead {
                continue;
            }
            let open = self.router.channels.of(id);
            for (&req, &channel) in &f.direct_waiting {
                if f.channels_closed.contains(&channel) {
                    continue;
                }
                if f.direct_replied.contains(&req) {
                    return Err(format!(
                        "{}'s direct call {req} was replied to the governor's way on channel {channel}, and the answer never came",
                        p.describe()
                    ));
                }
                if !open.iter().any(|&(c, _)| c == channel) {
                    return Err(format!(
                        "{}'s channel {channel} is gone, with direct call {req} in flight, and it was not told",
                        p.describe()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The watched pipes, once the run is over, every connection gone with what it held.
    pub fn take_lent(&mut self) -> Vec<(std::io::PipeReader, String)> {
        for f in &mut self.fakes {
            f.conn = None;
        }
        std::mem::take(&mut self.lent)
    }
}

/// Once the router is gone too (what it parked goes with it, as with the governor's exit):
/// every lent fd is closed, so the governor kept none.
pub fn lent_fds_released(lent: Vec<(std::io::PipeReader, String)>) -> Result<(), String> {
    let mut byte = [0u8; 1];
    for (mut read, what) in lent {
        match read.read(&mut byte) {
            Ok(0) => {}
            Ok(_) => return Err(format!("the pipe of an fd lent by {what} carried bytes")),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                return Err(format!("an fd lent by {what} is still open after the run: the governor kept it"))
            }
            Err(e) => return Err(format!("reading the pipe of an fd lent by {what}: {e}")),
        }
    }
    Ok(())
}

/// A payload whose buffers are lent: their bytes are in segments, not in the frame.
fn lent_away(payload: &mut rebeam_proto::Payload) {
    for b in &mut payload.buffers {
        *b = Bytes::new();
    }
}
