//! Payload bytes travel beside the bincode header, not inside it.
//!
//! A frame's body is its header (the bincode encoding of the frame with every payload's bytes
//! taken out, and the length of each piece taken out) followed by those pieces, in the order
//! [`payloads`] visits them. So a reader decodes only the small header and takes the pieces as
//! slices of the buffer it read (`Bytes::slice`: no copy), and a writer sends the pieces as they
//! are, in one vectored write with the header (no concatenation).
//!
//! The rules a body must follow, or it is malformed:
//! - the header length fits in the body, and the header decodes within it;
//! - there is exactly one length per payload piece, every piece is empty inside the header, and
//!   the pieces fill the rest of the body exactly.

use bytes::Bytes;

use crate::{ChildCode, Command, Event, Frame, Outcome, Payload, Request, Response, TreeSpec};

/// Every payload in `frame`, in wire order. Matches list every variant, so a new frame with a
/// payload cannot be forgotten here.
pub(crate) fn payloads(frame: &mut Frame) -> Vec<&mut Payload> {
    let mut out = Vec::new();
    match frame {
        Frame::Request { body, .. } => request(body, &mut out),
        Frame::Response { body, .. } => response(body, &mut out),
        Frame::Command(command) => self::command(command, &mut out),
        Frame::Event(event) => self::event(event, &mut out),
        Frame::Hello { .. } | Frame::Welcome { .. } | Frame::Ready | Frame::Control(_) | Frame::ControlReply(_) => {}
    }
    out
}

/// The byte pieces of `payloads`, in wire order: each payload's pickle, then its buffers.
pub(crate) fn pieces(payloads: Vec<&mut Payload>) -> impl Iterator<Item = &mut Bytes> {
    payloads.into_iter().flat_map(|p| std::iter::once(&mut p.data).chain(p.buffers.iter_mut()))
}

fn request<'a>(r: &'a mut Request, out: &mut Vec<&'a mut Payload>) {
    match r {
        Request::Call { payload, .. }
        | Request::Cast { payload, .. }
        | Request::Publish { payload, .. }
        | Request::SendTagged { payload, .. }
        | Request::NoticeSeed { payload, .. } => out.push(payload),
        Request::Schedule { code, .. } => out.push(code),
        Request::NoticeUpdate { payload, .. } => out.extend(payload.as_mut()),
        Request::Spawn { child } => child_code(&mut child.code, out),
        Request::StartTree { spec } => tree(spec, out),
        Request::Whereis { .. }
        | Request::Monitor { .. }
        | Request::Demonitor { .. }
        | Request::Shutdown { .. }
        | Request::Subscribe { .. }
        | Request::Unsubscribe { .. }
        | Request::Quiesce { .. }
        | Request::Receive { .. }
        | Request::Drain { .. }
        | Request::SetTags { .. }
        | Request::BocStats
        | Request::Notices { .. } => {}
    }
}

fn response<'a>(r: &'a mut Response, out: &mut Vec<&'a mut Payload>) {
    match r {
        Response::Call(outcome) => self::outcome(outcome, out),
        Response::Received(received) => out.extend(received.as_mut().map(|(_, p)| p)),
        Response::Notices(entries) => out.extend(entries.iter_mut().map(|(_, _, p)| p)),
        Response::Cast { .. }
        | Response::Spawned(_)
        | Response::TreeStarted(_)
        | Response::Whereis(_)
        | Response::Monitored(_)
        | Response::Subscribed(_)
        | Response::BocStats(_)
        | Response::Updated(_)
        | Response::Done
        | Response::Refused(_) => {}
    }
}

fn command<'a>(c: &'a mut Command, out: &mut Vec<&'a mut Payload>) {
    match c {
        Command::Deliver { payload, .. } | Command::Publication { payload, .. } => out.push(payload),
        Command::Start { code, .. } => child_code(code, out),
        Command::RunBehaviour { values, code, .. } => {
            out.extend(values.iter_mut().map(|(_, p)| p));
            out.push(code);
        }
        Command::Stop { .. }
        | Command::Preload
        | Command::Down { .. }
        | Command::Shutdown { .. }
        | Command::Safety { .. }
        | Command::Cancel { .. }
        | Command::CancelBehaviour { .. }
        | Command::Surrender { .. }
        | Command::SysPath { .. } => {}
    }
}

fn event<'a>(e: &'a mut Event, out: &mut Vec<&'a mut Payload>) {
    match e {
        Event::Replied { outcome, .. } => self::outcome(outcome, out),
        Event::CownValue { payload, .. } => out.push(payload),
        Event::Notice { payload, .. } => out.extend(payload.as_mut()),
        Event::Started { .. }
        | Event::Exited { .. }
        | Event::CownCreated { .. }
        | Event::BehaviourDone { .. }
        | Event::BodyDone { .. }
        | Event::SysPath { .. } => {}
    }
}

fn outcome<'a>(o: &'a mut Outcome, out: &mut Vec<&'a mut Payload>) {
    match o {
        Outcome::Reply { payload, .. } => out.push(payload),
        Outcome::Failed(_) => {}
    }
}

fn child_code<'a>(code: &'a mut ChildCode, out: &mut Vec<&'a mut Payload>) {
    match code {
        ChildCode::Actor { instance, .. } => out.push(instance),
        ChildCode::Task { function } => out.push(function),
        ChildCode::Tree(spec) => tree(spec, out),
        ChildCode::Script { .. } | ChildCode::Adopt { .. } => {}
    }
}

fn tree<'a>(spec: &'a mut TreeSpec, out: &mut Vec<&'a mut Payload>) {
    for child in &mut spec.children {
        child_code(&mut child.code, out);
    }
}
