//! Monitors across nodes, the transport's side.
//!
//! The rules:
//! - **Setting.** A monitor on a name (or a pid) of another node is a query, as a call is
//!   (same key, same "not here", same cache), carrying `from=NODE`; the node that has the
//!   actor sets it with the transport as the watcher and answers its reference there. That
//!   node remembers which node set each such monitor ([`Monitors::set_here`]).
//! - **Firing.** When the actor ends, its node puts the down notice under
//!   `rebeam/down/WATCHING/NODE` ([`crate::keys::downs`]): only the node that set it hears it.
//!   A notice can overtake the answer that set the monitor (it arrives on a callback, the
//!   answer in a task): while monitors are being set, notices not yet known are kept and
//!   fired as soon as their monitor is.
//! - **Node lost.** Every monitor set on actors of a node that is lost fires at once, its
//!   reason `killed`, "node lost: …"; a monitor that cannot be set (no node has the name, or
//!   its node is lost meanwhile) fires at once too ("noproc: …" or "node lost: …"). The
//!   monitors other nodes set here on a lost node's behalf are forgotten.
//! - **Demonitor.** A demonitor here takes the monitor off its node: a put of that node's
//!   reference under `rebeam/demonitor/NODE/WATCHING` ([`crate::keys::demonitors`]), which
//!   that node takes only from the node that set it. One demonitored while it is still being
//!   set is taken off as soon as its node answers.
//! - **Pids.** A down notice names the node of the actor that ended (or was lost), so the
//!   ProcessID a watcher reads names it.

use rebeam_proto::{ActorRef, Command, Exit};

use super::*;

/// How long setting a monitor waits for its node's answer: a node answers as soon as its
/// router has set it, so only a lost (or stuck) node takes this long.
const SET_WAIT: Duration = Duration::from_secs(5);

/// Both sides' monitors across nodes.
#[derive(Default)]
pub(super) struct Monitors {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Set by this node on others: (node, that node's reference) → this node's reference.
    watching: HashMap<(String, u64), u64>,
    /// Queries setting a monitor that have not been answered yet.
    setting: usize,
    /// Down notices that came before their monitor was known (kept while `setting` > 0).
    early: HashMap<(String, u64), (ActorRef, Exit)>,
    /// Set here by other nodes: this node's reference → the node that set it.
    set_here: HashMap<u64, String>,
    /// Demonitored here while still being set (kept while `setting` > 0).
    dropped: std::collections::HashSet<u64>,
}

fn node_lost(node: &str) -> Exit {
    Exit::Killed(format!("node lost: node {node} was lost (it left, or its link was lost)"))
}

impl Shared {
    pub(super) fn monitor(self: &Arc<Self>, monitor: u64, name: String, frame: Vec<u8>) {
        lock(&self.monitors.inner).setting += 1;
        tokio::spawn(Arc::clone(self).monitor_set(monitor, name, frame));
    }

    async fn monitor_set(self: Arc<Self>, monitor: u64, name: String, frame: Vec<u8>) {
        let started = Instant::now();
        let (mut tally, mut target) = self.first_ask(&name);
        let end = loop {
            let selector = format!("{}?from={}", keys::calls(&target), self.name);
            let answer = match self.query_at(&name, selector, &frame, SET_WAIT).await {
                Ok(r) => self.answer_of(&name, r, &mut tally, started, SET_WAIT, monitored).await,
                Err(verdict) => Err(verdict),
            };
            match answer {
                Ok((Ok(theirs), node)) => break Ok((node, theirs)),
                Ok((Err(info), _)) => break Err(Exit::Killed(format!("noproc: {}", info.message))),
                Err(Verdict::Fail(info)) if info.kind == ErrorKind::ActorDown => {
                    break Err(Exit::Killed(format!("node lost: {}", info.message)))
                }
                Err(Verdict::Fail(info)) => break Err(Exit::Killed(format!("noproc: {}", info.message))),
                Err(Verdict::AskAll) => {
                    lock(&self.cache).remove(&name);
                    tally = Tally::new(&name, self.others(), false);
                    target = "*".to_string();
                }
            }
        };
        let mut take_off = None;
        let down = {
            let mut inner = lock(&self.monitors.inner);
            inner.setting -= 1;
            let dropped = inner.dropped.remove(&monitor);
            let down = match end {
                Ok((node, _)) if !lock(&self.up).contains(&node) => Some((None, Some(node.clone()), node_lost(&node))),
                Ok((node, theirs)) => match inner.early.remove(&(node.clone(), theirs)) {
                    Some((actor, reason)) => Some((Some(actor), Some(node), reason)),
                    None if dropped => {
                        take_off = Some((node, theirs));
                        None
                    }
                    None => {
                        inner.watching.insert((node, theirs), monitor);
                        None
                    }
                },
                Err(reason) => Some((None, None, reason)),
            };
            if inner.setting == 0 {
                inner.early.clear();
                inner.dropped.clear();
            }
            down
        };
        if let Some((actor, node, reason)) = down {
            let _ = self.to_router.send(NodeIn::Down { monitor, actor, node, reason });
        }
        if let Some((node, theirs)) = take_off {
            self.take_off(&node, theirs).await;
        }
    }

    /// The router's demonitor of a monitor set on another node: taken off there too.
    pub(super) async fn demonitor(&self, monitor: u64) {
        let found = {
            let mut inner = lock(&self.monitors.inner);
            let key = inner.watching.iter().find(|(_, &m)| m == monitor).map(|(k, _)| k.clone());
            match key {
                Some(key) => inner.watching.remove(&key).map(|_| key),
                None => {
                    if inner.setting > 0 {
                        inner.dropped.insert(monitor);
                    }
                    None
                }
            }
        };
        if let Some((node, theirs)) = found {
            self.take_off(&node, theirs).await;
        }
    }

    async fn take_off(&self, node: &str, theirs: u64) {
        if let Err(e) = self.session.put(keys::demonitors(node, &self.name), theirs.to_le_bytes().to_vec()).await {
            tracing::debug!("cannot take a monitor off node {node}: {e}");
        }
    }

    /// `node` takes off a monitor it set here (its reference here, in `payload`); a node can
    /// take off only its own.
    pub(super) fn demonitor_from_node(&self, node: &str, payload: &[u8]) {
        let Some(theirs) = payload.try_into().ok().map(u64::from_le_bytes) else {
            return tracing::warn!("node {node} sent a malformed demonitor");
        };
        let mut inner = lock(&self.monitors.inner);
        if inner.set_here.get(&theirs).is_some_and(|n| n == node) {
            inner.set_here.remove(&theirs);
            drop(inner);
            tracing::debug!("node {node} took off its monitor {theirs} here");
            let _ = self.to_router.send(NodeIn::Demonitor { monitor: theirs });
        }
    }

    /// An answer to a query that set a monitor here for another node: which node to tell
    /// when it ends.
    pub(super) fn answered_monitor(&self, query: &Query, frame: &[u8]) {
        let Some(from) = query.parameters().get("from") else { return };
        if let Some(Response::Monitored(Ok(monitor))) = decode_response(frame) {
            lock(&self.monitors.inner).set_here.insert(monitor, from.to_string());
        }
    }

    /// The router's down notice for a monitor another node set here: to that node.
    pub(super) async fn down_to_node(&self, monitor: u64, frame: Vec<u8>) {
        let Some(node) = lock(&self.monitors.inner).set_here.remove(&monitor) else { return };
        if let Err(e) = self.session.put(keys::downs(&node, &self.name), frame).await {
            tracing::debug!("cannot tell node {node} of an actor's end: {e}");
        }
    }

    /// A down notice from `node` for a monitor this node set there.
    pub(super) fn down_from_node(&self, node: &str, payload: &[u8]) {
        let Some(Frame::Command(Command::Down { monitor: theirs, actor, reason, .. })) = decode_frame(payload) else {
            return tracing::warn!("node {node} sent a malformed down notice");
        };
        let key = (node.to_string(), theirs);
        let mut inner = lock(&self.monitors.inner);
        match inner.watching.remove(&key) {
            Some(monitor) => {
                drop(inner);
                let node = Some(node.to_string());
                let _ = self.to_router.send(NodeIn::Down { monitor, actor: Some(actor), node, reason });
            }
            None if inner.setting > 0 => {
                inner.early.insert(key, (actor, reason));
            }
            None => {}
        }
    }

    /// `node` was lost: the monitors set on its actors fire, the ones it set here are forgotten.
    pub(super) fn monitors_lost(&self, node: &str) {
        let fired: Vec<u64> = {
            let mut inner = lock(&self.monitors.inner);
            inner.set_here.retain(|_, n| n != node);
            let mut fired = Vec::new();
            inner.watching.retain(|(n, _), monitor| {
                let lost = n == node;
                if lost {
                    fired.push(*monitor);
                }
                !lost
            });
            fired
        };
        for monitor in fired {
            let down = NodeIn::Down { monitor, actor: None, node: Some(node.to_string()), reason: node_lost(node) };
            let _ = self.to_router.send(down);
        }
    }
}

fn monitored(response: Response) -> Option<Result<u64, rebeam_proto::ErrorInfo>> {
    match response {
        Response::Monitored(result) => Some(result),
        _ => None,
    }
}

/// A frame as encoded (length prefix included).
fn decode_frame(frame: &[u8]) -> Option<Frame> {
    let body = Bytes::copy_from_slice(frame.get(rebeam_proto::HEADER_BYTES..)?);
    rebeam_proto::decode_frame(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebeam_proto::IntoEncoded;

    #[test]
    fn a_monitored_answer_gives_its_reference_and_a_down_frame_its_monitor() {
        let frame = Frame::Response { req: 2, body: Response::Monitored(Ok(17)) };
        let bytes = frame.into_encoded().expect("encodes").to_vec();
        assert_eq!(decode_response(&bytes).and_then(monitored), Some(Ok(17)));
        let down = Frame::Command(Command::Down {
            monitor: 17,
            watcher: None,
            actor: ActorRef { id: 4, name: Some("counter".into()) },
            node: None,
            reason: Exit::Normal,
        });
        let bytes = down.clone().into_encoded().expect("encodes").to_vec();
        assert_eq!(decode_frame(&bytes), Some(down));
        assert_eq!(decode_frame(&bytes[..2]), None);
    }

    #[test]
    fn a_lost_node_s_reason_says_node_lost() {
        match node_lost("a") {
            Exit::Killed(why) => assert!(why.starts_with("node lost: node a"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
