//! Placement on a named node, the transport's side (the router's rules are in the governor's
//! `node_placement.rs`).
//!
//! The rules:
//! - **A start on another node** is a query to that node's call key alone, marked `spawn` (and
//!   `child_of=NODE` when this node's supervisor asks), carrying the `Request::Spawn` frame; the
//!   node answers with its `Spawned` answer once the actor runs, or failed to start.
//! - It never hangs: a node not up is a start failure at once, naming it; a node lost before
//!   it answers (its token goes, or the query ends with no answer) is a start failure naming
//!   it; past [`START_WAIT`] with no answer, the same.
//! - **A stop** of a child placed on another node is a put under that node's stop key
//!   ([`crate::keys::stops`]): the actor's id and its shutdown time in milliseconds (`-`:
//!   none), as text. Its end comes back through the monitor the supervisor's node set on it.

use rebeam_proto::{ActorId, ActorRef};

use super::*;

/// How long a start on another node may take: placing a first actor there can wait for a
/// worker to start, so this is longer than a call's wait; a lost node is noticed sooner
/// through its token.
const START_WAIT: Duration = Duration::from_secs(30);

/// Whether a query from another node asks for a start here: `Some(supervisor's node)`.
pub(super) fn spawn_asked(query: &Query) -> Option<Option<String>> {
    let parameters = query.parameters();
    parameters.contains_key("spawn").then(|| parameters.get("child_of").map(str::to_string))
}

impl Shared {
    /// Starts an actor on `node`, and hands its answer to the router.
    pub(super) async fn spawn(self: Arc<Self>, call: u64, node: String, supervised: bool, frame: Vec<u8>) {
        let result = self.start_on(&node, supervised, &frame).await;
        let _ = self.to_router.send(NodeIn::Spawned { call, result });
    }

    async fn start_on(&self, node: &str, supervised: bool, frame: &[u8]) -> Result<ActorRef, ErrorInfo> {
        let failed = |why: String| ErrorInfo::new(ErrorKind::StartFailed, why);
        // Subscribed before the check, so that a loss between the two is not missed.
        let mut lost = self.lost.subscribe();
        if !lock(&self.up).contains(node) {
            return Err(failed(format!("node {node} is not up (it left, or its link was lost)")));
        }
        let child_of = if supervised { format!(";child_of={}", self.name) } else { String::new() };
        let replies = self
            .session
            .get(format!("{}?spawn{child_of}", keys::calls(node)))
            .payload(frame.to_vec())
            .target(QueryTarget::All)
            .consolidation(ConsolidationMode::None)
            .allowed_destination(Locality::Remote)
            .timeout(START_WAIT)
            .await
            .map_err(|e| failed(format!("cannot ask node {node} to start it: {e}")))?;
        let lost_while = || failed(format!("node {node} was lost before it started it (its link closed)"));
        loop {
            tokio::select! {
                reply = replies.recv_async() => {
                    let Ok(reply) = reply else { return Err(lost_while()) };
                    let Ok(sample) = reply.result() else { continue };
                    match decode_response(&sample.payload().to_bytes()) {
                        Some(Response::Spawned(result)) => return result,
                        _ => tracing::warn!("node {node} sent a malformed answer to a start"),
                    }
                }
                gone = lost.recv() => match gone {
                    Ok(gone) if gone == node => return Err(lost_while()),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return Err(lost_while()),
                },
            }
        }
    }

    /// Asks `node` to stop its actor `actor` (a child this node's supervisor placed there).
    pub(super) async fn stop_on(&self, node: &str, actor: ActorId, shutdown_ms: Option<u64>) {
        if let Err(e) = self.session.put(keys::stops(node), stop_text(actor, shutdown_ms)).await {
            tracing::debug!("cannot ask node {node} to stop actor <{actor}>: {e}");
        }
    }

    /// Another node's supervisor stops its child here.
    pub(super) fn stop_from_node(&self, payload: &[u8]) {
        match read_stop(payload) {
            Some((actor, shutdown_ms)) => {
                let _ = self.to_router.send(NodeIn::Stop { actor, shutdown_ms });
            }
            None => tracing::warn!("another node sent a malformed stop"),
        }
    }
}

fn stop_text(actor: ActorId, shutdown_ms: Option<u64>) -> String {
    match shutdown_ms {
        Some(ms) => format!("{actor} {ms}"),
        None => format!("{actor} -"),
    }
}

fn read_stop(payload: &[u8]) -> Option<(ActorId, Option<u64>)> {
    let (actor, ms) = std::str::from_utf8(payload).ok()?.split_once(' ')?;
    let ms = if ms == "-" { None } else { Some(ms.parse().ok()?) };
    Some((actor.parse().ok()?, ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_reads_back_as_its_actor_and_shutdown() {
        for (actor, ms) in [(7, Some(5000)), (u64::MAX, None), (1, Some(0))] {
            assert_eq!(read_stop(stop_text(actor, ms).as_bytes()), Some((actor, ms)));
        }
        for bad in ["", "7", "x 5", "7 x", "7 5 6"] {
            assert_eq!(read_stop(bad.as_bytes()), None, "{bad:?}");
        }
    }
}
