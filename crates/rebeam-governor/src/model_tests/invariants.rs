//! What must hold of the router's state after every input, whatever the input was.

use std::collections::HashSet;

use rebeam_core::safety::SafetyState;
use rebeam_proto::Role;

use crate::router::{ProcIdx, ProcState, Router};
use crate::tree::Running;

macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

pub fn check_invariants(r: &Router) -> Result<(), String> {
    procs(r)?;
    actors(r)?;
    deliveries(r)?;
    trees(r)?;
    safety(r)?;
    others(r)
}

fn live(r: &Router, p: ProcIdx) -> bool {
    // The transport stands for the other nodes' callers and watchers while the node is linked.
    if p == crate::node::NODE_PEER {
        return r.node.is_some();
    }
    // At the end of a shutdown the library-mode main process is let go (marked dead, as the
    // governor has nothing to wait for) rather than torn down like a process that died.
    r.procs.get(p).is_some_and(|p| p.state != ProcState::Dead || (p.external && r.is_shutting_down()))
}

fn procs(r: &Router) -> Result<(), String> {
    ensure!(r.procs.get(r.main).is_some_and(|p| p.role == Role::Main), "procs[main] is not the main process");
    let alive = r.procs.values().filter(|p| p.state != ProcState::Dead).count();
    let most = r.config.workers + r.config.spares + 1;
    ensure!(alive <= most, "{alive} live processes, more than workers + spares + main ({most})");
    for &p in &r.preloads_pending {
        ensure!(
            r.procs.get(p).is_some_and(|p| p.role == Role::Worker && p.state == ProcState::Ready),
            "a Preload waits for {p}, which is not a ready worker"
        );
    }
    ensure!(
        // A shutdown ends the run: nothing is preloaded any more.
        r.preloads_pending.is_empty() || r.pool_warming() || r.is_shutting_down(),
        "Preloads wait although no pool worker is starting"
    );
    let pids: HashSet<u32> = r.procs.values().map(|p| p.pid).collect();
    ensure!(pids.len() == r.procs.len(), "two processes share a pid");
    for (i, p) in r.procs.iter() {
        for a in r.actors.on(i) {
            ensure!(
                r.actors.proc_of(a) == Some(i),
                "{} lists actor <{a}>, which does not say it runs there",
                p.describe()
            );
        }
        ensure!(p.state != ProcState::Dead || r.actors.count_on(i) == 0, "dead {} still hosts actors", p.describe());
        ensure!(
            p.state == ProcState::Spawned || p.state == ProcState::Dead || p.tx.is_some() || p.lost,
            "{} is {:?} with no connection and not marked lost",
            p.describe(),
            p.state
        );
    }
    Ok(())
}

fn actors(r: &Router) -> Result<(), String> {
    for (name, id) in r.names.iter() {
        let actor = r.actors.get(&id);
        ensure!(actor.is_some(), "name '{name}' maps to actor <{id}>, which does not exist");
        ensure!(
            actor.is_some_and(|a| a.name.as_deref() == Some(name)),
            "name '{name}' maps to <{id}>, named otherwise"
        );
    }
    for (name, group) in r.names.groups() {
        ensure!(r.names.lookup(name).is_none(), "'{name}' is both an actor's name and a group's");
        ensure!(group.members().iter().any(Option::is_some), "group '{name}' is listed with no member");
        for (position, id) in group.members().iter().enumerate() {
            let Some(id) = id else { continue };
            let slot = r.actors.get(id).and_then(|a| a.group.as_ref());
            ensure!(
                slot.is_some_and(|s| s.name == name && s.position as usize == position),
                "group '{name}' lists <{id}> at {position}, which is not that member"
            );
        }
    }
    let queued: HashSet<u64> = r.queued_starts.iter().copied().collect();
    ensure!(queued.len() == r.queued_starts.len(), "an actor is queued to start twice");
    for id in &r.queued_starts {
        ensure!(
            r.actors.contains_key(id) && r.actors.proc_of(*id).is_none(),
            "queued start <{id}> is gone or already placed"
        );
    }
    for (id, a) in r.actors.iter() {
        match r.actors.proc_of(*id) {
            Some(p) => {
                ensure!(live(r, p), "actor {} runs on a dead or unknown process {p}", a.label);
                ensure!(r.procs[p].role == Role::Worker, "actor {} runs on the main process", a.label);
                ensure!(
                    r.actors.on(p).any(|x| x == *id),
                    "actor {} says it runs on process {p}, which does not list it",
                    a.label
                );
            }
            None => ensure!(queued.contains(id), "actor {} has no worker and is not queued to start", a.label),
        }
    }
    Ok(())
}

fn deliveries(r: &Router) -> Result<(), String> {
    // One index (`Router.calls`) holds every delivery in flight, so there is no second list to
    // fall out of step with it; what remains to check is what its entries point at.
    for (d, call) in r.calls.iter() {
        match call.awaiting {
            // Its actor ended; its worker owes the answer, or its death ends it.
            Some(worker) => ensure!(live(r, worker), "delivery {d} waits for an answer from dead process {worker}"),
            None => ensure!(
                r.actors.contains_key(&call.actor),
                "delivery {d} is for actor <{}>, which does not exist",
                call.actor
            ),
        }
        if let Some(c) = &call.caller {
            ensure!(live(r, c.proc), "delivery {d} waits for dead or unknown caller process {}", c.proc);
        }
        ensure!(call.caller.is_some() || call.gated, "delivery {d} is kept, but nobody waits for it");
    }
    for (m, mon) in &r.monitors {
        ensure!(r.actors.contains_key(&mon.target), "monitor {m} watches actor <{}>, which is gone", mon.target);
        ensure!(live(r, mon.watcher_proc), "monitor {m} belongs to a dead or unknown process {}", mon.watcher_proc);
    }
    for (s, sub) in r.bus.subscriptions() {
        ensure!(live(r, sub.proc), "subscription {s} belongs to a dead process {}", sub.proc);
        if let Some(a) = sub.actor {
            ensure!(r.actors.contains_key(&a), "subscription {s} belongs to actor <{a}>, which is gone");
        }
    }
    for p in r.messages.waiting_procs() {
        ensure!(live(r, p), "a receive() of dead process {p} still waits");
    }
    Ok(())
}

fn trees(r: &Router) -> Result<(), String> {
    let view = r.trees.view();
    let roots = r.trees.roots();
    let unique: HashSet<u64> = roots.iter().copied().collect();
    ensure!(unique.len() == roots.len(), "a tree is listed twice among the top-level trees: {roots:?}");
    for root in roots {
        ensure!(view.get(root).is_some_and(|t| t.parent.is_none()), "top-level tree {root} is gone or has a parent");
    }
    for (&id, t) in &view {
        match t.parent {
            None => ensure!(unique.contains(&id), "tree {id} has no parent and is not a top-level tree"),
            Some((parent, slot)) => {
                let up = view.get(&parent);
                ensure!(up.is_some(), "tree {id}'s parent {parent} is gone");
                let up = up.expect("checked");
                ensure!(
                    up.slots.get(slot) == Some(&Some(Running::Tree(id))) || up.starting == Some(slot),
                    "tree {id} says it is child {slot} of tree {parent}, which does not hold it there"
                );
            }
        }
        for (slot, running) in t.slots.iter().enumerate() {
            match running {
                // A child on another node is a proxy id here (node_placement.rs).
                Some(Running::Actor(a)) => ensure!(
                    r.actors.get(a).is_some_and(|actor| actor.parent == Some((id, slot)))
                        || r.child_elsewhere(*a).is_some(),
                    "tree {id} slot {slot} holds actor <{a}>, which is gone or has another parent"
                ),
                Some(Running::Tree(sub)) => ensure!(
                    view.get(sub).is_some_and(|s| s.parent == Some((id, slot))),
                    "tree {id} slot {slot} holds tree {sub}, which is gone or has another parent"
                ),
                None => {}
            }
        }
    }
    for (id, a) in r.actors.iter() {
        if let Some((tree, slot)) = a.parent {
            let t = view.get(&tree);
            ensure!(t.is_some_and(|t| slot < t.slots.len()), "actor <{id}>'s tree {tree} (slot {slot}) is gone");
        }
    }
    Ok(())
}

fn safety(r: &Router) -> Result<(), String> {
    let state = r.gate.state();
    let in_flight = r.calls.any_gated() || r.gate.behaviours().next().is_some();
    ensure!(state != SafetyState::Disarming || in_flight, "disarming with no gated work left");
    let uncancelled = r.calls.iter().any(|(_, c)| c.gated && c.cancelled.is_none())
        || r.gate.behaviours().any(|(_, b)| b.cancelled.is_none());
    ensure!(!uncancelled || state == SafetyState::Armed, "gated work runs uncancelled while {state}");
    let running: HashSet<u64> = r.boc_view().running.iter().map(|&(b, _)| b).collect();
    for (b, _) in r.gate.behaviours() {
        ensure!(running.contains(&b), "gated behaviour {b} is tracked, but not running");
    }
    Ok(())
}

fn others(r: &Router) -> Result<(), String> {
    let boc = r.boc_view();
    for (b, p) in boc.running.iter().chain(&boc.gathering) {
        ensure!(r.procs.contains(*p), "behaviour {b} is placed on unknown process {p}");
        // Once shutdown has dismissed it, the library-mode main process is marked dead as it
        // stands (the user's process goes on without us): what it ran is not cleaned up.
        let dismissed = r.shutdown.is_some() && r.procs[*p].external;
        ensure!(
            dismissed || r.procs[*p].state != ProcState::Dead,
            "behaviour {b} is gathering or running on dead process {p}"
        );
    }
    for p in boc.quiesce {
        ensure!(live(r, p), "wait() of dead or unknown process {p}");
    }
    Ok(())
}

/// Once the router says it is finished, nothing of the run may be left: every process is dead,
/// or was SIGKILLed as a group, or is the library-mode main process (not ours). Unless the end
/// was forced (the shutdown deadline, a second Ctrl-C), the trees and actors ended first.
pub fn check_torn_down(r: &Router, killed: &HashSet<u32>, forced: bool) -> Result<(), String> {
    for p in r.procs.values() {
        ensure!(
            p.state == ProcState::Dead || p.external || killed.contains(&p.pid),
            "the run finished, but {} is {:?} and was never killed",
            p.describe(),
            p.state
        );
    }
    if !forced {
        ensure!(r.trees.is_empty(), "every process is dead, but supervision trees remain");
        ensure!(r.actors.is_empty(), "every process is dead, but {} actor(s) remain", r.actors.len());
    }
    Ok(())
}
