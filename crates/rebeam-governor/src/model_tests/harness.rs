//! One episode: a router with a fake OS, its fake processes, and the random inputs they send.

use std::collections::{HashSet, VecDeque};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use rebeam_core::topics::{MAX_QUEUE, MAX_THROTTLE};
use rebeam_proto::{
    ControlRequest, ControlResponse, ErrorKind, Event, Frame, ProtoError, Request, Response, Role, Safety,
    PROTOCOL_VERSION,
};
use tokio::sync::oneshot;

use super::fake::{again, describe, Fake, FakeOs, Known, LIBRARY_PARENT};
use super::invariants::{check_invariants, check_torn_down};
use super::{gen, Rng};
use crate::control::Peer;
use crate::listener::Hello;
use crate::node::{Follow, NodeIn};

/// The host's `rebeam ctl`: no process of the run among its ancestors.
const HOST_PID: u32 = super::fake::FAKE_PID_BASE - 0x100;

/// A roomy outbox budget; episodes draw smaller ones too, so that a process that stops
/// reading fills its outbox within a few frames (the real budget is two frames of the largest
/// size, and the model's frames are small).
const ROOMY_OUTBOX_BUDGET: u64 = 64 << 20;
use crate::process::ProcessExit;
use crate::router::{Input, ProcIdx, ProcState, Router};
use crate::{Config, Program, SafetyMode};

mod answers;
mod data_plane;
mod other_nodes;
mod stalls;

pub use data_plane::lent_fds_released;

/// Inputs kept for the failure report.
const LOG_TAIL: usize = 100;
/// After the episode's inputs, how many more the shutdown may take.
const DRAIN_STEPS: u64 = 100_000;
const LIBRARY_TOKEN: &str = "library-token";
/// Timers due later than this (virtual) are never fired: see `absorb`.
const TIMER_HORIZON: Duration = Duration::from_secs(30 * 24 * 3600);

pub struct Harness {
    router: Router,
    os: FakeOs,
    rng: Rng,
    fakes: Vec<Fake>,
    /// The router's id of each fake process (`ids[i]` is `fakes[i]`'s), and the same as a set.
    ids: Vec<ProcIdx>,
    id_set: HashSet<ProcIdx>,
    known: Known,
    /// Timers the router set, with the virtual time (ms) they are due at.
    timers: Vec<(u64, Input)>,
    /// Virtual milliseconds since the start: each input takes a few.
    now: u64,
    /// Timers already fired, to fire again (a duplicate or very late wake-up).
    fired: Vec<Input>,
    /// Connection losses and reaps the fake OS owes the router.
    os_events: Vec<Input>,
    killed: HashSet<u32>,
    interrupts: u32,
    /// The shutdown deadline fired while shutting down, or Ctrl-C came twice.
    forced: bool,
    library: bool,
    /// Each connection's outbox budget, in bytes.
    budget: u64,
    len: u64,
    pub log: VecDeque<String>,
    pub inputs: u64,
    /// The read ends of the pipes whose write ends were lent (`data_plane.rs`), and the frame
    /// that lent each.
    lent: Vec<(std::io::PipeReader, String)>,
    /// The other nodes, when this router is node "a" of a system (`other_nodes.rs`).
    nodes: Option<other_nodes::OtherNodes>,
}

fn config(rng: &mut Rng, library: bool) -> Config {
    let program = if library {
        Program::Library { parent: LIBRARY_PARENT, token: LIBRARY_TOKEN.into(), ready_fd: None, host: false }
    } else {
        Program::Script { script: "/nonexistent/main.py".into(), argv0: OsString::from("main.py"), args: vec![] }
    };
    Config {
        python: PathBuf::from("/nonexistent/python"),
        program,
        workers: 1 + rng.below(3) as usize,
        spares: rng.below(3) as usize,
        max_message_bytes: gen::MAX_MESSAGE_BYTES,
        shutdown_timeout: Duration::from_secs(10),
        log_filter: String::new(),
        safety: if rng.chance(1, 4) { SafetyMode::RequireArmed } else { SafetyMode::Marked },
        safety_grace: Duration::from_millis(200),
        allow_publish: vec!["safety.estop".into()],
        control_socket: None,
        python_user: None,
        main_restart: Default::default(),
        zygote: false,
    }
}

impl Harness {
    pub fn new(seed: u64, max_len: u64) -> Harness {
        let mut rng = Rng::new(seed);
        let library = rng.chance(1, 4);
        let config = config(&mut rng, library);
        let os = FakeOs::default();
        let bus = crate::bus::Bus::new(&config.allow_publish).expect("valid patterns");
        let paths = (PathBuf::from("/nonexistent/run.sock"), PathBuf::from("/nonexistent/ctl.sock"));
        let mut router = Router::new(config, Box::new(os.clone()), paths.0, paths.1, bus);
        router.start_processes().expect("the fake OS starts every process");
        let nodes = other_nodes::OtherNodes::maybe(&mut rng, &mut router);
        let len = 1 + rng.below(max_len);
        let budget = if rng.chance(1, 2) { ROOMY_OUTBOX_BUDGET } else { 100 + rng.below(400) };
        let mut h = Harness {
            router,
            os,
            rng,
            fakes: Vec::new(),
            ids: Vec::new(),
            id_set: HashSet::new(),
            known: Known::default(),
            timers: Vec::new(),
            now: 0,
            fired: Vec::new(),
            os_events: Vec::new(),
            killed: HashSet::new(),
            interrupts: 0,
            forced: false,
            library,
            budget,
            len,
            log: VecDeque::new(),
            inputs: 0,
            lent: Vec::new(),
            nodes,
        };
        // Half the episodes have real channels: routes open them, and direct calls are made.
        h.os.world().channels = h.rng.chance(1, 2);
        h.note(format!("start: {library}, {} workers + {} spares", h.router.config.workers, h.router.config.spares));
        h
    }

    /// The episode's inputs, then a shutdown driven to its end. Returns the inputs fed.
    /// The router's trees and actors, for a failure report.
    pub fn dump(&self) -> String {
        let mut trees: Vec<String> = self
            .router
            .trees
            .view()
            .iter()
            .map(|(id, t)| format!("tree {id}: parent {:?}, slots {:?}, starting {:?}", t.parent, t.slots, t.starting))
            .collect();
        trees.sort();
        let mut actors: Vec<String> = self
            .router
            .actors
            .iter()
            .map(|(id, a)| {
                let on = self.router.actors.proc_of(*id);
                format!("actor {id} {}: on {on:?}, parent {:?}", a.label, a.parent)
            })
            .collect();
        actors.sort();
        format!(
            "roots {:?}
  {}
  {}",
            self.router.trees.roots(),
            trees.join("\n  "),
            actors.join("\n  ")
        )
    }

    pub fn seen(&self) -> &std::collections::BTreeMap<String, u64> {
        &self.known.seen
    }

    pub fn run(&mut self) -> Result<u64, String> {
        self.absorb()?;
        for _ in 0..self.len {
            if self.router.finished {
                return Ok(self.inputs);
            }
            self.step()?;
        }
        if !self.router.finished {
            self.note("host: SIGTERM".into());
            self.sync_clock();
            self.router.begin_shutdown(143, "received SIGTERM");
            self.absorb()?;
        }
        for _ in 0..DRAIN_STEPS {
            if self.router.finished {
                return Ok(self.inputs);
            }
            self.now += self.rng.below(10);
            if !self.calm()? {
                // Nothing to do until the next timer is due, or a stalled process reads again.
                match self.next_wake() {
                    Some(due) => {
                        self.now = self.now.max(due);
                        self.absorb()?;
                    }
                    None => return Err("the shutdown is stuck: nothing left to answer, deliver or fire".into()),
                }
            }
        }
        Err(format!("the shutdown did not finish within {DRAIN_STEPS} inputs"))
    }

    fn note(&mut self, mut what: String) {
        if what.len() > 300 {
            let cut = (0..=300).rev().find(|&i| what.is_char_boundary(i)).unwrap_or(0);
            what.truncate(cut);
            what.push('…');
        }
        if self.log.len() == LOG_TAIL {
            self.log.pop_front();
        }
        self.log.push_back(what);
    }

    /// When something next happens by itself: a timer is due, or a stalled process resumes.
    fn next_wake(&self) -> Option<u64> {
        let stalls = self.fakes.iter().filter(|f| f.stalled && !f.gone).map(|f| f.stalled_until);
        self.timers.iter().map(|&(due, _)| due).chain(stalls).min()
    }

    /// The router reads the virtual clock through the fake OS.
    fn sync_clock(&self) {
        self.os.world().now_ms = self.now;
    }

    fn feed(&mut self, input: Input) -> Result<(), String> {
        self.sync_clock();
        self.note(describe(&input));
        self.forced |= matches!(input, Input::ShutdownDeadline) && self.router.is_shutting_down();
        self.inputs += 1;
        // The host, or on a follower node the arming authority's word (its host's, there).
        let host = matches!(input, Input::Control(..) | Input::Node(NodeIn::Follow(Follow::Arm)));
        let armed = self.router.safety_state() == Safety::Armed;
        self.router.handle(input);
        // The rule: only the host arms; nothing a process sends, and no timer, does.
        if !host && !armed && self.router.safety_state() == Safety::Armed {
            return Err("the system was armed by something other than the host's control request".into());
        }
        self.absorb()
    }

    /// Takes in what the router did (new processes, frames, timers, signals) and checks it.
    fn absorb(&mut self) -> Result<(), String> {
        for (id, p) in self.router.procs.iter() {
            if self.id_set.insert(id) {
                self.ids.push(id);
                self.fakes.push(Fake::new(p.pid, p.role, p.token.clone()));
            }
        }
        let (timers, signals) = {
            let mut w = self.os.world();
            (std::mem::take(&mut w.timers), std::mem::take(&mut w.signals))
        };
        let now = self.now;
        // A timer due past the horizon would fire after any episode ends (and moving the clock
        // there would overflow an `Instant`): it is one that never fires.
        let soon = timers.into_iter().filter(|(delay, _)| *delay <= TIMER_HORIZON);
        self.timers.extend(soon.map(|(delay, input)| (now + delay.as_millis() as u64, input)));
        for (pid, sig, group) in signals {
            self.signal(pid, sig, group)?;
        }
        for f in &mut self.fakes {
            f.stalled = f.stalled_until > now;
            f.read(&mut self.known)?;
        }
        self.calls_answered_or_pending()?;
        self.directs_answered_or_closed()?;
        if let Some(nodes) = &mut self.nodes {
            nodes.take_out(&mut self.known.seen)?;
        }
        self.known.live_actors = self.router.actors.keys().copied().collect();
        self.known.live_actors.sort_unstable();
        self.known.live_names = self.router.names.iter().map(|(n, _)| n.to_string()).collect();
        self.known.live_names.extend(self.router.names.groups().map(|(n, _)| n.to_string()));
        self.known.live_names.sort_unstable();
        self.known.live_roots = self.router.trees.roots().to_vec();
        self.known.live_trees = self.router.trees.view().into_keys().collect();
        self.known.live_trees.sort_unstable();
        self.known.next_router_id = self.router.next_id;
        check_invariants(&self.router)?;
        let state = self.router.safety_state();
        for (i, f) in self.fakes.iter().enumerate() {
            // A removed process was reaped: it hears nothing more.
            let Some(p) = self.router.procs.get(self.ids[i]) else { continue };
            if p.state == ProcState::Ready && p.tx.is_some() && !f.stalled && f.safety != Some(state) {
                return Err(format!(
                    "{} was last told safety {:?}, but the state is {state:?}",
                    p.describe(),
                    f.safety
                ));
            }
        }
        if self.router.finished {
            check_torn_down(&self.router, &self.killed, self.forced)?;
            if let Some(nodes) = &self.nodes {
                nodes.all_answered(self.now)?;
            }
        }
        Ok(())
    }

    /// What the kernel would do with a signal the router sent.
    fn signal(&mut self, pid: u32, sig: i32, group: bool) -> Result<(), String> {
        let Some(i) = self.fakes.iter().position(|f| f.pid == pid) else {
            return Err(format!("the governor sent signal {sig} to pid {pid:#x}, which it never started"));
        };
        if self.router.procs.get(self.ids[i]).is_some_and(|p| p.external) {
            return Err(format!(
                "the governor sent signal {sig} to the library-mode main process, which is not its own"
            ));
        }
        if sig != libc::SIGKILL {
            return Ok(());
        }
        if group {
            self.killed.insert(pid);
        }
        if self.fakes[i].stalled {
            *self.known.seen.entry("(a stalled process is killed)".into()).or_default() += 1;
        }
        self.vanish(i, ProcessExit::Signal(libc::SIGKILL));
        Ok(())
    }

    /// The process is gone: its connection closes and it is reaped, in some order, later.
    fn vanish(&mut self, i: usize, exit: ProcessExit) {
        let f = &mut self.fakes[i];
        if f.gone {
            return;
        }
        f.gone = true;
        if f.conn.is_some() && !f.closed {
            f.closed = true;
            self.os_events.push(Input::Lost(self.ids[i], ProtoError::Closed));
        }
        if !self.router.procs.get(self.ids[i]).is_some_and(|p| p.external) {
            self.os_events.push(Input::Reaped(f.pid, exit));
        }
    }

    fn step(&mut self) -> Result<(), String> {
        self.now += self.rng.below(10);
        // Weights per mille: the run's own traffic dominates; what ends a run is rare, so
        // an episode lives long enough to build trees, restart them, arm and disarm.
        let acted = match self.rng.below(1000) {
            0..=99 => self.fire_timer()?,
            100..=179 => self.os_event()?,
            180..=219 => self.hello()?,
            220..=259 => self.ready()?,
            260..=489 => self.answer()?,
            490..=499 => self.direct_call()?,
            500..=509 => self.direct_reply()?,
            510..=759 => self.request()?,
            760..=774 => self.exit_actor()?,
            775..=794 => self.stray()?,
            795..=819 => self.request()?,
            820..=825 => self.die()?,
            826..=865 => self.control()?,
            866..=875 => self.sweep()?,
            876..=879 => self.break_protocol()?,
            880..=881 => self.body_done()?,
            882..=883 => {
                self.note("os: the next spawn fails".into());
                self.os.world().fail_next_spawn = true;
                true
            }
            884 => self.signal_governor()?,
            885..=894 => self.refire()?,
            895..=899 => self.stall(),
            900..=939 => self.node_input()?,
            _ => false,
        };
        // Drawing again would favour what always applies (control, signals) while the
        // processes still start: move the run along instead.
        // (A stall is not cut short so: the run goes on around a process that does not read.)
        if !acted && !self.calm()? {
            self.now = self.timers.iter().map(|&(due, _)| due).min().unwrap_or(self.now).max(self.now);
        }
        Ok(())
    }

    /// What a healthy run does next: handshakes, answers, deaths and timers that are due.
    fn calm(&mut self) -> Result<bool, String> {
        Ok(self.hello()?
            || self.ready()?
            || self.answer()?
            || self.os_event()?
            || self.fire_timer()?
            || self.node_answer()?)
    }

    /// A fake process (its index in `fakes`) that `ok` accepts; `ok` gets its router id.
    fn pick(&mut self, ok: impl Fn(&Fake, &Router, ProcIdx) -> bool) -> Option<usize> {
        let n = self.fakes.len();
        let start = self.rng.below(n as u64) as usize;
        (0..n).map(|k| (start + k) % n).find(|&i| ok(&self.fakes[i], &self.router, self.ids[i]))
    }

    fn frame(&mut self, i: usize, frame: Frame) -> Result<bool, String> {
        self.feed(Input::Frame(self.ids[i], frame)).map(|()| true)
    }

    fn event(&mut self, i: usize, event: Event) -> Result<bool, String> {
        self.frame(i, Frame::Event(event))
    }

    /// Fires a due timer; when several are due (they are late), in any order.
    fn fire_timer(&mut self) -> Result<bool, String> {
        let due: Vec<usize> = (0..self.timers.len()).filter(|&i| self.timers[i].0 <= self.now).collect();
        if due.is_empty() {
            return Ok(false);
        }
        let (_, input) = self.timers.swap_remove(due[self.rng.below(due.len() as u64) as usize]);
        if self.rng.chance(1, 8) {
            self.fired.extend(again(&input));
        }
        self.feed(input).map(|()| true)
    }

    fn refire(&mut self) -> Result<bool, String> {
        if self.fired.is_empty() {
            return Ok(false);
        }
        let input = self.fired.swap_remove(self.rng.below(self.fired.len() as u64) as usize);
        self.feed(input).map(|()| true)
    }

    fn os_event(&mut self) -> Result<bool, String> {
        if self.os_events.is_empty() {
            return Ok(false);
        }
        let input = self.os_events.swap_remove(self.rng.below(self.os_events.len() as u64) as usize);
        self.feed(input).map(|()| true)
    }

    fn hello(&mut self) -> Result<bool, String> {
        if self.rng.chance(1, 40) {
            return self.hello_again();
        }
        let Some(i) = self.pick(|f, r, i| {
            f.conn.is_none() && !f.gone && r.procs.get(i).is_some_and(|p| p.state == ProcState::Spawned)
        }) else {
            return Ok(false);
        };
        let f = &self.fakes[i];
        let (mut version, mut role, mut token, mut pid) = (PROTOCOL_VERSION, f.role, f.token.clone(), f.pid);
        let good = f.hello_refused > 2 || self.rng.chance(6, 7);
        if !good {
            match self.rng.below(4) {
                0 => version += 1,
                1 => token = "not-a-token".into(),
                2 => pid += 1,
                _ => role = if role == Role::Main { Role::Worker } else { Role::Main },
            }
        }
        let (writer, rx) = crate::outbox::outbox(self.budget);
        let (accept, mut accepted) = oneshot::channel();
        self.feed(Input::Hello(Hello { version, role, token, pid, writer, accept }))?;
        match (accepted.try_recv(), good) {
            (Ok(Ok(idx)), true) if idx == self.ids[i] => self.fakes[i].conn = Some(rx),
            (Ok(Err(_)), false) => self.fakes[i].hello_refused += 1,
            (answer, good) => return Err(format!("Hello of process {i} (good: {good}) was answered {answer:?}")),
        }
        self.absorb().map(|()| true)
    }

    /// A second connection presenting a token that was already used: refused, and the
    /// process it belongs to carries on.
    fn hello_again(&mut self) -> Result<bool, String> {
        let Some(i) = self.pick(|f, _, _| f.conn.is_some()) else {
            return Ok(false);
        };
        let f = &self.fakes[i];
        let (writer, _rx) = crate::outbox::outbox(self.budget);
        let (accept, mut accepted) = oneshot::channel();
        let (role, token, pid) = (f.role, f.token.clone(), f.pid);
        self.feed(Input::Hello(Hello { version: PROTOCOL_VERSION, role, token, pid, writer, accept }))?;
        match accepted.try_recv() {
            Ok(Err(_)) => Ok(true),
            answer => Err(format!("a reused token of process {i} was answered {answer:?}")),
        }
    }

    fn ready(&mut self) -> Result<bool, String> {
        let again = self.rng.chance(1, 30);
        let Some(i) = self
            .pick(|f, r, i| f.talking() && (again || r.procs.get(i).is_some_and(|p| p.state == ProcState::Connected)))
        else {
            return Ok(false);
        };
        self.fakes[i].ready = true;
        self.frame(i, Frame::Ready)
    }

    fn request(&mut self) -> Result<bool, String> {
        let early = self.rng.chance(1, 20);
        let Some(i) = self.pick(|f, _, _| f.talking() && (f.ready || early)) else {
            return Ok(false);
        };
        if self.rng.chance(1, 10) {
            // Cowns are made where the program runs; behaviours then move them about.
            let cown = self.known.fresh();
            self.known.cowns.push(cown);
            let pinned = self.fakes[i].role == Role::Main && self.rng.chance(1, 3);
            return self.event(i, Event::CownCreated { cown, pinned });
        }
        let f = &self.fakes[i];
        let sender = (!f.hosted.is_empty() && self.rng.chance(2, 3))
            .then(|| f.hosted[self.rng.below(f.hosted.len() as u64) as usize]);
        let main = f.role == Role::Main;
        let body = gen::request(&mut self.rng, &mut self.known, sender, main);
        let f = &mut self.fakes[i];
        f.next_req += 1;
        let req = f.next_req;
        f.outstanding.insert(req);
        // Only these wait for something else (a worker, a behaviour, a message, a deadline);
        // every other request is answered while it is handled.
        let waits = matches!(
            body,
            Request::Call { .. }
                | Request::Spawn { .. }
                | Request::StartTree { .. }
                | Request::Quiesce { .. }
                | Request::Receive { .. }
        ) || (self.nodes.is_some()
            // On a node, these may go to the other nodes and wait for their answer.
            && matches!(body, Request::Cast { .. } | Request::Whereis { .. } | Request::Monitor { .. }));
        match &body {
            Request::Call { timeout_ms, .. } => {
                f.calls_due.insert(req, self.now.saturating_add(*timeout_ms));
            }
            Request::Subscribe { queue, throttle_ms, .. }
                if !(1..=MAX_QUEUE).contains(&(*queue as usize))
                    || u128::from(*throttle_ms) > MAX_THROTTLE.as_millis() =>
            {
                f.expect.insert(req, |r| matches!(r, Response::Subscribed(Err(_))));
            }
            // Answered only if refused: it leaves nothing outstanding, and any answer must be a
            // refusal (see `Fake::quiet`).
            Request::Schedule { quiet: true, .. } => {
                f.outstanding.remove(&req);
                f.quiet.insert(req);
            }
            _ => {}
        }
        let what = format!("{body:?}");
        self.send_maybe_lent(i, Frame::Request { req, body })?;
        // (A library-mode main process let go at the end of a shutdown is answered no more.)
        let talking = self.router.procs.get(self.ids[i]).is_some_and(|p| p.state != ProcState::Dead && p.tx.is_some());
        if !waits && talking && self.fakes[i].outstanding.contains(&req) {
            return Err(format!("process {i}'s request {req} was not answered at once: {what}"));
        }
        Ok(true)
    }

    fn exit_actor(&mut self) -> Result<bool, String> {
        let Some(i) = self.pick(|f, _, _| f.talking() && !f.hosted.is_empty()) else {
            return Ok(false);
        };
        let f = &mut self.fakes[i];
        let a = f.hosted.swap_remove(self.rng.below(f.hosted.len() as u64) as usize);
        let reason = gen::exit(&mut self.rng);
        self.event(i, Event::Exited { actor: a, reason, taken_up_to: u64::MAX })
    }

    fn stray(&mut self) -> Result<bool, String> {
        let Some(i) = self.pick(|f, _, _| f.talking()) else {
            return Ok(false);
        };
        let event = gen::stray_event(&mut self.rng, &mut self.known);
        self.event(i, event)
    }

    fn body_done(&mut self) -> Result<bool, String> {
        // A script mostly ends its body once it has built a tree (else the run ends with it).
        if self.router.trees.roots().is_empty() && self.rng.chance(9, 10) {
            return Ok(false);
        }
        let Some(i) = self.pick(|f, _, _| f.talking() && f.role == Role::Main && f.ready && !f.body_done) else {
            return Ok(false);
        };
        self.fakes[i].body_done = true;
        let error = self.rng.chance(1, 20).then(|| gen::error(&mut self.rng, ErrorKind::Crashed));
        let exit = (error.is_none() && self.rng.chance(1, 20)).then(|| self.rng.below(3) as i32);
        self.event(i, Event::BodyDone { error, exit })
    }

    /// A process exits, crashes, or sends bytes that do not decode.
    fn die(&mut self) -> Result<bool, String> {
        // Mostly ready workers: the main process or a starting worker dying ends the run early.
        let any = self.rng.chance(1, 30);
        let Some(i) = self.pick(|f, _, _| !f.gone && (any || (f.role == Role::Worker && f.ready))) else {
            return Ok(false);
        };
        match self.rng.below(3) {
            0 if self.fakes[i].talking() => {
                self.fakes[i].closed = true;
                self.feed(Input::Lost(self.ids[i], ProtoError::Malformed("model: bad bytes".into())))?;
            }
            1 => {
                self.note(format!("process {i} crashes"));
                self.vanish(i, ProcessExit::Signal(libc::SIGSEGV));
            }
            _ => {
                self.note(format!("process {i} exits"));
                self.vanish(i, ProcessExit::Code(1));
            }
        }
        Ok(true)
    }

    /// A control request from the host, or from a process of the run (a Python process, a
    /// descendant of one, or an orphan re-parented to the governor), which may only read.
    fn control(&mut self) -> Result<bool, String> {
        let request = match self.rng.below(10) {
            0..=3 => ControlRequest::Arm,
            4..=6 => ControlRequest::Disarm,
            7 => ControlRequest::ForceDisarm,
            _ => ControlRequest::Status,
        };
        let live: Vec<u32> = self.router.procs.values().filter(|p| p.state != ProcState::Dead).map(|p| p.pid).collect();
        let from_run = !live.is_empty() && self.rng.chance(1, 3);
        let chain = if from_run {
            let pid = live[self.rng.below(live.len() as u64) as usize];
            match self.rng.below(3) {
                0 => vec![pid, 1],
                1 => vec![HOST_PID + 1, pid, 1],
                _ => vec![HOST_PID + 2, std::process::id(), 1],
            }
        } else {
            vec![HOST_PID, 1]
        };
        let peer = Peer { pid: chain.first().copied(), ancestry: Ok(chain) };
        let changes = !matches!(request, ControlRequest::Status);
        let (reply, mut answer) = oneshot::channel();
        self.feed(Input::Control(request, peer, reply))?;
        match answer.try_recv() {
            Ok(ControlResponse::Refused(_)) if from_run && changes => Ok(true),
            Ok(other) if from_run && changes => {
                Err(format!("a process of the run changed the safety state: {other:?}"))
            }
            Ok(_) => Ok(true),
            Err(e) => Err(format!("a control request got no answer ({e})")),
        }
    }

    /// What `run` does on SIGINT, SIGTERM, SIGHUP, or (library mode) when the parent is gone.
    fn signal_governor(&mut self) -> Result<bool, String> {
        self.sync_clock();
        match self.rng.below(4) {
            0 => {
                self.interrupts += 1;
                self.note(format!("host: SIGINT #{}", self.interrupts));
                self.forced |= self.interrupts > 1;
                self.router.on_interrupt(self.interrupts);
            }
            1 => {
                self.note("host: SIGTERM".into());
                self.router.begin_shutdown(143, "received SIGTERM");
            }
            2 if self.library => return self.feed(Input::ParentGone).map(|()| true),
            _ => {
                self.note("host: SIGHUP".into());
                self.router.begin_shutdown(129, "received SIGHUP");
            }
        }
        self.absorb().map(|()| true)
    }

    /// Frames a process may not send: the governor refuses or drops it, and lives on.
    fn break_protocol(&mut self) -> Result<bool, String> {
        let any = self.rng.chance(1, 10);
        let Some(i) = self.pick(|f, _, _| f.talking() && (any || f.role == Role::Worker)) else {
            return Ok(false);
        };
        let frame = match self.rng.below(3) {
            0 => Frame::Control(ControlRequest::Arm),
            1 => Frame::Welcome { index: 9, max_message_bytes: 1, workers: 1 },
            _ => Frame::Response { req: 1, body: rebeam_proto::Response::Done },
        };
        self.frame(i, frame)
    }
}
