//! Safety: whether gated work (work that may move actuators) may run.
//!
//! This is the specification of rebeam's safety state machine. The state is owned by the
//! host: only the host commands it ([`SafetyCommand`]); the governor reports what became of
//! the gated work in flight ([`SafetyEvent::Stopped`], [`SafetyEvent::StopFailed`]). This
//! module decides; the governor acts (dispatches, interrupts and kills) and reports back.
//!
//! # States ([`SafetyState`])
//!
//! - `disarmed` (initial): gated work is not dispatched.
//! - `armed`: gated work is dispatched ([`SafetyMachine::allows_gated`] holds only here).
//! - `disarming`: a disarm was asked for while gated work was in flight; the governor is
//!   stopping it (letting it finish, interrupting it, or killing its worker). Nothing new
//!   is dispatched.
//! - `error`: gated work could not be confirmed stopped: a worker that had to die was not
//!   confirmed dead, or work in the main process (which is never killed) outlived the grace.
//!   Only a forced disarm leaves `error`: a plain disarm is refused, and so is arming.
//!
//! # Transitions
//!
//! State × event → result. "no-op" is `Ok` with no transition; "refused" is `Err` with a
//! [`SafetyRefusal`] that says what to do, and the state does not change.
//!
//! | state       | Arm                 | Disarm                         | ForceDisarm | Stopped     | StopFailed(why) |
//! |-------------|---------------------|--------------------------------|-------------|-------------|-----------------|
//! | `disarmed`  | → `armed`           | no-op                          | no-op       | no-op       | → `error`       |
//! | `armed`     | no-op               | → `disarming` (→ `disarmed`)   | → `disarmed`| no-op       | → `error`       |
//! | `disarming` | refused             | no-op                          | → `disarmed`| → `disarmed`| → `error`       |
//! | `error`     | refused             | refused                        | → `disarmed`| no-op       | no-op           |
//!
//! - Arm is idempotent: arming an armed machine changes nothing.
//! - Disarm of an armed machine always passes through `disarming`. If no gated work is in
//!   flight (the governor says so with `in_flight`), it goes on to `disarmed` at once: two
//!   transitions. Otherwise it stays `disarming` until the governor reports `Stopped`.
//!   `in_flight` is consulted in that case only.
//! - ForceDisarm goes straight to `disarmed` from any state; the governor still interrupts
//!   everything that was in flight, but does not wait for it.
//! - `Stopped` outside `disarming` is a late notice and is ignored.
//! - `StopFailed` is an error whatever the state: gated work that cannot be confirmed
//!   stopped may still be driving an actuator. In `error` it changes nothing.
//!
//! Each [`Transition`] carries a short human sentence saying why it happened ("armed by the
//! host", "every gated task stopped", ...), for the log and the host's status display.

use std::fmt;
use std::str::FromStr;

use crate::supervision::SpecError;

/// Reasons written into [`Transition::reason`].
const ARMED_BY_HOST: &str = "armed by the host";
const DISARM_REQUESTED: &str = "disarm requested by the host";
const NOTHING_IN_FLIGHT: &str = "no gated work in flight";
const ALL_STOPPED: &str = "every gated task stopped";
const FORCED_BY_HOST: &str = "forced by the host";
const NOT_CONFIRMED_STOPPED: &str = "gated work could not be confirmed stopped";

/// Where the safety state machine is. Serialized in its lowercase spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SafetyState {
    #[default]
    Disarmed,
    Armed,
    Disarming,
    Error,
}

impl SafetyState {
    pub const ALL: [SafetyState; 4] =
        [SafetyState::Disarmed, SafetyState::Armed, SafetyState::Disarming, SafetyState::Error];

    /// The spelling shown to the host and to Python.
    pub fn as_str(self) -> &'static str {
        match self {
            SafetyState::Disarmed => "disarmed",
            SafetyState::Armed => "armed",
            SafetyState::Disarming => "disarming",
            SafetyState::Error => "error",
        }
    }
}

impl fmt::Display for SafetyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SafetyState {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let all = SafetyState::ALL;
        all.into_iter().find(|state| state.as_str() == s).ok_or_else(|| SpecError {
            what: "safety state",
            value: s.to_owned(),
            valid: all.into_iter().map(SafetyState::as_str).collect(),
        })
    }
}

/// A command of the host (never of Python).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SafetyCommand {
    Arm,
    Disarm,
    ForceDisarm,
}

/// What the machine is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SafetyEvent {
    Command(SafetyCommand),
    /// Every piece of gated work that was in flight at disarm has stopped (finished, interrupted, or its worker confirmed dead).
    Stopped,
    /// Gated work could not be confirmed stopped (its worker was not reaped in time after the
    /// kill, or main-process work, which is never killed, outlived the grace).
    StopFailed(String),
}

/// One change of state, with why it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: SafetyState,
    pub to: SafetyState,
    pub reason: String,
}

/// A command the machine refuses in its current state; the message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SafetyRefusal {
    #[error(
        "cannot arm: the safety state is error (gated work could not be confirmed stopped); \
         run `rebeam ctl force-disarm` first"
    )]
    ArmInError,
    #[error(
        "cannot arm: the safety state is disarming (gated work is still being stopped); \
         wait until it is disarmed, or run `rebeam ctl force-disarm`, then arm again"
    )]
    ArmWhileDisarming,
    #[error(
        "cannot disarm: the safety state is error (gated work could not be confirmed stopped); \
         only `rebeam ctl force-disarm` leaves error"
    )]
    DisarmInError,
}

/// The live safety state of one governor.
#[derive(Debug, Clone, Default)]
pub struct SafetyMachine {
    state: SafetyState,
}

impl SafetyMachine {
    /// A machine in `disarmed`.
    pub fn new() -> Self {
        SafetyMachine::default()
    }

    pub fn state(&self) -> SafetyState {
        self.state
    }

    /// Applies an event. `in_flight` = whether any gated work is running right now (the governor knows).
    ///
    /// Returns the transitions made, in order: none (a no-op), one, or two (a disarm with
    /// nothing in flight). A refusal changes nothing.
    pub fn apply(&mut self, event: SafetyEvent, in_flight: bool) -> Result<Vec<Transition>, SafetyRefusal> {
        use SafetyCommand::{Arm, Disarm, ForceDisarm};
        use SafetyEvent::{Command, StopFailed, Stopped};
        use SafetyState::{Armed, Disarmed, Disarming, Error};
        let steps: Vec<(SafetyState, String)> = match (self.state, event) {
            (Disarmed, Command(Arm)) => vec![(Armed, ARMED_BY_HOST.into())],
            (Armed, Command(Arm)) => vec![],
            (Disarming, Command(Arm)) => return Err(SafetyRefusal::ArmWhileDisarming),
            (Error, Command(Arm)) => return Err(SafetyRefusal::ArmInError),

            (Armed, Command(Disarm)) if in_flight => vec![(Disarming, DISARM_REQUESTED.into())],
            (Armed, Command(Disarm)) => {
                vec![(Disarming, DISARM_REQUESTED.into()), (Disarmed, NOTHING_IN_FLIGHT.into())]
            }
            (Disarmed | Disarming, Command(Disarm)) => vec![],
            (Error, Command(Disarm)) => return Err(SafetyRefusal::DisarmInError),

            (Armed | Disarming | Error, Command(ForceDisarm)) => {
                vec![(Disarmed, FORCED_BY_HOST.into())]
            }
            (Disarmed, Command(ForceDisarm)) => vec![],

            (Disarming, Stopped) => vec![(Disarmed, ALL_STOPPED.into())],
            (Disarmed | Armed | Error, Stopped) => vec![],

            (Disarmed | Armed | Disarming, StopFailed(why)) => {
                vec![(Error, format!("{NOT_CONFIRMED_STOPPED}: {why}"))]
            }
            (Error, StopFailed(_)) => vec![],
        };
        Ok(self.walk(steps))
    }

    /// Whether gated work may be dispatched now (only when Armed).
    pub fn allows_gated(&self) -> bool {
        self.state == SafetyState::Armed
    }

    /// Moves through `steps` in order, recording each as a transition.
    fn walk(&mut self, steps: Vec<(SafetyState, String)>) -> Vec<Transition> {
        steps
            .into_iter()
            .map(|(to, reason)| {
                let from = std::mem::replace(&mut self.state, to);
                Transition { from, to, reason }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SafetyCommand::{Arm, Disarm, ForceDisarm};
    use SafetyRefusal::{ArmInError, ArmWhileDisarming, DisarmInError};
    use SafetyState::{Armed, Disarmed, Disarming, Error};

    const WHY: &str = "kill failed: EPERM";

    fn cmd(command: SafetyCommand) -> SafetyEvent {
        SafetyEvent::Command(command)
    }

    fn failed() -> SafetyEvent {
        SafetyEvent::StopFailed(WHY.into())
    }

    /// A machine driven into `state` through the public API.
    fn machine_in(state: SafetyState) -> SafetyMachine {
        let mut m = SafetyMachine::new();
        let path = match state {
            Disarmed => vec![],
            Armed => vec![cmd(Arm)],
            Disarming => vec![cmd(Arm), cmd(Disarm)],
            Error => vec![failed()],
        };
        for event in path {
            m.apply(event, true).unwrap();
        }
        assert_eq!(m.state(), state);
        m
    }

    type Expected = Result<Vec<(SafetyState, SafetyState, &'static str)>, SafetyRefusal>;

    /// Written out from the module's table: (state, event, in_flight, expected).
    fn table() -> Vec<(SafetyState, SafetyEvent, bool, Expected)> {
        let dead = "gated work could not be confirmed stopped: kill failed: EPERM";
        vec![
            (Disarmed, cmd(Arm), true, Ok(vec![(Disarmed, Armed, "armed by the host")])),
            (Disarmed, cmd(Disarm), true, Ok(vec![])),
            (Disarmed, cmd(ForceDisarm), true, Ok(vec![])),
            (Disarmed, SafetyEvent::Stopped, true, Ok(vec![])),
            (Disarmed, failed(), true, Ok(vec![(Disarmed, Error, dead)])),
            (Armed, cmd(Arm), true, Ok(vec![])),
            (Armed, cmd(Disarm), true, Ok(vec![(Armed, Disarming, "disarm requested by the host")])),
            (
                Armed,
                cmd(Disarm),
                false,
                Ok(vec![
                    (Armed, Disarming, "disarm requested by the host"),
                    (Disarming, Disarmed, "no gated work in flight"),
                ]),
            ),
            (Armed, cmd(ForceDisarm), true, Ok(vec![(Armed, Disarmed, "forced by the host")])),
            (Armed, SafetyEvent::Stopped, true, Ok(vec![])),
            (Armed, failed(), true, Ok(vec![(Armed, Error, dead)])),
            (Disarming, cmd(Arm), true, Err(ArmWhileDisarming)),
            (Disarming, cmd(Disarm), true, Ok(vec![])),
            (Disarming, cmd(ForceDisarm), true, Ok(vec![(Disarming, Disarmed, "forced by the host")])),
            (Disarming, SafetyEvent::Stopped, true, Ok(vec![(Disarming, Disarmed, "every gated task stopped")])),
            (Disarming, failed(), true, Ok(vec![(Disarming, Error, dead)])),
            (Error, cmd(Arm), true, Err(ArmInError)),
            (Error, cmd(Disarm), true, Err(DisarmInError)),
            (Error, cmd(ForceDisarm), true, Ok(vec![(Error, Disarmed, "forced by the host")])),
            (Error, SafetyEvent::Stopped, true, Ok(vec![])),
            (Error, failed(), true, Ok(vec![])),
        ]
    }

    #[test]
    fn every_state_and_event() {
        for (state, event, in_flight, expected) in table() {
            let case = format!("{state} {event:?} in_flight={in_flight}");
            let mut m = machine_in(state);
            let got = m.apply(event, in_flight);
            let expected: Result<Vec<Transition>, SafetyRefusal> = expected.map(|steps| {
                let transition = |(from, to, reason): (_, _, &str)| Transition { from, to, reason: reason.into() };
                steps.into_iter().map(transition).collect()
            });
            assert_eq!(got, expected, "{case}");
            let end = match &got {
                Ok(steps) => steps.last().map_or(state, |t| t.to),
                Err(_) => state,
            };
            assert_eq!(m.state(), end, "{case}");
            if let Ok(steps) = &got {
                let chained = steps.windows(2).all(|w| w[0].to == w[1].from);
                assert!(chained && steps.iter().take(1).all(|t| t.from == state), "{case}");
            }
        }
        assert_eq!(table().len(), 21);
    }

    #[test]
    fn in_flight_matters_only_for_disarming_an_armed_machine() {
        for (state, event, _, _) in table() {
            if (state, &event) == (Armed, &cmd(Disarm)) {
                continue;
            }
            let busy = machine_in(state).apply(event.clone(), true);
            let idle = machine_in(state).apply(event.clone(), false);
            assert_eq!(busy, idle, "{state} {event:?}");
        }
    }

    #[test]
    fn commands_are_idempotent() {
        let mut m = SafetyMachine::new();
        assert_eq!(m.apply(cmd(Arm), false).unwrap().len(), 1);
        assert_eq!(m.apply(cmd(Arm), false), Ok(vec![]));
        assert_eq!(m.apply(cmd(Disarm), true).unwrap().len(), 1);
        assert_eq!(m.apply(cmd(Disarm), false), Ok(vec![]));
        assert_eq!(m.state(), Disarming);
        assert_eq!(m.apply(SafetyEvent::Stopped, false).unwrap().len(), 1);
        assert_eq!(m.apply(SafetyEvent::Stopped, false), Ok(vec![]));
        assert_eq!(m.apply(cmd(ForceDisarm), false), Ok(vec![]));
        assert_eq!(m.apply(failed(), true).unwrap().len(), 1);
        assert_eq!(m.apply(failed(), true), Ok(vec![]));
        assert_eq!(m.state(), Error);
    }

    #[test]
    fn gated_work_is_allowed_only_when_armed() {
        for state in SafetyState::ALL {
            assert_eq!(machine_in(state).allows_gated(), state == Armed, "{state}");
        }
    }

    #[test]
    fn disarm_with_nothing_in_flight_takes_two_steps() {
        let mut m = machine_in(Armed);
        let steps = m.apply(cmd(Disarm), false).unwrap();
        let path: Vec<_> = steps.iter().map(|t| (t.from, t.to)).collect();
        assert_eq!(path, [(Armed, Disarming), (Disarming, Disarmed)]);
        assert_eq!(m.state(), Disarmed);
        assert!(!m.allows_gated());
    }

    #[test]
    fn error_is_left_only_by_force_and_then_arming_works() {
        let mut m = machine_in(Error);
        assert_eq!(m.apply(cmd(Arm), false), Err(ArmInError));
        assert_eq!(m.apply(cmd(Disarm), false), Err(DisarmInError));
        assert_eq!(m.state(), Error);
        m.apply(cmd(ForceDisarm), false).unwrap();
        assert_eq!(m.apply(cmd(Arm), false).unwrap()[0].to, Armed);
    }

    #[test]
    fn refusals_say_which_command_to_run() {
        for refusal in [ArmInError, ArmWhileDisarming, DisarmInError] {
            let message = refusal.to_string();
            assert!(message.contains("`rebeam ctl force-disarm`"), "{message}");
        }
        let expected = "cannot arm: the safety state is error (gated work could not be confirmed \
                        stopped); run `rebeam ctl force-disarm` first";
        assert_eq!(ArmInError.to_string(), expected);
    }

    #[test]
    fn spellings_round_trip() {
        let texts = ["disarmed", "armed", "disarming", "error"];
        for (state, text) in SafetyState::ALL.into_iter().zip(texts) {
            assert_eq!(state.to_string(), text);
            assert_eq!(text.parse(), Ok(state));
        }
        let err = "Armed".parse::<SafetyState>().unwrap_err();
        let valid = r#"["disarmed", "armed", "disarming", "error"]"#;
        let expected = format!(r#"unknown safety state "Armed"; expected one of {valid}"#);
        assert_eq!(err.to_string(), expected);
        assert_eq!(SafetyState::default(), Disarmed);
        assert_eq!(SafetyMachine::new().state(), Disarmed);
    }
}
