use super::*;

const GRACE: Duration = Duration::from_millis(200);
const MAIN: u32 = 0;

fn caller(proc: u32, req: u64) -> Option<Caller<u32>> {
    Some(Caller { proc, req, deadline: None })
}

/// Actor 10 runs on worker 1, actor 20 on worker 2; the main process is not killable.
fn place(actor: ActorId) -> Option<u32> {
    match actor {
        10 => Some(1),
        20 => Some(2),
        _ => None,
    }
}

fn runner(proc: u32) -> Option<Runner> {
    let describe = if proc == MAIN { "main process (pid 100)".to_owned() } else { format!("worker {proc}") };
    (proc <= 2).then_some(Runner { killable: proc != MAIN, describe })
}

fn armed(calls: &mut InFlight<u32>, now: Instant) -> Gate<u32> {
    let mut gate = Gate::new(false, GRACE);
    let effects = gate.command(SafetyCommand::Arm, calls, now).unwrap();
    assert!(matches!(&effects[..], [Effect::Announce { since_first, .. }] if since_first.is_zero()));
    gate
}

fn states(effects: &[Effect<u32>]) -> Vec<(SafetyState, SafetyState)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Announce { transition, .. } => Some((transition.from, transition.to)),
            _ => None,
        })
        .collect()
}

#[test]
fn gated_work_is_refused_unless_armed_and_the_refusal_says_how_to_arm() {
    let (mut calls, now) = (InFlight::default(), Instant::now());
    let mut gate: Gate<u32> = Gate::new(false, GRACE);
    let refused = gate.check(Work::Message { target: "'arm'", subject: "move" }).unwrap_err();
    let expected = "'arm' 'move' requires the system to be armed (safety state: disarmed); \
                    the host arms it with `rebeam ctl arm`";
    assert_eq!(refused.to_string(), expected);
    let behaviour = gate.check(Work::Behaviour).unwrap_err();
    let what = "a @requires_armed behaviour".to_owned();
    assert_eq!(behaviour, GateError::NotArmed { what, state: SafetyState::Disarmed });
    gate.command(SafetyCommand::Arm, &mut calls, now).unwrap();
    assert_eq!(gate.check(Work::Behaviour), Ok(()));
    // Which work is gated: marked work, or everything but a main-side acquire under require-armed.
    assert!(!gate.gates(false) && gate.gates(true));
    assert!(!gate.gates_behaviour(false, false) && gate.gates_behaviour(true, true));
    let strict: Gate<u32> = Gate::new(true, GRACE);
    assert!(strict.gates(false) && strict.gates_behaviour(false, false));
    assert!(!strict.gates_behaviour(false, true));
}

#[test]
fn a_handler_is_marked_by_its_subject_or_through_a_marked_catch_all() {
    let (subjects, handled) = (vec!["move".to_owned()], vec!["move".to_owned(), "status".to_owned()]);
    assert!(marks(&subjects, false, &handled, "move"));
    assert!(!marks(&subjects, false, &handled, "status"));
    assert!(!marks(&subjects, false, &handled, "other"), "an unmarked catch-all");
    assert!(marks(&subjects, true, &handled, "other"), "a marked catch-all takes what has no handler");
    assert!(!marks(&subjects, true, &handled, "status"), "a handler of its own is not the catch-all");
}

#[test]
fn a_disarm_with_nothing_in_flight_is_done_at_once() {
    let (mut calls, t0) = (InFlight::default(), Instant::now());
    let mut gate = armed(&mut calls, t0);
    let effects = gate.command(SafetyCommand::Disarm, &mut calls, t0 + GRACE).unwrap();
    use SafetyState::{Armed, Disarmed, Disarming};
    assert_eq!(states(&effects), vec![(Armed, Disarming), (Disarming, Disarmed)]);
    assert!(effects.iter().all(|e| matches!(e, Effect::Announce { since_first, .. } if *since_first == GRACE)));
    // Refusals come from the state machine, and change nothing.
    let mut calls = InFlight::default();
    calls.deliver(1, 10, None, true);
    let mut gate = armed(&mut calls, t0);
    gate.command(SafetyCommand::Disarm, &mut calls, t0).unwrap();
    assert_eq!(gate.command(SafetyCommand::Arm, &mut calls, t0), Err(SafetyRefusal::ArmWhileDisarming));
    assert_eq!(gate.state(), Disarming);
}

#[test]
fn the_ladder_fails_callers_cancels_work_and_starts_one_grace_timer() {
    let (mut calls, now) = (InFlight::default(), Instant::now());
    let mut gate = armed(&mut calls, now);
    calls.deliver(1, 10, caller(MAIN, 7), true);
    calls.deliver(2, 20, None, true); // a gated cast: nobody to fail
    calls.deliver(3, 20, caller(MAIN, 8), false); // not gated: untouched
    gate.behaviour_started(50, 2);
    let effects = gate.command(SafetyCommand::Disarm, &mut calls, now).unwrap();
    let expected = [
        Effect::FailCaller { caller: caller(MAIN, 7).unwrap(), actor: 10 },
        Effect::CancelDelivery { actor: 10, delivery: 1 },
        Effect::CancelDelivery { actor: 20, delivery: 2 },
        Effect::CancelBehaviour { proc: 2, behaviour: 50 },
        Effect::GraceTimer { disarm: 1, after: GRACE },
    ];
    assert_eq!(states(&effects), vec![(SafetyState::Armed, SafetyState::Disarming)]);
    assert_eq!(effects[1..], expected);
    assert_eq!(calls.get(3).and_then(|d| d.caller), caller(MAIN, 8));
    let interrupted = GateError::Interrupted { actor: "'arm'".into() }.to_string();
    assert_eq!(interrupted, "interrupted: the system was disarmed while actor 'arm' ran gated work");
    // Work ending one piece at a time: disarmed once the last piece is gone.
    calls.reply(1);
    assert!(gate.work_ended(&mut calls, now).is_empty());
    calls.actor_ended(20, None);
    assert!(gate.work_ended(&mut calls, now).is_empty(), "the behaviour still runs");
    assert!(gate.behaviour_ended(99, &mut calls, now).is_empty(), "not a gated behaviour");
    let done = gate.behaviour_ended(50, &mut calls, now);
    assert_eq!(states(&done), vec![(SafetyState::Disarming, SafetyState::Disarmed)]);
}

#[test]
fn after_the_grace_each_worker_still_running_cancelled_work_is_killed_once() {
    let (mut calls, now) = (InFlight::default(), Instant::now());
    let mut gate = armed(&mut calls, now);
    calls.deliver(1, 10, None, true);
    calls.deliver(2, 20, None, true);
    gate.behaviour_started(50, 2);
    gate.behaviour_started(51, 1);
    gate.command(SafetyCommand::Disarm, &mut calls, now).unwrap();
    calls.reply(2);
    let effects = gate.grace_over(1, &mut calls, place, runner, now + GRACE);
    assert_eq!(effects, vec![Effect::Kill { proc: 1 }, Effect::Kill { proc: 2 }]);
    // A disarm's grace concerns its own work only.
    assert!(gate.grace_over(2, &mut calls, place, runner, now + GRACE).is_empty());
    // A gone process is not killed; a killed worker not confirmed dead puts the state in error.
    let gone = gate.grace_over(1, &mut calls, place, |_| None, now + GRACE);
    assert!(gone.is_empty());
    let failed = gate.stop_failed("worker 1 was not reaped".into(), &mut calls, now + GRACE);
    assert_eq!(states(&failed), vec![(SafetyState::Disarming, SafetyState::Error)]);
    assert!(gate.command(SafetyCommand::Arm, &mut calls, now).is_err());
}

#[test]
fn the_main_process_is_never_killed_its_work_puts_the_state_in_error() {
    let (mut calls, now) = (InFlight::default(), Instant::now());
    let mut gate = armed(&mut calls, now);
    gate.behaviour_started(50, MAIN);
    gate.behaviour_started(51, 1);
    gate.command(SafetyCommand::Disarm, &mut calls, now).unwrap();
    let effects = gate.grace_over(1, &mut calls, place, runner, now + GRACE);
    let Effect::CannotStop { why } = &effects[0] else { panic!("{effects:?}") };
    assert!(why.starts_with("gated work in the main process (pid 100) did not stop within 200ms"), "{why}");
    assert!(why.ends_with("then run `rebeam ctl force-disarm`"), "{why}");
    assert_eq!(states(&effects[1..2]), vec![(SafetyState::Disarming, SafetyState::Error)]);
    assert_eq!(effects[2..], [Effect::Kill { proc: 1 }]);
    assert!(gate.check(Work::Behaviour).unwrap_err().to_string().contains("safety state: error"));
}

#[test]
fn each_disarm_cancels_only_new_work_and_has_its_own_timer() {
    let (mut calls, now) = (InFlight::default(), Instant::now());
    let mut gate = armed(&mut calls, now);
    gate.behaviour_started(50, 1);
    gate.command(SafetyCommand::ForceDisarm, &mut calls, now).unwrap();
    // Forced: disarmed at once, though the behaviour was only told to cancel.
    assert_eq!(gate.state(), SafetyState::Disarmed);
    gate.command(SafetyCommand::Arm, &mut calls, now).unwrap();
    calls.deliver(1, 20, caller(MAIN, 3), true);
    let second = gate.command(SafetyCommand::Disarm, &mut calls, now).unwrap();
    let cancels: Vec<_> = second.iter().filter(|e| !matches!(e, Effect::Announce { .. })).cloned().collect();
    let expected = vec![
        Effect::FailCaller { caller: caller(MAIN, 3).unwrap(), actor: 20 },
        Effect::CancelDelivery { actor: 20, delivery: 1 },
        Effect::GraceTimer { disarm: 2, after: GRACE },
    ];
    assert_eq!(cancels, expected, "behaviour 50 was cancelled by the first disarm");
    let tracked: Vec<_> = gate.behaviours().map(|(b, g)| (b, g.cancelled)).collect();
    assert_eq!(tracked, vec![(50, Some(1))]);
    assert_eq!(gate.grace_over(1, &mut calls, place, runner, now), vec![Effect::Kill { proc: 1 }]);
    assert_eq!(gate.grace_over(2, &mut calls, place, runner, now), vec![Effect::Kill { proc: 2 }]);
}
