//! Bus topics across nodes, the router's side (the rules are in node.rs's module doc).

use bytes::Bytes;
use rebeam_proto::{Frame, IntoEncoded, Payload, Request};

use super::NodeOut;
use crate::router::Router;

impl Router {
    /// A publication a Python process here made (and this node took): to the other nodes.
    pub(crate) fn publish_elsewhere(&self, topic: &str, payload: Payload) {
        if self.node.is_none() {
            return;
        }
        let frame = Frame::Request { req: 0, body: Request::Publish { topic: topic.to_string(), payload } };
        match frame.into_encoded() {
            Ok(encoded) => self.node_out(NodeOut::Publish { frame: encoded.to_vec() }),
            Err(e) => tracing::warn!("a publication on '{topic}' cannot go to the other nodes: {e}"),
        }
    }

    /// A publication from another node: delivered to this node's subscribers by the rules a
    /// Python process here publishes under (a reserved prefix is refused unless this node
    /// opened it), and never sent on.
    pub(super) fn publication_from_node(&mut self, from: &str, frame: Bytes) {
        let Ok(Frame::Request { body: Request::Publish { topic, payload }, .. }) = rebeam_proto::decode_frame(frame)
        else {
            return tracing::warn!("node {from} sent a malformed publication");
        };
        if let Err(info) = self.publish_here(&topic, payload) {
            tracing::warn!("a publication from node {from} on '{topic}' was refused: {}", info.message);
        }
    }
}
