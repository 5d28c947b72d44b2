//! The robot-host example, run end to end; and the proof that a host binary has no Python in it.

use std::path::PathBuf;
use std::process::Command;

/// The suite's virtualenv (made by `./bootstrap.sh`), if it has the `rebeam` command.
fn venv() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv");
    if dir.join("bin/python").is_file() && dir.join("bin/rebeam").is_file() {
        return Some(dir);
    }
    eprintln!("skipped: no rebeam-capable Python at {} (run ./bootstrap.sh to make one)", dir.display());
    None
}

/// The example's output, after checking that it succeeded.
fn run(args: &[&str], venv: PathBuf) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_robot-host")).args(args).env("REBEAM_VENV", venv).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    text
}

fn count(text: &str, label: &str) -> u32 {
    let prefix = format!("{label}: ");
    let line = text.lines().find_map(|l| l.strip_prefix(prefix.as_str()));
    line.and_then(|n| n.trim().parse().ok()).unwrap_or_else(|| panic!("no {label:?} line in:\n{text}"))
}

#[test]
fn the_robot_example_survives_a_crash_arms_and_disarms() {
    let Some(venv) = venv() else { return };
    // A generous deadline: this is about behaviour, not timing (the benchmarks measure misses).
    // The example makes one tick miss it on purpose, whatever the deadline.
    let text = run(&["150", "2000"], venv);
    assert!(text.contains("100 Hz control loop, deadline 2000 ms per tick"), "{text}");
    assert!(text.contains("armed: Armed"), "{text}");
    assert!(text.contains("the policy crashed"), "{text}");
    assert!(text.contains("disarmed: Disarmed"), "{text}");
    assert!(count(&text, "served after the crash") > 0, "the policy never served again after its crash:\n{text}");
    assert!(count(&text, "refused while disarmed") > 0, "disarming did not stop the policy:\n{text}");

    // The stalled tick missed its deadline and held the joints the tick before commanded.
    assert!(count(&text, "missed the deadline") >= 1, "{text}");
    assert!(count(&text, "held position") >= count(&text, "missed the deadline"), "{text}");
    let after = |marker: &str| {
        let line = text.lines().find(|l| l.contains(marker)).unwrap_or_else(|| panic!("no {marker:?} in:\n{text}"));
        line.rsplit_once(marker).map(|(_, v)| v.trim().to_owned()).unwrap()
    };
    let commanded = after("commanded ");
    assert!(commanded.starts_with('[') && commanded.matches(',').count() == 5, "six joints: {commanded}");
    assert_eq!(after("missed the deadline; held position at "), commanded, "a miss holds position:\n{text}");
}

#[test]
fn the_host_binary_does_not_link_libpython() {
    let out = Command::new("ldd").arg(env!("CARGO_BIN_EXE_robot-host")).output().expect("ldd runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let libs = String::from_utf8_lossy(&out.stdout);
    assert!(libs.contains("libc.so"), "an unexpected ldd answer:\n{libs}");
    assert!(!libs.to_lowercase().contains("libpython"), "the host links Python:\n{libs}");
}
