//! Payload bytes travel beside the bincode body, not inside it.
//!
//! A frame of the bincode kind (see `header.rs`) holds the bincode encoding of the frame with
//! every payload's bytes taken out, and those bytes as its pieces, in the order [`payloads`]
//! visits them. So a reader decodes only the small body and takes the pieces as slices of the
//! buffer it read (`Bytes::slice`: no copy), and a writer sends the pieces as they are, in one
//! vectored write with the header (no concatenation).
//!
//! The rules a bincode frame must follow, or it is malformed:
//! - the body decodes within its length;
//! - there is exactly one piece per payload piece, and every piece is empty inside the body.

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
        | Request::StopTree { .. }
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
        | Request::Notices { .. }
        | Request::Route { .. }
        | Request::Nodes => {}
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
        | Response::Group(_)
        | Response::Monitored(_)
        | Response::Subscribed(_)
        | Response::BocStats(_)
        | Response::Updated(_)
        | Response::Route(_)
        | Response::Done
        | Response::Refused(_)
        | Response::Nodes(_)
        | Response::WhereisAt { .. } => {}
    }
}

fn command<'a>(c: &'a mut Command, out: &mut Vec<&'a mut Payload>) {
    match c {
        Command::Deliver { payload, .. }
        | Command::Publication { payload, .. }
        | Command::DefineCode { code: payload, .. } => out.push(payload),
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
        | Command::SysPath { .. }
        | Command::ChannelOpened(_)
        | Command::ChannelClosed { .. }
        | Command::ForgetCowns { .. } => {}
    }
}

fn event<'a>(e: &'a mut Event, out: &mut Vec<&'a mut Payload>) {
    match e {
        Event::Replied { outcome, .. } => self::outcome(outcome, out),
        Event::CownValue { payload, .. } | Event::DefineCode { code: payload, .. } => out.push(payload),
        Event::Notice { payload, .. } => out.extend(payload.as_mut()),
        Event::Started { .. }
        | Event::Exited { .. }
        | Event::CownCreated { .. }
        | Event::BehaviourDone { .. }
        | Event::BodyDone { .. }
        | Event::SysPath { .. }
        | Event::DirectDeliveries { .. }
        | Event::DropCowns { .. }
        | Event::ReleaseCowns { .. }
        | Event::KeepCowns { .. } => {}
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

#[cfg(test)]
mod tests {
    use crate::*;

    /// Bytes no header holds by chance.
    const MARK: u8 = 0xa5;
    const MARK_LEN: usize = 64;

    /// A payload whose bytes are easy to spot: a run of [`MARK`], and one buffer of them
    /// (`n` only tells payloads apart in the round trip).
    fn marked(n: u8) -> Payload {
        let mut data = vec![MARK; MARK_LEN];
        data.push(n);
        Payload { data: data.into(), buffers: vec![vec![MARK; MARK_LEN].into()] }
    }

    fn child(code: ChildCode) -> ChildSpec {
        ChildSpec {
            name: None,
            label: "c".into(),
            restart: Restart::Permanent,
            shutdown_ms: None,
            code,
            group: None,
            node: Placement::Here,
        }
    }

    /// One frame for every place a payload can be, and how many payloads it holds.
    fn every_payload_place() -> Vec<(Frame, usize)> {
        let t = || Target::Actor(1);
        let req = |body| Frame::Request { req: 1, body };
        let resp = |body| Frame::Response { req: 1, body };
        let reply = || Outcome::Reply { status: Status::Ok, payload: marked(1) };
        let tree = TreeSpec {
            name: None,
            strategy: Strategy::OneForOne,
            max_restarts: 3,
            max_seconds_ms: 5000,
            children: vec![
                child(ChildCode::Actor { class_name: "A".into(), instance: marked(1) }),
                child(ChildCode::Tree(TreeSpec {
                    name: None,
                    strategy: Strategy::OneForOne,
                    max_restarts: 3,
                    max_seconds_ms: 5000,
                    children: vec![child(ChildCode::Task { function: marked(2) })],
                })),
            ],
        };
        vec![
            (
                req(Request::Call {
                    target: t(),
                    subject: "s".into(),
                    sender: None,
                    payload: marked(1),
                    timeout_ms: 1,
                }),
                1,
            ),
            (req(Request::Cast { target: t(), subject: "s".into(), sender: None, payload: marked(1) }), 1),
            (req(Request::Spawn { child: child(ChildCode::Task { function: marked(1) }).into() }), 1),
            (req(Request::StartTree { spec: tree }), 2),
            (req(Request::Publish { topic: "t".into(), payload: marked(1) }), 1),
            (
                req(Request::Schedule {
                    behaviour: 1,
                    cowns: vec![],
                    result: 2,
                    code: marked(1),
                    at_main: false,
                    gated: false,
                    quiet: false,
                }),
                1,
            ),
            (req(Request::SendTagged { tag: "t".into(), payload: marked(1) }), 1),
            (req(Request::NoticeSeed { key: "k".into(), payload: marked(1) }), 1),
            (req(Request::NoticeUpdate { key: "k".into(), expected: 0, payload: Some(marked(1)) }), 1),
            (resp(Response::Call(reply())), 1),
            (resp(Response::Received(Some(("t".into(), marked(1))))), 1),
            (resp(Response::Notices(vec![("a".into(), 1, marked(1)), ("b".into(), 2, marked(2))])), 2),
            (
                Frame::Command(Command::Deliver {
                    delivery: None,
                    actor: 1,
                    subject: "s".into(),
                    sender: None,
                    payload: marked(1),
                }),
                1,
            ),
            (
                Frame::Command(Command::Start {
                    actor: 1,
                    name: None,
                    label: "l".into(),
                    code: ChildCode::Actor { class_name: "A".into(), instance: marked(1) },
                }),
                1,
            ),
            (
                Frame::Command(Command::RunBehaviour {
                    behaviour: 1,
                    cowns: vec![1, 2],
                    result: 3,
                    values: vec![(1, marked(1)), (2, marked(2))],
                    lost: vec![],
                    code: marked(3),
                    refused: None,
                    gated: false,
                }),
                3,
            ),
            (
                Frame::Command(Command::Publication {
                    subscription: 1,
                    actor: None,
                    topic: "t".into(),
                    payload: marked(1),
                    dropped: 0,
                }),
                1,
            ),
            (Frame::Event(Event::Replied { delivery: 1, outcome: reply() }), 1),
            (Frame::Event(Event::CownValue { cown: 1, payload: marked(1) }), 1),
            (Frame::Event(Event::Notice { key: "k".into(), payload: Some(marked(1)) }), 1),
        ]
    }

    #[test]
    fn every_payload_travels_beside_the_header_and_comes_back() {
        for (frame, payloads) in every_payload_place() {
            let encoded = encode_parts(frame.clone()).unwrap();
            let slices = encoded.slices_after(0);
            // Each payload is two pieces (its pickle and its one buffer), after the header.
            assert_eq!(slices.len(), 1 + 2 * payloads, "{frame:?}");
            let left_in_header = slices[0].windows(MARK_LEN).any(|w| w.iter().all(|&b| b == MARK));
            assert!(!left_in_header, "payload bytes left in the header of {frame:?}");
            let bytes = encoded.to_vec();
            assert_eq!(decode_body(&bytes[HEADER_BYTES..]).unwrap(), frame);
        }
    }
}
