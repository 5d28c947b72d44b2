//! The other nodes of a system, in the model: in a third of the episodes the router is node
//! "a", and the transport hands it what other nodes could send, sane or not, while it takes
//! what the router asks of them and answers it (or not, or late, or twice).
//!
//! The rules checked (node.rs has the rules they come from):
//! - **Every query from another node is answered exactly once.** Each `NodeIn::Call` (a call,
//!   a cast, a monitor or a `whereis` from another node, well-formed or not) and each
//!   `NodeIn::Spawn` gets one
//!   `NodeOut::Answer` or `NodeOut::NotHere`, never two, and by the end of the run every one
//!   has been (the router answers what is still in flight when it shuts down).
//! - **Nothing the router sends another node is malformed**: every frame it hands the
//!   transport decodes.
//! - **Only an arming authority's word arms a follower** (besides the host): `feed` lets a
//!   `NodeIn::Follow(Arm)` arm, and nothing else that comes from another node.
//!
//! In half of these episodes the transport's cast window opens now and then (`Window`): those
//! casts' senders are answered at once, and their nodes' answers, which still come, go to no
//! one; every request of the router's processes is still answered once.

use std::collections::HashMap;

use bytes::Bytes;
use rebeam_proto::{decode_body, ActorRef, Frame, IntoEncoded, Outcome, Request, Status, HEADER_BYTES};
use tokio::sync::mpsc;

use super::Harness;
use crate::model_tests::{gen, Rng};
use crate::node::{Authority, Follow, Link, NodeIn, NodeOut};
use crate::router::{Input, Router};

/// The nodes a system of the model may have; this router is the first.
const NODES: [&str; 4] = ["a", "b", "c", "z"];

/// Something the router asked of another node, which that node owes an answer.
#[derive(Debug, Clone, Copy)]
enum Owed {
    Call(u64),
    Cast(u64),
    Monitor(u64),
    Spawn(u64),
    Whereis(u64),
}

/// A cast window that opens for one cast in two, at random (its own generator, seeded from
/// the episode's, so a run replays).
struct Window(std::sync::Mutex<Rng>);

impl crate::node::CastWindow for Window {
    fn open(&self, _name: &str) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).chance(1, 2)
    }
}

/// The transport's side of the seam.
pub(super) struct OtherNodes {
    out: mpsc::UnboundedReceiver<NodeOut>,
    /// The queries handed in (`NodeIn::Call`): each a fresh number.
    next_query: u64,
    /// Queries not answered yet: when a call's caller gives up (virtual ms; its node answers
    /// it then, as the transport's timeout), and what each was (for a failure's report).
    asked: HashMap<u64, (Option<u64>, String)>,
    owed: Vec<Owed>,
}

impl OtherNodes {
    /// Makes `router` node "a" of a system, now and then.
    pub(super) fn maybe(rng: &mut Rng, router: &mut Router) -> Option<OtherNodes> {
        if !rng.chance(1, 3) {
            return None;
        }
        let (tx, out) = mpsc::unbounded_channel();
        let link = Link::named(tx, NODES[0]);
        router.node = Some(match rng.chance(1, 2) {
            true => link.with_window(std::sync::Arc::new(Window(std::sync::Mutex::new(Rng::new(rng.next()))))),
            false => link,
        });
        Some(OtherNodes { out, next_query: 0, asked: HashMap::new(), owed: Vec::new() })
    }

    /// Takes in what the router handed the transport, and checks it.
    pub(super) fn take_out(&mut self, seen: &mut std::collections::BTreeMap<String, u64>) -> Result<(), String> {
        while let Ok(out) = self.out.try_recv() {
            let kind = format!("{out:?}").split([' ', '(', '{']).next().unwrap_or("").to_string();
            *seen.entry(format!("(node out: {kind})")).or_default() += 1;
            match out {
                NodeOut::Answer { query, frame } => {
                    well_formed(&frame, "an answer")?;
                    self.answered(query)?;
                }
                NodeOut::NotHere { query } => self.answered(query)?,
                NodeOut::Call { call, frame, .. } => {
                    well_formed(&frame, "a call")?;
                    self.owed.push(Owed::Call(call));
                }
                NodeOut::Cast { call, frame, .. } => {
                    well_formed(&frame, "a cast")?;
                    self.owed.push(Owed::Cast(call));
                }
                NodeOut::Monitor { monitor, frame, .. } => {
                    well_formed(&frame, "a monitor")?;
                    self.owed.push(Owed::Monitor(monitor));
                }
                NodeOut::Spawn { call, frame, .. } => {
                    well_formed(&frame, "a spawn")?;
                    self.owed.push(Owed::Spawn(call));
                }
                NodeOut::Whereis { call, frame, .. } => {
                    well_formed(&frame, "a whereis")?;
                    self.owed.push(Owed::Whereis(call));
                }
                NodeOut::Down { frame, .. } => well_formed(&frame, "a down notice")?,
                NodeOut::Publish { frame } => well_formed(&frame, "a publication")?,
                NodeOut::Safety { .. } | NodeOut::Stop { .. } | NodeOut::Demonitor { .. } => {}
            }
        }
        Ok(())
    }

    fn answered(&mut self, query: u64) -> Result<(), String> {
        if self.asked.remove(&query).is_some() {
            Ok(())
        } else {
            Err(format!("query {query} from another node was answered twice, or never asked"))
        }
    }

    /// At the end of the run (at virtual time `now`): nothing another node asked is left
    /// unanswered, but for calls whose callers have given up.
    pub(super) fn all_answered(&self, now: u64) -> Result<(), String> {
        let owed = self.asked.iter().filter(|(_, (due, _))| due.is_none_or(|due| due >= now));
        match owed.min_by_key(|(q, _)| **q) {
            None => Ok(()),
            Some((q, (_, what))) => Err(format!("a query from another node was never answered: query {q}, {what}")),
        }
    }
}

/// A frame the router handed the transport (length prefix included) decodes.
fn well_formed(frame: &[u8], what: &str) -> Result<(), String> {
    let body = frame.get(HEADER_BYTES..).ok_or_else(|| format!("{what} to another node has no header"))?;
    decode_body(body).map(|_| ()).map_err(|e| format!("{what} to another node does not decode: {e}"))
}

/// A request as another node's transport hands it in (no length prefix), or now and then bytes
/// that are no frame at all.
fn wire(rng: &mut Rng, request: Request) -> Bytes {
    if rng.chance(1, 12) {
        return Bytes::from(vec![0xff; rng.below(12) as usize]);
    }
    let encoded = Frame::Request { req: 0, body: request }.into_encoded().expect("a generated frame encodes");
    Bytes::from(encoded.to_vec()).slice(HEADER_BYTES..)
}

fn pick<'a>(rng: &mut Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.below(xs.len() as u64) as usize]
}

impl Harness {
    /// What another node sends next: a query, an answer to what the router asked (or to
    /// nothing), the nodes up, arming. False when this router is on no node.
    pub(super) fn node_input(&mut self) -> Result<bool, String> {
        let Some(nodes) = &mut self.nodes else { return Ok(false) };
        let rng = &mut self.rng;
        let input = match rng.below(12) {
            0 => {
                // Mostly with this node in the set, as the transport says it.
                let mut up: Vec<String> = NODES.iter().filter(|_| rng.chance(2, 3)).map(|n| n.to_string()).collect();
                if !up.iter().any(|n| n == NODES[0]) && rng.chance(3, 4) {
                    up.insert(0, NODES[0].to_string());
                }
                NodeIn::Up(up)
            }
            1..=3 => {
                nodes.next_query += 1;
                let query = nodes.next_query;
                let request = gen::request(rng, &mut self.known, None, false);
                let due = match &request {
                    Request::Call { timeout_ms, .. } => Some(self.now.saturating_add(*timeout_ms)),
                    _ => None,
                };
                nodes.asked.insert(query, (due, format!("{request:?}")));
                NodeIn::Call { query, frame: wire(rng, request) }
            }
            4 => {
                nodes.next_query += 1;
                let supervisor = rng.chance(1, 2).then(|| pick(rng, &NODES[1..]).to_string());
                let child = gen::child(rng, &self.known, 0);
                nodes.asked.insert(nodes.next_query, (None, format!("Spawn {child:?}")));
                NodeIn::Spawn {
                    query: nodes.next_query,
                    supervisor,
                    frame: wire(rng, Request::Spawn { child: child.into() }),
                }
            }
            5 => NodeIn::Stop {
                actor: gen::some_id(rng, &self.known.actors),
                shutdown_ms: rng.chance(1, 2).then(|| rng.below(500)),
            },
            6 => NodeIn::Demonitor { monitor: rng.below(64) },
            7 => {
                let from = pick(rng, &NODES).to_string();
                let topic = pick(rng, &["sensors.imu", "safety.estop", "rebeam.x", "bad..topic"]).to_string();
                let payload = gen::payload(rng);
                NodeIn::Publication { from, frame: wire(rng, Request::Publish { topic, payload }) }
            }
            8 => match rng.below(4) {
                0 => NodeIn::Authority(Authority::Here),
                1 => NodeIn::Authority(Authority::Elsewhere(Some(pick(rng, &NODES[1..]).to_string()))),
                2 => NodeIn::Follow(Follow::Arm),
                _ => NodeIn::Follow(Follow::Disarm),
            },
            _ => return self.node_answer(),
        };
        self.feed(Input::Node(input)).map(|()| true)
    }

    /// Another node answers one thing the router asked of it (mostly the oldest); now and then
    /// an answer to something never asked, or a second one. False when nothing is owed.
    pub(super) fn node_answer(&mut self) -> Result<bool, String> {
        let Some(nodes) = &mut self.nodes else { return Ok(false) };
        let rng = &mut self.rng;
        if nodes.owed.is_empty() {
            return Ok(false);
        }
        let i = if rng.chance(3, 4) { 0 } else { rng.below(nodes.owed.len() as u64) as usize };
        // Now and then the answer comes twice: the second must reach nobody.
        let owed = if rng.chance(1, 20) { nodes.owed[i] } else { nodes.owed.remove(i) };
        let actor = ActorRef { id: rng.below(64), name: rng.chance(1, 2).then(|| pick(rng, &gen::NAMES).to_string()) };
        let input = match owed {
            Owed::Call(call) => NodeIn::Answer {
                call,
                outcome: if rng.chance(3, 4) {
                    Outcome::Reply { status: Status::Ok, payload: gen::payload(rng) }
                } else {
                    Outcome::Failed(gen::error(rng, rebeam_proto::ErrorKind::ActorDown))
                },
            },
            Owed::Cast(call) => NodeIn::CastAnswer { call, delivered: rng.chance(3, 4) },
            Owed::Monitor(monitor) => NodeIn::Down {
                monitor,
                actor: rng.chance(3, 4).then_some(actor),
                node: rng.chance(1, 2).then(|| pick(rng, &NODES[1..]).to_string()),
                reason: gen::exit(rng),
            },
            Owed::Spawn(call) => NodeIn::Spawned {
                call,
                result: if rng.chance(3, 4) {
                    Ok(actor)
                } else {
                    Err(gen::error(rng, rebeam_proto::ErrorKind::NoProcess))
                },
            },
            Owed::Whereis(call) => {
                NodeIn::Found { call, found: rng.chance(1, 2).then(|| (actor, pick(rng, &NODES[1..]).to_string())) }
            }
        };
        self.feed(Input::Node(input)).map(|()| true)
    }
}
