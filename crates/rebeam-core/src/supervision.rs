//! Supervision: what a supervisor does when one of its children ends.
//!
//! This is the specification and the arithmetic of rebeam's supervisors, following
//! Erlang/OTP's `supervisor.erl`. This module decides; the governor acts (starts and stops
//! processes) and reports back. Nothing here reads a clock: time comes in as [`Instant`]s.
//!
//! # Children
//!
//! A supervisor's children are numbered by their position in start order. The number is a
//! stable slot: a child that is gone for good keeps its slot with status
//! [`ChildStatus::Removed`]. A slot is `Running`, `Stopped` (ended; a later restart of its
//! siblings may start it again) or `Removed` (never started again). All children are
//! `Running` when the supervisor is created.
//!
//! # Exit reasons ([`ExitReason`])
//!
//! `Normal` and `Shutdown` are normal exits; `Crashed` and `Killed` are abnormal.
//!
//! # Restart kinds ([`Restart`])
//!
//! - `permanent`: always restarted.
//! - `transient`: restarted only after an abnormal exit.
//! - `temporary`: never restarted; its slot becomes `Removed` as soon as it ends or is
//!   stopped (OTP deletes temporary children).
//!
//! An exit that leads to no restart is ignored ([`Decision::Ignore`]): nothing else happens
//! and it does not count toward intensity. So is the exit of a child that is not running or
//! that the supervisor is already stopping (it asked for that exit, or the notice is a
//! duplicate).
//!
//! # Strategies ([`Strategy`])
//!
//! When a child must be restarted:
//!
//! - `one_for_one`: only that child is restarted.
//! - `one_for_all`: every other running child is stopped, in reverse start order; then every
//!   child that is neither temporary nor removed is started, in start order. That includes
//!   children that had ended earlier without being restarted (a transient child that exited
//!   normally): OTP restarts the whole list. Temporary siblings that get stopped are removed.
//! - `rest_for_one`: like `one_for_all`, restricted to the failed child and the children
//!   started after it; children started before it are untouched.
//!
//! # Intensity ([`Intensity`])
//!
//! Each restart is recorded at the time of the exit that causes it. Records more than
//! `max_seconds` old are forgotten (one exactly `max_seconds` old still counts). If, with the
//! new record, more than `max_restarts` remain, the supervisor gives up instead of
//! restarting ([`Decision::Escalate`]): it stops every running child in reverse start order
//! and exits itself with [`Intensity::escalation_reason`], leaving the decision to its own
//! parent. So `max_restarts = 3` allows three restarts in the window and the fourth
//! escalates; `max_restarts = 0` escalates on the first. The default is 3 in 5 seconds.
//!
//! # Faults
//!
//! One event can end several children at once: a worker process that dies takes every actor
//! in it. Such exits carry the same [`FaultId`] ([`Supervisor::child_exited_in_fault`]), and
//! a supervisor counts one fault as one restart toward its intensity: the first exit of a
//! fault is recorded, the others restart their children without a new record. Otherwise a
//! single segfault in a worker hosting four actors of one supervisor would exceed the
//! default intensity by itself, and one crashed process would end the program.
//!
//! # Shutdown
//!
//! A supervisor that shuts down stops its running children in reverse start order
//! ([`Supervisor::shutdown_order`]), each within its [`Shutdown`] budget. A supervisor with
//! no running child is finished: a tree whose children all ended normally is done.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Default restart intensity: 3 restarts within 5 seconds (OTP's default is 1 in 5; the rebeam API documents 3 in 5).
pub const DEFAULT_MAX_RESTARTS: u32 = 3;
pub const DEFAULT_MAX_SECONDS: u64 = 5;
/// Default time a child gets to stop politely before it is killed (OTP's 5000 ms for workers).
pub const DEFAULT_SHUTDOWN: Duration = Duration::from_secs(5);

/// Which siblings are restarted together with a failed child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
pub enum Strategy {
    #[default]
    OneForOne,
    OneForAll,
    RestForOne,
}

impl Strategy {
    pub const ALL: [Strategy; 3] = [Strategy::OneForOne, Strategy::OneForAll, Strategy::RestForOne];

    /// The Python (and OTP) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::OneForOne => "one_for_one",
            Strategy::OneForAll => "one_for_all",
            Strategy::RestForOne => "rest_for_one",
        }
    }
}

/// When a child that ended is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
pub enum Restart {
    #[default]
    Permanent,
    Transient,
    Temporary,
}

impl Restart {
    pub const ALL: [Restart; 3] = [Restart::Permanent, Restart::Transient, Restart::Temporary];

    /// The Python (and OTP) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Restart::Permanent => "permanent",
            Restart::Transient => "transient",
            Restart::Temporary => "temporary",
        }
    }

    /// Whether a child of this kind that ended with `reason` is to be restarted.
    pub fn restarts_after(self, reason: &ExitReason) -> bool {
        match self {
            Restart::Permanent => true,
            Restart::Transient => !reason.is_normal(),
            Restart::Temporary => false,
        }
    }
}

/// How a child is stopped by its supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Shutdown {
    /// Killed at once.
    Kill,
    /// Asked to stop, and killed if it has not within this time.
    Timeout(Duration),
    /// Asked to stop, and waited for (OTP's choice for child supervisors).
    Infinity,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::Timeout(DEFAULT_SHUTDOWN)
    }
}

/// The most restarts an intensity may allow: a supervisor keeps one timestamp per restart
/// in its window, so an unbounded count is unbounded memory for a child that keeps failing.
pub const MAX_RESTARTS: u32 = 10_000;
/// The longest restart window an intensity may have.
pub const MAX_RESTART_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// How many restarts a supervisor tolerates within a sliding window before giving up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Intensity {
    pub max_restarts: u32,
    pub max_seconds: Duration,
}

impl Intensity {
    pub const fn new(max_restarts: u32, max_seconds: Duration) -> Self {
        Intensity { max_restarts, max_seconds }
    }

    /// The reason a supervisor exits with after [`Decision::Escalate`].
    pub fn escalation_reason(&self) -> ExitReason {
        ExitReason::Crashed(format!(
            "reached max restart intensity: more than {} restarts within {:?}",
            self.max_restarts, self.max_seconds
        ))
    }
}

impl Default for Intensity {
    fn default() -> Self {
        Intensity::new(DEFAULT_MAX_RESTARTS, Duration::from_secs(DEFAULT_MAX_SECONDS))
    }
}

/// Why a child ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ExitReason {
    /// Returned / stopped by itself normally.
    Normal,
    /// Stopped on request (by its supervisor or a system shutdown).
    Shutdown,
    /// Handler/task raised; the string is "TypeName: message".
    Crashed(String),
    /// Its worker process died or was killed; the string describes it ("SIGSEGV", "exit status 3").
    Killed(String),
}

impl ExitReason {
    /// `Normal` and `Shutdown` are normal; a transient child is not restarted after them.
    pub fn is_normal(&self) -> bool {
        match self {
            ExitReason::Normal | ExitReason::Shutdown => true,
            ExitReason::Crashed(_) | ExitReason::Killed(_) => false,
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Shutdown => f.write_str("shutdown"),
            ExitReason::Crashed(what) => write!(f, "crashed: {what}"),
            ExitReason::Killed(what) => write!(f, "killed: {what}"),
        }
    }
}

/// A supervision spec value that is not one of the valid spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}; expected one of {valid:?}")]
pub struct SpecError {
    /// What was being parsed ("strategy", "restart").
    pub what: &'static str,
    pub value: String,
    pub valid: Vec<&'static str>,
}

pub(crate) fn parse_spelling<T: Copy>(
    what: &'static str,
    value: &str,
    all: &[T],
    spelling: fn(T) -> &'static str,
) -> Result<T, SpecError> {
    all.iter().copied().find(|v| spelling(*v) == value).ok_or_else(|| SpecError {
        what,
        value: value.to_owned(),
        valid: all.iter().map(|v| spelling(*v)).collect(),
    })
}

impl FromStr for Strategy {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        parse_spelling("strategy", s, &Strategy::ALL, Strategy::as_str)
    }
}

impl FromStr for Restart {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        parse_spelling("restart", s, &Restart::ALL, Restart::as_str)
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Restart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildStatus {
    Running,
    Stopped,
    Removed,
}

/// What the supervisor must do after a child ended. Indices are positions in start order (stable: removed children keep their slot with status Removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to restart (a transient child ended normally, a temporary child ended, or the child was already being stopped).
    Ignore,
    /// Stop these running children, in this order (reverse start order), then start these, in this order (start order).
    Restart { stop: Vec<usize>, start: Vec<usize> },
    /// Restart intensity exceeded: stop these running children (reverse start order), then the supervisor itself exits with ExitReason::Crashed("reached max restart intensity ...") and its parent decides.
    Escalate { stop: Vec<usize> },
}

#[derive(Debug, Clone, Copy)]
struct Child {
    kind: Restart,
    status: ChildStatus,
    /// Listed in a stop list and not yet reported stopped: its exit was asked for, so it
    /// must not be taken for a failure.
    stopping: bool,
}

/// The live state of one supervisor: its children in start order, its strategy and its restart history.
///
/// Child indices out of range are a bug in the caller and panic, like slice indexing.
#[derive(Debug, Clone)]
pub struct Supervisor {
    strategy: Strategy,
    intensity: Intensity,
    children: Vec<Child>,
    /// Times of recorded restarts, oldest first; pruned to the window on each new restart.
    restarts: Vec<Instant>,
    /// The fault whose first exit was last recorded (see "Faults").
    last_fault: Option<FaultId>,
}

/// Identifies one event that may end several children at once (a worker process dying).
pub type FaultId = u64;

impl Supervisor {
    /// All children start as Running (the governor calls `new` after starting them all).
    pub fn new(strategy: Strategy, intensity: Intensity, restarts: Vec<Restart>) -> Self {
        let children =
            restarts.into_iter().map(|kind| Child { kind, status: ChildStatus::Running, stopping: false }).collect();
        Supervisor { strategy, intensity, children, restarts: Vec::new(), last_fault: None }
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    pub fn intensity(&self) -> Intensity {
        self.intensity
    }

    pub fn status(&self, child: usize) -> ChildStatus {
        self.children[child].status
    }

    pub fn restart_kind(&self, child: usize) -> Restart {
        self.children[child].kind
    }

    /// Number of slots, removed ones included.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// Restarts counted inside the current window (for crash reports: "restart 2 of 3 in 5 s").
    pub fn restarts_in_window(&self, now: Instant) -> u32 {
        let window = self.intensity.max_seconds;
        let count = self.restarts.iter().filter(|&&t| within(window, t, now)).count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// A child ended with `reason` at `now`. Marks it Stopped or Removed and returns what to do.
    pub fn child_exited(&mut self, child: usize, reason: &ExitReason, now: Instant) -> Decision {
        self.child_exited_in_fault(child, reason, now, None)
    }

    /// Like [`Supervisor::child_exited`], for an exit caused by `fault`: the first exit of a
    /// fault counts toward intensity, later ones of the same fault do not.
    pub fn child_exited_in_fault(
        &mut self,
        child: usize,
        reason: &ExitReason,
        now: Instant,
        fault: Option<FaultId>,
    ) -> Decision {
        let was = self.children[child];
        self.mark_ended(child);
        if was.status != ChildStatus::Running || was.stopping || !was.kind.restarts_after(reason) {
            return Decision::Ignore;
        }
        let counted = fault.is_none() || fault != self.last_fault;
        if fault.is_some() {
            self.last_fault = fault;
        }
        if counted && !self.add_restart(now) {
            let stop = self.stop_running_from(0);
            return Decision::Escalate { stop };
        }
        match self.strategy {
            Strategy::OneForOne => Decision::Restart { stop: Vec::new(), start: vec![child] },
            Strategy::OneForAll => self.restart_from(0),
            Strategy::RestForOne => self.restart_from(child),
        }
    }

    /// The governor finished stopping a child listed in a Decision's `stop` (it did not exit by itself): mark it Stopped, or Removed if Temporary. No decision follows.
    pub fn child_stopped(&mut self, child: usize) {
        self.mark_ended(child);
    }

    /// The governor (re)started a child listed in a Decision's `start`.
    ///
    /// A removed slot stays removed: start lists never name one.
    pub fn child_started(&mut self, child: usize) {
        let slot = &mut self.children[child];
        if slot.status != ChildStatus::Removed {
            slot.status = ChildStatus::Running;
            slot.stopping = false;
        }
    }

    /// Order in which to stop every running child when the supervisor itself shuts down: reverse start order.
    pub fn shutdown_order(&self) -> Vec<usize> {
        self.running_from(0)
    }

    /// Like [`Supervisor::shutdown_order`], and also marks those children as being stopped,
    /// so that one exiting by itself meanwhile is not restarted ([`Decision::Ignore`]).
    pub fn begin_shutdown(&mut self) -> Vec<usize> {
        self.stop_running_from(0)
    }

    /// True when no child is Running and none will be restarted: a supervisor whose children all ended normally is done (the governor ends a root tree then).
    ///
    /// Between a [`Decision::Restart`] and the governor's `child_started` calls the
    /// restarted children are not running yet; the governor does not ask then.
    pub fn finished(&self) -> bool {
        self.running_from(0).is_empty()
    }

    /// Running children from `first` on, in reverse start order.
    fn running_from(&self, first: usize) -> Vec<usize> {
        let running = |&i: &usize| self.children[i].status == ChildStatus::Running;
        (first..self.children.len()).rev().filter(running).collect()
    }

    fn mark_ended(&mut self, child: usize) {
        let slot = &mut self.children[child];
        slot.stopping = false;
        slot.status = match slot.kind {
            Restart::Temporary => ChildStatus::Removed,
            Restart::Permanent | Restart::Transient => ChildStatus::Stopped,
        };
    }

    /// OTP's add_restart: records a restart at `now`; false when the intensity is exceeded.
    fn add_restart(&mut self, now: Instant) -> bool {
        let Intensity { max_restarts, max_seconds } = self.intensity;
        self.restarts.retain(|&t| within(max_seconds, t, now));
        self.restarts.push(now);
        self.restarts.len() <= max_restarts as usize
    }

    /// Running children from `first` on, in reverse start order, now marked as being stopped.
    fn stop_running_from(&mut self, first: usize) -> Vec<usize> {
        let stop = self.running_from(first);
        for &i in &stop {
            self.children[i].stopping = true;
        }
        stop
    }

    /// one_for_all (from 0) and rest_for_one (from the failed child).
    fn restart_from(&mut self, first: usize) -> Decision {
        let stop = self.stop_running_from(first);
        let start = (first..self.children.len())
            .filter(|&i| {
                let c = self.children[i];
                c.kind != Restart::Temporary && c.status != ChildStatus::Removed
            })
            .collect();
        Decision::Restart { stop, start }
    }
}

/// A restart at `then` still counts at `now` (OTP's inPeriod: one exactly `window` old counts).
fn within(window: Duration, then: Instant, now: Instant) -> bool {
    now.saturating_duration_since(then) <= window
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop, prop_assert, prop_assert_eq, proptest};
    use ChildStatus::{Removed, Running, Stopped};
    use Decision::Ignore;
    use ExitReason::Normal;
    use Restart::{Permanent, Temporary, Transient};
    use Strategy::{OneForAll, OneForOne, RestForOne};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn crash() -> ExitReason {
        ExitReason::Crashed("ValueError: boom".into())
    }

    fn killed() -> ExitReason {
        ExitReason::Killed("SIGSEGV".into())
    }

    fn sup(strategy: Strategy, kinds: &[Restart]) -> Supervisor {
        Supervisor::new(strategy, Intensity::default(), kinds.to_vec())
    }

    fn restart(stop: &[usize], start: &[usize]) -> Decision {
        let (stop, start) = (stop.to_vec(), start.to_vec());
        Decision::Restart { stop, start }
    }

    fn escalate(stop: &[usize]) -> Decision {
        let stop = stop.to_vec();
        Decision::Escalate { stop }
    }

    fn statuses(sup: &Supervisor) -> Vec<ChildStatus> {
        (0..sup.len()).map(|i| sup.status(i)).collect()
    }

    fn apply(sup: &mut Supervisor, decision: &Decision) {
        match decision {
            Ignore => {}
            Decision::Restart { stop, start } => {
                stop.iter().for_each(|&i| sup.child_stopped(i));
                start.iter().for_each(|&i| sup.child_started(i));
            }
            Decision::Escalate { stop } => stop.iter().for_each(|&i| sup.child_stopped(i)),
        }
    }

    /// Written out from the restart-kind rules (columns: Normal, Shutdown, Crashed, Killed).
    const RESTARTED: [(Restart, [bool; 4]); 3] = [
        (Permanent, [true, true, true, true]),
        (Transient, [false, false, true, true]),
        (Temporary, [false, false, false, false]),
    ];

    /// Written out from the strategy rules, for the middle of three running children failing.
    fn middle_restarted(strategy: Strategy) -> Decision {
        match strategy {
            OneForOne => restart(&[], &[1]),
            OneForAll => restart(&[2, 0], &[0, 1, 2]),
            RestForOne => restart(&[2], &[1, 2]),
        }
    }

    #[test]
    fn matrix_strategy_kind_reason() {
        let reasons = [Normal, ExitReason::Shutdown, crash(), killed()];
        let now = Instant::now();
        let mut cases = 0;
        for strategy in Strategy::ALL {
            let redo = middle_restarted(strategy);
            for (kind, restarted) in RESTARTED {
                for (reason, restarted) in reasons.iter().zip(restarted) {
                    let mut sup = sup(strategy, &[Permanent, kind, Permanent]);
                    let expected = if restarted { redo.clone() } else { Ignore };
                    let case = format!("{strategy} {kind} {reason}");
                    assert_eq!(sup.child_exited(1, reason, now), expected, "{case}");
                    let ended = if kind == Temporary { Removed } else { Stopped };
                    assert_eq!(sup.status(1), ended, "{case}");
                    assert_eq!(sup.restarts_in_window(now), u32::from(restarted));
                    cases += 1;
                }
            }
        }
        assert_eq!(cases, 36);
    }

    /// [permanent, permanent, temporary, transient] with the transient already ended normally.
    fn four_children(strategy: Strategy, now: Instant) -> Supervisor {
        let mut sup = sup(strategy, &[Permanent, Permanent, Temporary, Transient]);
        assert_eq!(sup.child_exited(3, &Normal, now), Ignore);
        sup
    }

    #[test]
    fn one_for_all_stops_in_reverse_and_starts_in_order() {
        let now = Instant::now();
        let mut sup = four_children(OneForAll, now);
        let decision = sup.child_exited(1, &crash(), now);
        assert_eq!(decision, restart(&[2, 0], &[0, 1, 3]));
        apply(&mut sup, &decision);
        assert_eq!(statuses(&sup), [Running, Running, Removed, Running]);
    }

    #[test]
    fn rest_for_one_leaves_earlier_children_alone() {
        let now = Instant::now();
        let mut sup = four_children(RestForOne, now);
        let decision = sup.child_exited(1, &crash(), now);
        assert_eq!(decision, restart(&[2], &[1, 3]));
        apply(&mut sup, &decision);
        assert_eq!(statuses(&sup), [Running, Running, Removed, Running]);
        let decision = sup.child_exited(0, &killed(), now);
        assert_eq!(decision, restart(&[3, 1], &[0, 1, 3]));
    }

    #[test]
    fn fourth_restart_in_window_escalates() {
        let t0 = Instant::now();
        let mut sup = sup(OneForOne, &[Permanent, Transient, Permanent]);
        for at in [0, 1000, 2000] {
            let decision = sup.child_exited(0, &crash(), t0 + ms(at));
            assert_eq!(decision, restart(&[], &[0]));
            sup.child_started(0);
        }
        // Ignored exits are not restarts.
        assert_eq!(sup.child_exited(1, &Normal, t0 + ms(2000)), Ignore);
        assert_eq!(sup.restarts_in_window(t0 + ms(2000)), 3);
        assert_eq!(sup.restarts_in_window(t0 + ms(5000)), 3);
        assert_eq!(sup.restarts_in_window(t0 + ms(5500)), 2);
        assert_eq!(sup.restarts_in_window(t0 + ms(100_000)), 0);
        let decision = sup.child_exited(0, &crash(), t0 + ms(3000));
        assert_eq!(decision, escalate(&[2]));
    }

    #[test]
    fn restarts_spread_past_the_window_never_escalate() {
        let t0 = Instant::now();
        let mut sup = sup(OneForAll, &[Permanent; 2]);
        for k in 0..30 {
            let decision = sup.child_exited(k % 2, &crash(), t0 + ms(2000 * k as u64));
            assert!(matches!(decision, Decision::Restart { .. }), "{k}");
            apply(&mut sup, &decision);
        }
    }

    #[test]
    fn restart_exactly_max_seconds_old_still_counts() {
        let t0 = Instant::now();
        let window = Duration::from_secs(DEFAULT_MAX_SECONDS);
        let fourth = |at: Instant| {
            let mut sup = sup(OneForOne, &[Permanent]);
            for earlier in [t0, t0 + ms(1000), t0 + ms(2000)] {
                assert_eq!(sup.child_exited(0, &crash(), earlier), restart(&[], &[0]));
                sup.child_started(0);
            }
            sup.child_exited(0, &crash(), at)
        };
        assert_eq!(fourth(t0 + window), escalate(&[]));
        let just_after = t0 + window + Duration::from_nanos(1);
        assert_eq!(fourth(just_after), restart(&[], &[0]));
    }

    #[test]
    fn zero_max_restarts_escalates_on_the_first() {
        let now = Instant::now();
        let zero = Intensity::new(0, ms(5000));
        let mut sup = Supervisor::new(RestForOne, zero, vec![Transient, Permanent]);
        assert_eq!(sup.child_exited(1, &killed(), now), escalate(&[0]));
        let mut sup = Supervisor::new(RestForOne, zero, vec![Transient, Permanent]);
        assert_eq!(sup.child_exited(0, &Normal, now), Ignore);
        assert_eq!(sup.child_exited(1, &crash(), now), escalate(&[]));
    }

    #[test]
    fn exit_of_a_child_not_running_or_being_stopped_is_ignored() {
        let now = Instant::now();
        let mut sup = sup(OneForAll, &[Permanent, Permanent, Temporary]);
        let decision = sup.child_exited(0, &crash(), now);
        assert_eq!(decision, restart(&[2, 1], &[0, 1]));
        // Children being stopped die on their own before the governor reports them stopped.
        assert_eq!(sup.child_exited(2, &crash(), now), Ignore);
        assert_eq!(sup.child_exited(1, &crash(), now), Ignore);
        // A duplicate notice for a child that already ended.
        assert_eq!(sup.child_exited(0, &crash(), now), Ignore);
        assert_eq!(statuses(&sup), [Stopped, Stopped, Removed]);
        assert_eq!(sup.restarts_in_window(now), 1);
    }

    #[test]
    fn finished_when_all_children_ended_normally() {
        let now = Instant::now();
        let mut sup = sup(OneForAll, &[Transient, Temporary, Transient]);
        assert!(!sup.finished());
        assert_eq!(sup.child_exited(2, &Normal, now), Ignore);
        assert_eq!(sup.child_exited(1, &crash(), now), Ignore);
        assert!(!sup.finished());
        assert_eq!(sup.child_exited(0, &ExitReason::Shutdown, now), Ignore);
        assert!(sup.finished());
        assert!(Supervisor::new(OneForOne, Intensity::default(), vec![]).finished());
    }

    #[test]
    fn removed_slots_stay_removed() {
        let now = Instant::now();
        let mut sup = sup(OneForAll, &[Temporary, Permanent]);
        assert_eq!(sup.child_exited(0, &crash(), now), Ignore);
        let decision = sup.child_exited(1, &crash(), now);
        assert_eq!(decision, restart(&[], &[1]));
        apply(&mut sup, &decision);
        sup.child_started(0);
        sup.child_stopped(0);
        assert_eq!(sup.child_exited(0, &Normal, now), Ignore);
        assert_eq!(statuses(&sup), [Removed, Running]);
        assert_eq!((sup.len(), sup.restart_kind(0)), (2, Temporary));
    }

    #[test]
    fn child_stopped_removes_temporary_and_stops_others() {
        let mut sup = sup(OneForOne, &[Temporary, Transient, Permanent]);
        (0..3).for_each(|i| sup.child_stopped(i));
        assert_eq!(statuses(&sup), [Removed, Stopped, Stopped]);
    }

    #[test]
    fn shutdown_is_reverse_start_order_of_running_children() {
        let now = Instant::now();
        let mut sup = sup(OneForOne, &[Permanent, Transient, Permanent, Temporary]);
        sup.child_exited(1, &Normal, now);
        assert_eq!(sup.shutdown_order(), [3, 2, 0]);
        assert_eq!(sup.begin_shutdown(), [3, 2, 0]);
        // A child that dies while the supervisor shuts down is not restarted.
        assert_eq!(sup.child_exited(2, &crash(), now), Ignore);
        assert_eq!(sup.restarts_in_window(now), 0);
    }

    #[test]
    fn defaults() {
        let five = Duration::from_secs(5);
        assert_eq!(Intensity::default(), Intensity::new(3, five));
        assert_eq!(Shutdown::default(), Shutdown::Timeout(five));
        assert_eq!(Strategy::default(), OneForOne);
        assert_eq!(Restart::default(), Permanent);
        let sup = Supervisor::new(RestForOne, Intensity::new(1, ms(10)), vec![Transient]);
        assert_eq!(sup.strategy(), RestForOne);
        assert_eq!(sup.intensity(), Intensity::new(1, ms(10)));
        assert!(!sup.is_empty());
    }

    #[test]
    fn spellings_round_trip() {
        let strategies = ["one_for_one", "one_for_all", "rest_for_one"];
        for (strategy, text) in Strategy::ALL.into_iter().zip(strategies) {
            assert_eq!(strategy.to_string(), text);
            assert_eq!(text.parse(), Ok(strategy));
        }
        let kinds = ["permanent", "transient", "temporary"];
        for (kind, text) in Restart::ALL.into_iter().zip(kinds) {
            assert_eq!(kind.to_string(), text);
            assert_eq!(text.parse(), Ok(kind));
        }
    }

    #[test]
    fn bad_spelling_names_the_value_and_the_valid_ones() {
        let err = "one_for_some".parse::<Strategy>().unwrap_err();
        let valid = r#"["one_for_one", "one_for_all", "rest_for_one"]"#;
        let expected = format!(r#"unknown strategy "one_for_some"; expected one of {valid}"#);
        assert_eq!(err.to_string(), expected);
        let err = "Permanent".parse::<Restart>().unwrap_err();
        let valid = r#"["permanent", "transient", "temporary"]"#;
        let expected = format!(r#"unknown restart "Permanent"; expected one of {valid}"#);
        assert_eq!(err.to_string(), expected);
    }

    #[test]
    fn reasons_display_and_escalation_reason() {
        assert!(ExitReason::Shutdown.is_normal() && !crash().is_normal());
        assert_eq!(crash().to_string(), "crashed: ValueError: boom");
        assert_eq!(killed().to_string(), "killed: SIGSEGV");
        let why = "reached max restart intensity: more than 3 restarts within 5s";
        let reason = Intensity::default().escalation_reason();
        assert_eq!(reason, ExitReason::Crashed(why.into()));
    }

    proptest! {
        #[test]
        fn decisions_keep_invariants(
            strategy in prop::sample::select(Strategy::ALL.to_vec()),
            max_restarts in 0u32..4,
            window_ms in 0u64..5000,
            kinds in prop::collection::vec(prop::sample::select(Restart::ALL.to_vec()), 1..7),
            exits in prop::collection::vec((0usize..7, 0usize..4, 0u64..3000), 1..40),
        ) {
            let n = kinds.len();
            let window = ms(window_ms);
            let intensity = Intensity::new(max_restarts, window);
            let mut sup = Supervisor::new(strategy, intensity, kinds.clone());
            let reasons = [Normal, ExitReason::Shutdown, crash(), killed()];
            let mut now = Instant::now();
            // Independent model of the restart history and of temporaries that ended.
            let mut restarted_at: Vec<Instant> = Vec::new();
            let mut temporary_ended = vec![false; n];
            for (child, reason, advance) in exits {
                let (child, reason) = (child % n, &reasons[reason]);
                now += ms(advance);
                let before = statuses(&sup);
                let decision = sup.child_exited(child, reason, now);
                temporary_ended[child] |= kinds[child] == Temporary;

                let abnormal = matches!(reason, ExitReason::Crashed(_) | ExitReason::Killed(_));
                let wanted = before[child] == Running
                    && match kinds[child] {
                        Permanent => true,
                        Transient => abnormal,
                        Temporary => false,
                    };
                if wanted {
                    restarted_at.retain(|&t| now.duration_since(t) <= window);
                    restarted_at.push(now);
                }
                let exceeded = restarted_at.len() > max_restarts as usize;
                let running_reversed: Vec<usize> =
                    (0..n).rev().filter(|&i| i != child && before[i] == Running).collect();

                match &decision {
                    Ignore => prop_assert!(!wanted),
                    Decision::Restart { stop, start } => {
                        prop_assert!(wanted && !exceeded);
                        let in_window = sup.restarts_in_window(now);
                        prop_assert!(in_window <= max_restarts);
                        prop_assert_eq!(in_window as usize, restarted_at.len());
                        prop_assert!(stop.iter().all(|i| running_reversed.contains(i)));
                        prop_assert!(stop.windows(2).all(|w| w[0] > w[1]));
                        prop_assert!(start.windows(2).all(|w| w[0] < w[1]));
                        prop_assert!(start.contains(&child));
                        let startable = |&i: &usize| kinds[i] != Temporary && sup.status(i) != Removed;
                        prop_assert!(start.iter().all(startable));
                        for &i in stop {
                            temporary_ended[i] |= kinds[i] == Temporary;
                        }
                    }
                    Decision::Escalate { stop } => {
                        prop_assert!(wanted && exceeded);
                        prop_assert_eq!(stop, &running_reversed);
                    }
                }
                apply(&mut sup, &decision);
                for i in (0..n).filter(|&i| temporary_ended[i]) {
                    prop_assert_eq!(sup.status(i), Removed);
                }
                if matches!(decision, Decision::Escalate { .. }) {
                    prop_assert!(sup.finished());
                    break;
                }
            }
        }
    }

    #[test]
    fn exits_of_one_fault_count_once_toward_intensity() {
        // Four actors of one supervisor die with their worker: one fault, one restart counted.
        let t0 = Instant::now();
        let mut s = sup(OneForOne, &[Permanent; 4]);
        for child in 0..4 {
            let d = s.child_exited_in_fault(child, &killed(), t0, Some(7));
            assert_eq!(d, restart(&[], &[child]));
            apply(&mut s, &d);
        }
        assert_eq!(s.restarts_in_window(t0), 1);
        // Distinct faults are counted one by one: 3 allowed, the 4th fault escalates.
        for (n, fault) in [8, 9].into_iter().enumerate() {
            let d = s.child_exited_in_fault(0, &killed(), t0 + ms(1 + n as u64), Some(fault));
            apply(&mut s, &d);
        }
        assert_eq!(s.restarts_in_window(t0 + ms(3)), 3);
        let d = s.child_exited_in_fault(1, &killed(), t0 + ms(4), Some(10));
        assert_eq!(d, escalate(&[3, 2, 0]));
    }

    #[test]
    fn a_fault_under_one_for_all_restarts_everything_once() {
        let t0 = Instant::now();
        let mut s = sup(OneForAll, &[Permanent; 3]);
        let first = s.child_exited_in_fault(1, &killed(), t0, Some(1));
        assert_eq!(first, restart(&[2, 0], &[0, 1, 2]));
        // The siblings the decision is stopping die of the same fault: nothing more to do.
        assert_eq!(s.child_exited_in_fault(0, &killed(), t0, Some(1)), Ignore);
        assert_eq!(s.child_exited_in_fault(2, &killed(), t0, Some(1)), Ignore);
        assert_eq!(s.restarts_in_window(t0), 1);
    }

    #[test]
    fn plain_exits_are_each_counted_even_after_a_fault() {
        let t0 = Instant::now();
        let mut s = sup(OneForOne, &[Permanent; 2]);
        let d = s.child_exited_in_fault(0, &killed(), t0, Some(5));
        apply(&mut s, &d);
        let d = s.child_exited(1, &crash(), t0);
        apply(&mut s, &d);
        assert_eq!(s.restarts_in_window(t0), 2);
    }
}
