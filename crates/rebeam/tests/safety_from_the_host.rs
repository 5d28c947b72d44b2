//! The host arms and disarms its run; the governor broadcasts each state to the processes.

mod common;

use std::time::{Duration, Instant};

use rebeam::Safety;

/// The broadcast reaches this process after the control answer: wait for it, boundedly.
fn broadcast(runtime: &rebeam::Runtime, want: Safety) -> Safety {
    let deadline = Instant::now() + Duration::from_secs(5);
    while runtime.safety() != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    runtime.safety()
}

#[test]
fn the_host_arms_disarms_and_reads_the_state() {
    let Some(builder) = common::builder() else { return };
    let runtime = builder.start().expect("the runtime starts");
    assert_eq!(runtime.safety_status().unwrap(), Safety::Disarmed);
    let armed = runtime.arm().expect("the host may arm");
    assert_eq!(armed.last().map(|t| t.to), Some(Safety::Armed), "{armed:?}");
    assert_eq!(runtime.safety_status().unwrap(), Safety::Armed);
    assert_eq!(broadcast(&runtime, Safety::Armed), Safety::Armed);
    // Nothing gated is running, so the disarm completes at once.
    let disarmed = runtime.disarm().expect("the host may disarm");
    assert_eq!(disarmed.last().map(|t| t.to), Some(Safety::Disarmed), "{disarmed:?}");
    assert_eq!(broadcast(&runtime, Safety::Disarmed), Safety::Disarmed);
    runtime.force_disarm().expect("force-disarm from disarmed is allowed");
    assert_eq!(runtime.safety_status().unwrap(), Safety::Disarmed);
}

#[test]
fn a_process_the_host_starts_may_not_arm() {
    let Some(builder) = common::builder() else { return };
    let runtime = builder.start().expect("the runtime starts");
    let rebeam_cmd = common::venv().unwrap().join("bin/rebeam");
    let out = std::process::Command::new(rebeam_cmd)
        .args(["ctl", "--socket"])
        .arg(runtime.control_socket())
        .arg("arm")
        .output()
        .expect("rebeam ctl runs");
    assert!(!out.status.success(), "a child of the host armed the run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("descends from"), "{err}");
    assert_eq!(runtime.safety_status().unwrap(), Safety::Disarmed);
}

#[test]
fn every_transition_comes_on_the_stream_in_order() {
    let Some(builder) = common::builder() else { return };
    let runtime = builder.start().expect("the runtime starts");
    let mut transitions = runtime.safety_transitions().expect("subscribed");
    runtime.arm().unwrap();
    runtime.disarm().unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.last().map(|t: &rebeam::SafetyTransition| t.to) != Some(Safety::Disarmed) && Instant::now() < deadline {
        match transitions.try_recv() {
            Some(t) => seen.push(t),
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    let steps: Vec<(Safety, Safety)> = seen.iter().map(|t| (t.from, t.to)).collect();
    assert_eq!(steps.first(), Some(&(Safety::Disarmed, Safety::Armed)), "{seen:?}");
    assert_eq!(steps.last().map(|s| s.1), Some(Safety::Disarmed), "{seen:?}");
    assert!(steps.windows(2).all(|w| w[0].1 == w[1].0), "each starts where the last ended: {seen:?}");
    assert!(seen.iter().all(|t| !t.reason.is_empty()), "{seen:?}");
    drop(runtime);
    assert_eq!(transitions.recv(), None, "the stream ends with the run");
}
