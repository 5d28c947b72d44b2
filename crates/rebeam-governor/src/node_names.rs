//! `whereis` across nodes, the router's side (the rules are in node.rs's module doc).

use rebeam_core::registry::Named;
use rebeam_proto::{ActorRef, Frame, IntoEncoded, ReqId, Request, Response};

use super::{NodeOut, NODE_PEER};
use crate::router::{ProcIdx, Router};

impl Router {
    /// `whereis` of a name nothing here has: asked of the other nodes (answered when they
    /// say, as [`super::NodeIn::Found`]), and true; false when this node is to answer it.
    pub(crate) fn whereis_elsewhere(&mut self, proc: ProcIdx, req: ReqId, name: &str) -> bool {
        if self.node.is_none() || proc == NODE_PEER || self.names.resolve(name).is_some() {
            return false;
        }
        let request = Frame::Request { req: 0, body: Request::Whereis { name: name.to_string() } };
        let Ok(encoded) = request.into_encoded() else { return false };
        let call = self.next_id();
        let link = self.node.as_mut().expect("checked above");
        link.pending.insert(call, (proc, req));
        if link.out.send(NodeOut::Whereis { call, name: name.to_string(), frame: encoded.to_vec() }).is_err() {
            link.pending.remove(&call);
            return false;
        }
        true
    }

    /// The other nodes' answer to a `whereis` sent there: the actor and its node, or None.
    pub(super) fn found(&mut self, call: u64, found: Option<(ActorRef, String)>) {
        let Some((proc, req)) = self.node.as_mut().and_then(|l| l.pending.remove(&call)) else { return };
        let body = match found {
            Some((actor, node)) => Response::WhereisAt { actor, node },
            None => Response::Whereis(None),
        };
        self.respond(proc, req, body);
    }

    /// Another node asks where `name` is: its actor here (a group's first member present), or
    /// "not here".
    pub(super) fn whereis_from_node(&mut self, query: u64, name: String) {
        let actor = match self.names.resolve(&name) {
            Some(Named::Actor(id)) => Some(ActorRef { id, name: Some(name) }),
            Some(Named::Group(group)) => {
                group.members().iter().flatten().next().map(|&id| ActorRef { id, name: Some(name) })
            }
            None => return self.node_out(NodeOut::NotHere { query }),
        };
        if let Ok(encoded) = (Frame::Response { req: query, body: Response::Whereis(actor) }).into_encoded() {
            self.node_out(NodeOut::Answer { query, frame: encoded.to_vec() });
        }
    }
}
