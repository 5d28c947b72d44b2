//! Process ids of this node that another node sends back: the target name of
//! `rebeam_proto::remote` read as the actor id it carries (the rules are in node.rs's doc).

use rebeam_proto::{ActorId, Frame, Request, Routed, Target};

use crate::router::Router;

impl Router {
    /// The actor a call or cast from another node names by its process id, when `name` is a
    /// pid's name and not a name registered here (a registered name always wins). Its node part
    /// is this node's: the transport sends a pid's messages to its own node alone.
    pub(super) fn pid_target(&self, name: &str) -> Option<ActorId> {
        if self.names.resolve(name).is_some() {
            return None;
        }
        rebeam_proto::remote::parse_pid_name(name).map(|(id, _)| id)
    }
}

/// `hot` addressed to actor `id` instead of its pid's name.
pub(super) fn to_actor(hot: Routed, id: ActorId) -> Routed {
    let target = Target::Actor(id);
    let frame = match hot.into_frame() {
        Frame::Request { req, body: Request::Call { subject, sender, payload, timeout_ms, .. } } => {
            Frame::Request { req, body: Request::Call { target, subject, sender, payload, timeout_ms } }
        }
        Frame::Request { req, body: Request::Cast { subject, sender, payload, .. } } => {
            Frame::Request { req, body: Request::Cast { target, subject, sender, payload } }
        }
        other => other,
    };
    Routed::from_frame(frame).expect("it was a hot frame")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebeam_proto::{Payload, TargetRef};

    #[test]
    fn a_call_or_cast_by_pid_name_is_addressed_to_the_actor() {
        let name = Target::Name(rebeam_proto::remote::pid_name(12, "a"));
        let payload = Payload::default();
        let call = Request::Call {
            target: name.clone(),
            subject: "s".into(),
            sender: None,
            payload: payload.clone(),
            timeout_ms: 9,
        };
        let cast = Request::Cast { target: name, subject: "s".into(), sender: None, payload };
        for body in [call, cast] {
            let hot = Routed::from_frame(Frame::Request { req: 3, body }).expect("hot");
            let moved = to_actor(hot, 12);
            assert_eq!(moved.target(), TargetRef::Actor(12));
            assert_eq!((moved.request(), moved.subject()), (3, "s"));
        }
    }
}
