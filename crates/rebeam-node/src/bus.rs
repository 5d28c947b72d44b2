//! Bus topics across nodes, the transport's side: every node puts the publications its
//! router hands over under `rebeam/bus/NODE` ([`crate::keys::bus`]) and hears every other
//! node's there, for its router to deliver to its own subscribers.
//!
//! The rules:
//! - **Order.** Publications are put from the loop that takes the router's outputs, in the
//!   order the router gave them, on Zenoh's reliable channel: so the publications of one node
//!   reach each other node in the order made (per publisher, as on one node).
//! - **Nobody waits.** A put waits for no subscriber: with no subscriber on any other node it
//!   goes nowhere, and one whose link is congested past Zenoh's short wait misses it (Zenoh
//!   drops it, as the bus drops for a full queue) rather than holding up this node. A
//!   subscriber's node lost stops nothing.
//! - **Only remote.** A node's own puts are not heard back: its router delivered them already.

use std::sync::Arc;

use bytes::Bytes;
use rebeam_governor::node::NodeIn;
use zenoh::sample::Locality;

use crate::keys;

use super::Shared;

impl Shared {
    /// Hears every other node's publications, for the router.
    pub(super) async fn hear_publications(self: &Arc<Self>) -> zenoh::Result<()> {
        let bus = Arc::clone(self);
        self.session
            .declare_subscriber(keys::buses())
            .allowed_origin(Locality::Remote)
            .callback(move |sample| {
                let Some(from) = keys::node_of(sample.key_expr().as_str()) else { return };
                let bytes = sample.payload().to_bytes();
                let Some(body) = bytes.get(rebeam_proto::HEADER_BYTES..) else {
                    return tracing::warn!("node {from} sent a malformed publication");
                };
                let frame = Bytes::copy_from_slice(body);
                let _ = bus.to_router.send(NodeIn::Publication { from: from.to_string(), frame });
            })
            .background()
            .await
    }

    /// One publication of this node's, for the others' subscribers (see the module doc).
    pub(super) async fn publish(&self, frame: Vec<u8>) {
        let put = self.session.put(keys::bus(&self.name), frame).allowed_destination(Locality::Remote);
        if let Err(e) = put.await {
            tracing::debug!("cannot send a publication to the other nodes: {e}");
        }
    }
}
