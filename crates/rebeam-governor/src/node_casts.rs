//! Casts across nodes, the router's side (the rules are in node.rs's module doc).

use rebeam_proto::{ErrorKind, IntoEncoded, Routed, TargetRef};

use super::{strip_sender, NodeOut, NODE_PEER};
use crate::router::{ProcIdx, Router};

impl Router {
    /// A cast from a process here for a name nothing here takes: sent to the other nodes, and
    /// `None` (its sender is answered at once if the transport's window opens for it, else when
    /// the receiver's node says whether it was delivered); else the cast back, to be delivered
    /// here.
    pub(crate) fn cast_elsewhere(&mut self, proc: ProcIdx, hot: Routed) -> Option<Routed> {
        let TargetRef::Name(name) = hot.target() else { return Some(hot) };
        if self.node.is_none() || proc == NODE_PEER || self.names.resolve(name).is_some() || self.shutdown.is_some() {
            return Some(hot);
        }
        let (name, req) = (name.to_string(), hot.request());
        let Ok(encoded) = strip_sender(hot).into_encoded() else {
            self.send(proc, Routed::cast_answer(req, false));
            return None;
        };
        let call = self.next_id();
        let link = self.node.as_mut().expect("checked above");
        let sent = link.window.open(&name);
        if !sent {
            link.pending.insert(call, (proc, req));
        }
        let handed = link.out.send(NodeOut::Cast { call, name, frame: encoded.to_vec(), sent }).is_ok();
        if !handed {
            link.pending.remove(&call);
        }
        if sent || !handed {
            self.send(proc, Routed::cast_answer(req, handed));
        }
        None
    }

    /// A cast from another node: delivered here as a local one, and its node told whether it
    /// was; a name that is not here is answered "not here", as a call's is.
    pub(super) fn cast_from_node(&mut self, query: u64, hot: Routed) {
        let TargetRef::Name(name) = hot.target() else { return self.cast_answered(query, false) };
        if self.shutdown.is_some() {
            return self.cast_answered(query, false);
        }
        let pid = self.pid_target(name);
        let here = pid.is_some() || self.names.resolve(name).is_some();
        let hot = match pid {
            Some(id) => super::pids::to_actor(hot, id),
            None => hot,
        };
        match self.deliver(NODE_PEER, None, strip_sender(hot), Vec::new()) {
            Ok(()) => self.cast_answered(query, true),
            Err(info) if info.kind == ErrorKind::NoProcess && !here => self.node_out(NodeOut::NotHere { query }),
            Err(_) => self.cast_answered(query, false),
        }
    }

    fn cast_answered(&self, query: u64, delivered: bool) {
        if let Ok(encoded) = Routed::cast_answer(query, delivered).into_encoded() {
            self.node_out(NodeOut::Answer { query, frame: encoded.to_vec() });
        }
    }
}
