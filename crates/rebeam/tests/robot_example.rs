//! The robot_host example, run end to end; and the proof that a host binary has no Python in it.

mod common;

use std::path::PathBuf;
use std::process::Command;

/// The example binary, beside this test's own, built here: a run of this test alone
/// (`--test robot_example`) would otherwise find it missing or stale.
fn example() -> PathBuf {
    let deps = std::env::current_exe().expect("the test's path");
    let path = deps.parent().and_then(|d| d.parent()).expect("target/<profile>").join("examples/robot_host");
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "-p", "rebeam", "--example", "robot_host"]);
    // The same profile as this test, so the binary lands where `path` looks.
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    let built = build.status().expect("cargo runs");
    assert!(built.success(), "cannot build the robot_host example");
    assert!(path.is_file(), "cargo built the example somewhere other than {}", path.display());
    path
}

#[test]
fn the_robot_example_survives_a_crash_arms_and_disarms() {
    let Some(venv) = common::venv() else { return };
    // A generous deadline: this is about behaviour, not timing (the benchmarks measure misses).
    let out = Command::new(example()).args(["150", "2000"]).env("REBEAM_VENV", venv).output().expect("it runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("armed: Armed"), "{text}");
    assert!(text.contains("the policy crashed"), "{text}");
    assert!(text.contains("disarmed: Disarmed"), "{text}");
    let count = |label: &str| -> u32 {
        let prefix = format!("{label}: ");
        let line = text.lines().find_map(|l| l.strip_prefix(prefix.as_str()));
        line.and_then(|n| n.trim().parse().ok()).unwrap_or_else(|| panic!("no {label:?} line in:\n{text}"))
    };
    assert!(count("served after the crash") > 0, "the policy never served again after its crash:\n{text}");
    assert!(count("refused while disarmed") > 0, "disarming did not stop the policy:\n{text}");
}

#[test]
fn the_host_binary_does_not_link_libpython() {
    let out = Command::new("ldd").arg(example()).output().expect("ldd runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let libs = String::from_utf8_lossy(&out.stdout);
    assert!(libs.contains("libc.so"), "an unexpected ldd answer:\n{libs}");
    assert!(!libs.to_lowercase().contains("libpython"), "the host links Python:\n{libs}");
}
