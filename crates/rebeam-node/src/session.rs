//! The node's Zenoh session and the tasks between it and the governor's node seam: the
//! queryable that takes other nodes' calls, the queries that carry this node's, and the
//! liveliness tokens that say which nodes are up (see the crate doc for the rules).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rebeam_governor::node::{NodeIn, NodeOut, Now, Seam};
use rebeam_proto::{ErrorInfo, ErrorKind, Frame, Outcome, Response};
use tokio::sync::{broadcast, mpsc};
use zenoh::query::{ConsolidationMode, Query, QueryTarget};
use zenoh::sample::{Locality, SampleKind};
use zenoh::{Session, Wait};

use crate::tally::{Tally, Verdict};
use crate::{keys, NodeError, NodeOptions};

/// Node losses a call may miss while it waits (a lagging receiver only re-checks the set).
const LOSS_BACKLOG: usize = 64;
/// How long a query outlives its caller's timeout: by then the caller has given up, so the
/// query only has to end (a reply to a call the router forgot is dropped there).
const QUERY_SLACK: Duration = Duration::from_secs(1);

/// A joined node: dropping it (or [`Node::leave`]) leaves the system.
pub struct Node {
    session: Session,
    /// This node's "up" for the others: withdrawn when the node leaves (or its link is lost).
    _token: zenoh::liveliness::LivelinessToken,
    _arming: Arc<crate::arming::Arming>,
}

impl Node {
    /// Leaves: the other nodes see this one go (its token is withdrawn with the session).
    pub async fn leave(self) {
        if let Err(e) = self.session.close().await {
            tracing::debug!("closing the node's session: {e}");
        }
    }
}

struct Shared {
    name: String,
    session: Session,
    to_router: mpsc::UnboundedSender<NodeIn>,
    /// Calls from other nodes waiting for the router's answer, by query number.
    queries: Mutex<HashMap<u64, Query>>,
    next_query: AtomicU64,
    up: Mutex<BTreeSet<String>>,
    /// Which node answered for each name last.
    cache: Mutex<HashMap<String, String>>,
    lost: broadcast::Sender<String>,
    /// This node's part in arming (set once at join).
    arming: std::sync::OnceLock<Arc<crate::arming::Arming>>,
    monitors: monitors::Monitors,
    casts: casts::CastsInFlight,
    /// The router's outputs queued for `from_router_loop` and not yet handled (see `Inline`).
    queued: AtomicUsize,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Opens the node's session, joins the nodes at its `connect` endpoints, and returns the node
/// with the seam for `rebeam_governor::run_node`.
pub async fn join(options: NodeOptions) -> Result<(Node, Seam), NodeError> {
    let session = open_session(&options).await?;
    let (to_router, inputs) = mpsc::unbounded_channel();
    let (out, from_router) = mpsc::unbounded_channel();
    let (lost, _) = broadcast::channel(LOSS_BACKLOG);
    let shared = Arc::new(Shared {
        name: options.name.clone(),
        session: session.clone(),
        to_router,
        queries: Mutex::new(HashMap::new()),
        next_query: AtomicU64::new(1),
        up: Mutex::new(BTreeSet::from([options.name.clone()])),
        cache: Mutex::new(HashMap::new()),
        lost,
        arming: std::sync::OnceLock::new(),
        monitors: monitors::Monitors::default(),
        casts: casts::CastsInFlight::default(),
        queued: AtomicUsize::new(0),
    });
    let fail = |e: zenoh::Error| NodeError::Open(options.name.clone(), e.to_string());
    let duplicate = session.liveliness().get(keys::node(&options.name)).await.map_err(fail)?;
    if duplicate.recv_async().await.is_ok() {
        return Err(NodeError::Duplicate(options.name));
    }
    // The queryable first: a node that sees this one's token can call it at once.
    let calls = Arc::clone(&shared);
    session
        .declare_queryable(keys::calls(&options.name))
        .callback(move |query| calls.call_from_node(query))
        .background()
        .await
        .map_err(fail)?;
    let downs = Arc::clone(&shared);
    session
        .declare_subscriber(keys::downs(&options.name, "*"))
        .callback(move |sample| {
            if let Some(node) = keys::node_of(sample.key_expr().as_str()) {
                downs.down_from_node(node, &sample.payload().to_bytes());
            }
        })
        .background()
        .await
        .map_err(fail)?;
    let stops = Arc::clone(&shared);
    session
        .declare_subscriber(keys::stops(&options.name))
        .callback(move |sample| stops.stop_from_node(&sample.payload().to_bytes()))
        .background()
        .await
        .map_err(fail)?;
    shared.hear_publications().await.map_err(fail)?;
    let demonitors = Arc::clone(&shared);
    session
        .declare_subscriber(keys::demonitors(&options.name, "*"))
        .callback(move |sample| {
            if let Some(node) = keys::node_of(sample.key_expr().as_str()) {
                demonitors.demonitor_from_node(node, &sample.payload().to_bytes());
            }
        })
        .background()
        .await
        .map_err(fail)?;
    let watch = Arc::clone(&shared);
    session
        .liveliness()
        .declare_subscriber(keys::nodes())
        .history(true)
        .callback(move |sample| {
            if let Some(node) = keys::node_of(sample.key_expr().as_str()) {
                watch.node_seen(node, sample.kind() == SampleKind::Put);
            }
        })
        .background()
        .await
        .map_err(fail)?;
    let token = session.liveliness().declare_token(keys::node(&options.name)).await.map_err(fail)?;
    let arming = crate::arming::start(&session, &options.name, options.authority, shared.to_router.clone()).await?;
    let arming = Arc::new(arming);
    let _ = shared.arming.set(Arc::clone(&arming));
    shared.tell_up();
    tracing::info!("node {} is up; nodes up: {}", options.name, nodes_text(&lock(&shared.up)));
    let window = Arc::clone(&shared) as Arc<dyn rebeam_governor::node::CastWindow>;
    let now = Arc::new(Inline(Arc::clone(&shared)));
    tokio::spawn(from_router_loop(shared, from_router));
    let seam = Seam { out, inputs, name: options.name, window, now };
    Ok((Node { session, _token: token, _arming: arming }, seam))
}

fn nodes_text(nodes: &BTreeSet<String>) -> String {
    nodes.iter().map(String::as_str).collect::<Vec<_>>().join(", ")
}

/// A Zenoh session opened exactly as a node's is (peer mode, explicit endpoints, the cookie's
/// handshake, the lease, TLS when given), without joining: nothing is declared on it. `join`
/// opens its session this way; the Zenoh floor benchmark does too, so that the floor and a
/// cross-node call are measured over the same kind of link.
pub async fn open_session(options: &NodeOptions) -> Result<Session, NodeError> {
    if !crate::valid_node_name(&options.name) {
        return Err(NodeError::BadName(options.name.clone()));
    }
    let path = options.dictionary_path();
    write_private(&path, &options.dictionary_line()).map_err(NodeError::Dictionary)?;
    let opened = match options.zenoh_config(&path) {
        Ok(config) => zenoh::open(config).await.map_err(|e| e.to_string()),
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    };
    // Zenoh has read it by now; the cookie should not outlive the handshake set-up on disk.
    let _ = std::fs::remove_file(&path);
    opened.map_err(|why| {
        if options.connect.is_empty() {
            return NodeError::Open(options.name.clone(), why);
        }
        // Zenoh's words name its own source file; what it tried is in the debug log.
        tracing::debug!("node {} could not connect: {why}", options.name);
        let (endpoints, secs) = (options.connect.join(" or "), options.join_timeout.as_secs_f64());
        NodeError::Join { node: options.name.clone(), endpoints, secs }
    })
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())
}

impl Shared {
    fn tell_up(&self) {
        let up: Vec<String> = lock(&self.up).iter().cloned().collect();
        let _ = self.to_router.send(NodeIn::Up(up));
    }

    fn node_seen(&self, node: &str, up: bool) {
        if node == self.name {
            return;
        }
        let changed = if up { lock(&self.up).insert(node.to_string()) } else { lock(&self.up).remove(node) };
        if !changed {
            return;
        }
        if up {
            tracing::info!("node {node} is up");
        } else {
            tracing::warn!("node {node} is down (it left, or its link was lost)");
            lock(&self.cache).retain(|_, n| n != node);
            let _ = self.lost.send(node.to_string());
            // The router knows the node is gone before its monitors fire: a supervisor that
            // restarts a child on their word places it on a node that remains.
            self.tell_up();
            self.monitors_lost(node);
            return;
        }
        self.tell_up();
    }

    /// A call from another node: to the router, which answers through `NodeOut`.
    fn call_from_node(&self, query: Query) {
        let Some(payload) = query.payload() else { return };
        let bytes = payload.to_bytes();
        let Some(body) = bytes.get(rebeam_proto::HEADER_BYTES..) else { return };
        let frame = Bytes::copy_from_slice(body);
        let id = self.next_query.fetch_add(1, Ordering::Relaxed);
        let input = match placement::spawn_asked(&query) {
            Some(supervisor) => NodeIn::Spawn { query: id, supervisor, frame },
            None => NodeIn::Call { query: id, frame },
        };
        lock(&self.queries).insert(id, query);
        if self.to_router.send(input).is_err() {
            lock(&self.queries).remove(&id);
        }
    }

    /// Answers a call from another node; dropping its query then ends it (Zenoh's final).
    fn answer(&self, query: u64, frame: Option<Vec<u8>>) {
        let Some(query) = lock(&self.queries).remove(&query) else { return };
        let sent = match frame {
            Some(frame) => {
                self.answered_monitor(&query, &frame);
                query.reply(keys::calls(&self.name), frame).wait()
            }
            None => query.reply_err(self.name.clone()).wait(),
        };
        if let Err(e) = sent {
            tracing::debug!("cannot answer a call from another node: {e}");
        }
    }

    fn answer_call(&self, call: u64, outcome: Outcome) {
        let _ = self.to_router.send(NodeIn::Answer { call, outcome });
    }

    /// The tally and the query's target for a first ask: the node that answered for `name`
    /// last, else every other node.
    /// A process id of another node (`rebeam_proto::remote`) is asked of its node alone, and
    /// of none when that node is not up.
    fn first_ask(&self, name: &str) -> (Tally, String) {
        if let Some((_, node)) = rebeam_proto::remote::parse_pid_name(name) {
            let asked = self.others().into_iter().filter(|n| n == node).collect();
            return (Tally::new(name, asked, false), node.to_string());
        }
        match lock(&self.cache).get(name).cloned() {
            Some(node) => (Tally::new(name, BTreeSet::from([node.clone()]), true), node),
            None => (Tally::new(name, self.others(), false), "*".to_string()),
        }
    }

    /// One call to other nodes: its first query sent now (so that it leaves in the order the
    /// router gave it, as casts do), and a task of its own waiting for its outcome.
    fn call(self: &Arc<Self>, call: u64, name: String, frame: Vec<u8>, timeout: Duration) {
        let started = Instant::now();
        let (tally, target) = self.first_ask(&name);
        let first = self.query_now(&name, keys::calls(&target), &frame, timeout);
        let asked = Asked { call, name, frame, timeout, started };
        tokio::spawn(Arc::clone(self).call_answered(asked, first, tally));
    }

    /// A call to other nodes, to its outcome (see `Tally` for what ends it without one).
    async fn call_answered(self: Arc<Self>, asked: Asked, first: Result<Replies, Verdict>, mut tally: Tally) {
        let Asked { call, name, frame, timeout, started } = asked;
        let mut replies = first;
        loop {
            let outcome = match replies {
                Ok(replies) => {
                    self.answer_of(&name, replies, &mut tally, started, timeout, call_outcome).await.map(|(o, _)| o)
                }
                Err(verdict) => Err(verdict),
            };
            match outcome {
                Ok(outcome) => return self.answer_call(call, outcome),
                Err(Verdict::Fail(info)) => return self.answer_call(call, Outcome::Failed(info)),
                Err(Verdict::AskAll) => {
                    lock(&self.cache).remove(&name);
                    tally = Tally::new(&name, self.others(), false);
                    replies = self.query(&name, "*", &frame, timeout).await;
                }
            }
        }
    }

    fn others(&self) -> BTreeSet<String> {
        lock(&self.up).iter().filter(|n| **n != self.name).cloned().collect()
    }

    /// Sends one query for `name` to `target` (a node, or `*`); its replies come on the handler.
    async fn query(&self, name: &str, target: &str, frame: &[u8], timeout: Duration) -> Result<Replies, Verdict> {
        self.query_at(name, keys::calls(target), frame, timeout).await
    }

    /// As `query`, to a selector (a key of `keys::calls`, with parameters maybe).
    async fn query_at(
        &self,
        name: &str,
        selector: String,
        frame: &[u8],
        timeout: Duration,
    ) -> Result<Replies, Verdict> {
        self.query_now(name, selector, frame, timeout)
    }

    /// As `query_at`, sent before it returns (Zenoh sends a query as it is made, awaited or not).
    fn query_now(&self, name: &str, selector: String, frame: &[u8], timeout: Duration) -> Result<Replies, Verdict> {
        self.session
            .get(selector)
            .payload(frame.to_vec())
            .target(QueryTarget::All)
            .consolidation(ConsolidationMode::None)
            .allowed_destination(Locality::Remote)
            // Past the caller's own timeout it has given up: the query only has to end.
            .timeout(timeout + QUERY_SLACK)
            .wait()
            .map_err(|e| {
                Verdict::Fail(ErrorInfo::new(ErrorKind::BadRequest, format!("cannot send the call to '{name}': {e}")))
            })
    }

    /// One query's replies: the first answer `decode` takes and the node that gave it, or what
    /// the tally makes of their end.
    async fn answer_of<T>(
        &self,
        name: &str,
        replies: Replies,
        tally: &mut Tally,
        started: Instant,
        timeout: Duration,
        decode: fn(Response) -> Option<T>,
    ) -> Result<(T, String), Verdict> {
        let mut lost = self.lost.subscribe();
        loop {
            tokio::select! {
                reply = replies.recv_async() => {
                    let Ok(reply) = reply else { break };
                    match reply.result() {
                        Ok(sample) => {
                            let node = keys::node_of(sample.key_expr().as_str()).unwrap_or_default().to_string();
                            match decode_response(&sample.payload().to_bytes()).and_then(decode) {
                                Some(answer) => {
                                    // A pid's node is in its name: only names are cached.
                                    if !tally.is_pid() {
                                        lock(&self.cache).insert(name.to_string(), node.clone());
                                    }
                                    return Ok((answer, node));
                                }
                                None => tracing::warn!("node {node} sent a malformed answer to a message for '{name}'"),
                            }
                        }
                        Err(not_here) => tally.not_here(&String::from_utf8_lossy(&not_here.payload().to_bytes())),
                    }
                }
                node = lost.recv() => match node {
                    Ok(node) if tally.node_lost(&node) => return Err(Verdict::Fail(tally.lost_error(&node))),
                    Ok(_) => {}
                    // Missed losses: the replies' end tells what they meant for this call.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            }
        }
        Err(tally.end(started.elapsed() >= timeout))
    }
}

/// The replies to one query.
type Replies = zenoh::handlers::FifoChannelHandler<zenoh::query::Reply>;

/// A call to other nodes waiting for its outcome.
struct Asked {
    call: u64,
    name: String,
    frame: Vec<u8>,
    timeout: Duration,
    started: Instant,
}

/// The transport's side of the router's [`Now`]: a call's first query and the answer to
/// another node's call are sent from the router's own thread while nothing waits in
/// `from_router_loop`, so they still leave in the order the router gave them (the rule casts'
/// and calls' order across nodes rests on), without a task wake-up between. Casts still go by
/// the loop: sent from the router itself, a burst outran its receiving node and filled the
/// cast window, and its sender then waited a round trip a cast (3-4k casts/s, not ~11k).
struct Inline(Arc<Shared>);

impl Now for Inline {
    fn now(&self, out: NodeOut) -> Result<(), NodeOut> {
        let shared = &self.0;
        if shared.queued.load(Ordering::Acquire) > 0 {
            return shared.queue(out);
        }
        match out {
            NodeOut::Call { call, name, frame, timeout } => shared.call(call, name, frame, timeout),
            NodeOut::Answer { query, frame } => shared.answer(query, Some(frame)),
            NodeOut::NotHere { query } => shared.answer(query, None),
            other => return shared.queue(other),
        }
        Ok(())
    }
}

impl Shared {
    /// `out` goes by the queue: counted until `from_router_loop` has handled it.
    fn queue(&self, out: NodeOut) -> Result<(), NodeOut> {
        self.queued.fetch_add(1, Ordering::AcqRel);
        Err(out)
    }
}

fn call_outcome(response: Response) -> Option<Outcome> {
    match response {
        Response::Call(outcome) => Some(outcome),
        _ => None,
    }
}

/// The response in a `Response` frame (length prefix included).
fn decode_response(frame: &[u8]) -> Option<Response> {
    let body = Bytes::copy_from_slice(frame.get(rebeam_proto::HEADER_BYTES..)?);
    match rebeam_proto::decode_frame(body).ok()? {
        Frame::Response { body, .. } => Some(body),
        _ => None,
    }
}

async fn from_router_loop(shared: Arc<Shared>, mut from_router: mpsc::UnboundedReceiver<NodeOut>) {
    while let Some(out) = from_router.recv().await {
        match out {
            NodeOut::Call { call, name, frame, timeout } => shared.call(call, name, frame, timeout),
            // Sent from this loop, in order: casts from one sender to one name stay in order.
            NodeOut::Cast { call, name, frame, sent } => shared.cast(call, name, frame, sent),
            NodeOut::Answer { query, frame } => shared.answer(query, Some(frame)),
            NodeOut::NotHere { query } => shared.answer(query, None),
            NodeOut::Safety { state } => {
                if let Some(arming) = shared.arming.get() {
                    arming.announce(state).await;
                }
            }
            NodeOut::Monitor { monitor, name, frame } => shared.monitor(monitor, name, frame),
            NodeOut::Down { monitor, frame } => shared.down_to_node(monitor, frame).await,
            NodeOut::Spawn { call, node, supervised, frame } => {
                tokio::spawn(Arc::clone(&shared).spawn(call, node, supervised, frame));
            }
            NodeOut::Stop { node, actor, shutdown_ms } => shared.stop_on(&node, actor, shutdown_ms).await,
            NodeOut::Demonitor { monitor } => shared.demonitor(monitor).await,
            // Put from this loop, in order: one node's publications stay in order.
            NodeOut::Publish { frame } => shared.publish(frame).await,
            NodeOut::Whereis { call, name, frame } => {
                tokio::spawn(Arc::clone(&shared).whereis(call, name, frame));
            }
        }
        // Handled (sent, for what sends): the router may send the next one itself (`Inline`).
        shared.queued.fetch_sub(1, Ordering::AcqRel);
    }
}

#[path = "bus.rs"]
mod bus;
#[path = "casts.rs"]
mod casts;
#[path = "monitors.rs"]
mod monitors;
#[path = "names.rs"]
mod names;
#[path = "placement.rs"]
mod placement;

#[cfg(test)]
mod tests {
    use super::*;
    use rebeam_proto::IntoEncoded;

    #[test]
    fn an_answer_frame_gives_its_outcome() {
        let outcome = Outcome::Failed(ErrorInfo::new(ErrorKind::Crashed, "boom"));
        let frame = Frame::Response { req: 3, body: Response::Call(outcome.clone()) };
        let bytes = frame.into_encoded().expect("encodes").to_vec();
        assert_eq!(decode_response(&bytes).and_then(call_outcome), Some(outcome));
        assert_eq!(decode_response(&bytes[..3]), None);
        assert_eq!(decode_response(&Frame::Ready.into_encoded().expect("encodes").to_vec()), None);
    }
}
