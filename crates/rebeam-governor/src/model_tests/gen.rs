//! Random, well-formed requests and events: what Python could send, sane or not.
//!
//! Values come from small pools (five names, a few subjects, tags, keys, topics) so that
//! requests collide: calls reach actors that exist, names are taken twice, cowns are shared.

use rebeam_proto::{
    ActorId, Balance, ChildCode, ChildSpec, ErrorInfo, ErrorKind, Event, Exit, Gating, GroupSlot, Outcome, Payload,
    Placement, Request, Restart, Status, Strategy, Target, TreeSpec,
};

use rebeam_core::topics::MAX_QUEUE;

use super::fake::Known;
use super::Rng;

pub const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];
pub const SUBJECTS: [&str; 3] = ["ping", "arm", "other"];
const TAGS: [&str; 3] = ["t1", "t2", "t3"];
const KEYS: [&str; 4] = ["k1", "k2", "k3", ""];
const TOPICS: [&str; 5] = ["sensors.imu", "sensors.gps", "safety.estop", "rebeam", "bad..topic"];
const PATTERNS: [&str; 5] = ["sensors.*", "**", "safety.**", "sensors.imu", "a*"];
/// The model's limit on a message (Config::max_message_bytes), so `TooLarge` is reachable.
pub const MAX_MESSAGE_BYTES: u64 = 64;

pub fn payload(rng: &mut Rng) -> Payload {
    let n = if rng.chance(1, 50) { MAX_MESSAGE_BYTES as usize + 1 } else { rng.below(8) as usize };
    let buffers = if rng.chance(1, 10) { vec![vec![7; rng.below(4) as usize].into()] } else { vec![] };
    Payload { data: vec![0x80; n].into(), buffers }
}

fn pick<T: Copy>(rng: &mut Rng, xs: &[T]) -> T {
    xs[rng.below(xs.len() as u64) as usize]
}

/// An id from `ids` (mostly), or one that never existed.
pub fn some_id(rng: &mut Rng, ids: &[u64]) -> u64 {
    if ids.is_empty() || rng.chance(1, 8) {
        return rng.below(64);
    }
    // Recent ids are the ones most likely still alive.
    let back = rng.below(ids.len().min(16) as u64) as usize;
    ids[ids.len() - 1 - back]
}

pub fn target(rng: &mut Rng, known: &Known) -> Target {
    let (names, live) = (&known.live_names, &known.live_actors);
    match rng.below(10) {
        0..=3 if !names.is_empty() => Target::Name(names[rng.below(names.len() as u64) as usize].clone()),
        4..=6 if !live.is_empty() => Target::Actor(live[rng.below(live.len() as u64) as usize]),
        7 | 8 => Target::Name(pick(rng, &NAMES).to_string()),
        _ => Target::Actor(some_id(rng, &known.actors)),
    }
}

pub fn error(rng: &mut Rng, kind: ErrorKind) -> ErrorInfo {
    let mut info = ErrorInfo::new(kind, "ValueError('model')");
    if rng.chance(1, 2) {
        info.exc_type = Some("ValueError".into());
        info.traceback = Some("Traceback (most recent call last):\n  ...\n".into());
    }
    info
}

pub fn exit(rng: &mut Rng) -> Exit {
    match rng.below(4) {
        0 => Exit::Normal,
        1 => Exit::Shutdown,
        2 => Exit::Crashed(error(rng, ErrorKind::Crashed)),
        _ => Exit::Killed("model".into()),
    }
}

pub fn gating(rng: &mut Rng) -> Gating {
    let handled = SUBJECTS.iter().filter(|_| rng.chance(2, 3)).map(|s| s.to_string()).collect();
    let subjects = if rng.chance(1, 2) { vec!["arm".to_string()] } else { vec![] };
    Gating { handled, subjects, catch_all: rng.chance(1, 4) }
}

/// A tree to adopt. Python nests `Supervisor(modules=[Supervisor(…), Supervisor(…), client])`
/// by starting the inner trees first, then the outer one adopting them: so mostly live
/// top-level trees. But a peer may name any tree: one still starting, one already a child, one
/// that ended, the adopter itself or its ancestors (the ids the router hands out next), or none.
fn adoptee(rng: &mut Rng, known: &Known) -> u64 {
    let any = |rng: &mut Rng, ids: &[u64]| ids.get(rng.below(ids.len() as u64) as usize).copied();
    let picked = match rng.below(16) {
        0..=10 => any(rng, &known.live_roots),
        11 | 12 => any(rng, &known.live_trees),
        13 => any(rng, &known.trees),
        14 => Some(known.next_router_id + 1 + rng.below(6)),
        _ => None,
    };
    picked.unwrap_or_else(|| some_id(rng, &known.trees))
}

pub fn child(rng: &mut Rng, known: &Known, depth: u32) -> ChildSpec {
    let name = rng.chance(1, 2).then(|| pick(rng, &NAMES).to_string());
    let code = match rng.below(10) {
        0 if depth < 2 => ChildCode::Tree(tree(rng, known, depth + 1)),
        // Mostly when there is a top-level tree to adopt: a bad one fails the whole start.
        1 | 2 if rng.chance(1, 2) && (!known.live_roots.is_empty() || rng.chance(1, 4)) => {
            ChildCode::Adopt { tree: adoptee(rng, known) }
        }
        2 => ChildCode::Task { function: payload(rng) },
        3 => ChildCode::Script { path: "/nonexistent/child.py".into() },
        _ => ChildCode::Actor { class_name: "Model".into(), instance: payload(rng) },
    };
    let restart = pick(rng, &Restart::ALL);
    let shutdown_ms = match rng.below(3) {
        0 => None,
        1 => Some(0),
        _ => Some(millis(rng, 5000)),
    };
    // Some unnamed actors are group members, under the same few names, so that groups collide
    // with actors' names, with each other's sizes, and with their own members' positions.
    let group = (name.is_none() && matches!(code, ChildCode::Actor { .. }) && rng.chance(1, 3)).then(|| GroupSlot {
        name: pick(rng, &NAMES).to_string(),
        position: rng.below(3) as u32,
        size: 2 + rng.below(2) as u32,
        balance: pick(rng, &Balance::ALL),
    });
    ChildSpec { name, label: "Model".into(), restart, shutdown_ms, code, group, node: placement(rng) }
}

/// Where a child runs: mostly here; else on named nodes (this one, others, none up), or any.
fn placement(rng: &mut Rng) -> Placement {
    match rng.below(8) {
        0 => Placement::Any,
        1 => Placement::Nodes((0..rng.below(3)).map(|_| pick(rng, &["a", "b", "c", "z"]).to_string()).collect()),
        _ => Placement::Here,
    }
}

pub fn tree(rng: &mut Rng, known: &Known, depth: u32) -> TreeSpec {
    let n = rng.below(5) as usize;
    TreeSpec {
        name: rng.chance(1, 3).then(|| format!("sup{}", rng.below(3))),
        strategy: pick(rng, &Strategy::ALL),
        max_restarts: if rng.chance(1, 50) { u32::MAX } else { rng.below(6) as u32 },
        max_seconds_ms: millis(rng, 10_000),
        children: (0..n).map(|_| child(rng, known, depth)).collect(),
    }
}

/// A subscription's queue bound, over the whole `u32` range: mostly valid, but also 0, the
/// edges of `MAX_QUEUE` and anything past it (all refused).
pub fn queue(rng: &mut Rng) -> u32 {
    let max = MAX_QUEUE as u32;
    match rng.below(8) {
        0 => 0,
        1 => [max - 1, max, max + 1, u32::MAX][rng.below(4) as usize],
        2 => rng.next() as u32,
        _ => 1 + rng.below(8) as u32,
    }
}

/// Milliseconds below `most`, now and then any `u64` (a peer may ask for any span; Python's
/// own checks stop at what a float holds, not at what an `Instant` can add).
fn millis(rng: &mut Rng, most: u64) -> u64 {
    match rng.below(40) {
        0 => u64::MAX,
        1 => rng.next(),
        _ => rng.below(most),
    }
}

/// Mostly short, so callers give up and the sweep has late replies to forget.
fn call_timeout(rng: &mut Rng) -> u64 {
    if rng.chance(1, 2) {
        rng.below(100)
    } else {
        millis(rng, 10_000)
    }
}

fn timeout(rng: &mut Rng) -> Option<u64> {
    match rng.below(3) {
        0 => None,
        1 => Some(0),
        _ => Some(millis(rng, 10_000)),
    }
}

/// A request as a Python process could send it. `sender` is an actor of that process, if any;
/// `main`: it is the main process (which alone starts trees and acquires cowns, mostly).
pub fn request(rng: &mut Rng, known: &mut Known, sender: Option<ActorId>, main: bool) -> Request {
    let main = main || rng.chance(1, 10);
    match rng.below(26) {
        0..=4 => Request::Call {
            target: target(rng, known),
            subject: pick(rng, &SUBJECTS).into(),
            sender,
            payload: payload(rng),
            timeout_ms: call_timeout(rng),
        },
        5..=7 => Request::Cast {
            target: target(rng, known),
            subject: pick(rng, &SUBJECTS).into(),
            sender,
            payload: payload(rng),
        },
        10 | 11 if main => Request::StartTree { spec: tree(rng, known, 0) },
        8..=11 => Request::Spawn { child: child(rng, known, 1).into() },
        12 => Request::Call {
            target: target(rng, known),
            subject: "arm".into(),
            sender,
            payload: payload(rng),
            timeout_ms: call_timeout(rng),
        },
        13 if rng.chance(1, 3) => Request::Whereis { name: pick(rng, &NAMES).into() },
        13 => Request::Monitor { watcher: sender.filter(|_| rng.chance(1, 2)), target: target(rng, known) },
        14 if rng.chance(1, 4) => Request::StopTree { tree: adoptee(rng, known) },
        14 => Request::Demonitor { monitor: some_id(rng, &known.monitors) },
        15 => Request::Subscribe {
            actor: if rng.chance(1, 2) { Some(some_id(rng, &known.actors)) } else { None },
            pattern: pick(rng, &PATTERNS).into(),
            throttle_ms: match rng.below(4) {
                0 | 1 => 0,
                2 => rng.below(100),
                _ => [3_600_000, 3_600_001, u64::MAX, rng.next()][rng.below(4) as usize],
            },
            queue: queue(rng),
        },
        16 => Request::Unsubscribe { subscription: some_id(rng, &known.subs) },
        17 => Request::Publish { topic: pick(rng, &TOPICS).into(), payload: payload(rng) },
        18..=20 => schedule(rng, known, main),
        21 => Request::Quiesce { timeout_ms: timeout(rng) },
        22 => match rng.below(4) {
            0 => Request::SendTagged { tag: pick(rng, &TAGS).into(), payload: payload(rng) },
            1 => Request::Receive {
                tags: TAGS.iter().filter(|_| rng.chance(1, 2)).map(|t| t.to_string()).collect(),
                timeout_ms: timeout(rng),
            },
            2 => Request::Drain { tags: vec![pick(rng, &TAGS).into()] },
            _ => Request::SetTags { tags: TAGS.iter().filter(|_| rng.chance(1, 2)).map(|t| t.to_string()).collect() },
        },
        23 => match rng.below(4) {
            0 => Request::NoticeSeed { key: pick(rng, &KEYS).into(), payload: payload(rng) },
            1 => Request::NoticeUpdate {
                key: pick(rng, &KEYS).into(),
                expected: rng.below(4),
                payload: rng.chance(2, 3).then(|| payload(rng)),
            },
            2 => Request::Notices { clear: rng.chance(1, 2) },
            _ => Request::BocStats,
        },
        24 if rng.chance(1, 200) => Request::Shutdown { code: rng.below(3) as i32 },
        // A route is answered at once: refused, or (in episodes with channels) with a new one.
        25 => Request::Route { target: target(rng, known) },
        _ => Request::Whereis { name: "nobody".into() },
    }
}

fn schedule(rng: &mut Rng, known: &mut Known, main: bool) -> Request {
    let n = rng.below(4);
    let mut cowns: Vec<u64> = (0..n).map(|_| some_id(rng, &known.cowns)).collect();
    if rng.chance(9, 10) {
        cowns.sort_unstable();
        cowns.dedup();
    }
    let behaviour = if rng.chance(1, 30) { some_id(rng, &known.behaviours) } else { known.fresh() };
    let result = known.fresh();
    known.behaviours.push(behaviour);
    known.cowns.push(result);
    let at_main = main && rng.chance(1, 6);
    let gated = rng.chance(1, 4);
    // A main process's ordinary @when does not wait for its answer (answered only if refused).
    let quiet = rng.chance(1, 2);
    Request::Schedule { behaviour, cowns, result, code: payload(rng), at_main, gated, quiet }
}

/// A well-formed event that answers nothing the governor asked (a late or confused worker).
pub fn stray_event(rng: &mut Rng, known: &mut Known) -> Event {
    match rng.below(13) {
        0 => Event::Replied {
            delivery: some_id(rng, &known.deliveries),
            outcome: Outcome::Reply { status: Status::Ok, payload: payload(rng) },
        },
        1 => Event::Started { actor: some_id(rng, &known.actors), result: Ok(gating(rng)) },
        2 => Event::Exited {
            actor: some_id(rng, &known.actors),
            reason: exit(rng),
            taken_up_to: if rng.chance(1, 2) { some_id(rng, &known.deliveries) } else { u64::MAX },
        },
        3 => {
            let cown = if rng.chance(1, 2) { known.fresh() } else { some_id(rng, &known.cowns) };
            known.cowns.push(cown);
            Event::CownCreated { cown, pinned: rng.chance(1, 3) }
        }
        4 => Event::CownValue { cown: some_id(rng, &known.cowns), payload: payload(rng) },
        5 => Event::BehaviourDone { behaviour: some_id(rng, &known.behaviours) },
        6 => Event::SysPath { paths: (0..rng.below(3)).map(|i| format!("/tmp/model-path-{i}")).collect() },
        8 => Event::DefineCode { id: rng.below(4), code: payload(rng) },
        7 => Event::DirectDeliveries {
            counts: (0..rng.below(3)).map(|_| (some_id(rng, &known.actors), rng.below(u64::MAX))).collect(),
        },
        // Only the cowns the sender made count (the model's, with small ids, are the main
        // process's); a cown a behaviour still names stays, and a kept one is never freed.
        9 => Event::DropCowns { cowns: (0..rng.below(4)).map(|_| some_id(rng, &known.cowns)).collect() },
        10 => Event::ReleaseCowns { cowns: (0..rng.below(4)).map(|_| some_id(rng, &known.cowns)).collect() },
        11 => Event::KeepCowns { cowns: (0..rng.below(4)).map(|_| some_id(rng, &known.cowns)).collect() },
        _ => Event::Notice { key: pick(rng, &KEYS).into(), payload: rng.chance(2, 3).then(|| payload(rng)) },
    }
}
