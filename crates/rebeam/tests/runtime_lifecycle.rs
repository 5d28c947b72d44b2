//! A runtime starts a real governor and workers, and dropping it leaves nothing behind.

mod common;

use std::process::Command;

#[test]
fn dropping_the_runtime_ends_the_governor_and_every_worker() {
    let Some(builder) = common::builder() else { return };
    let shm_before = common::shm_names();
    let runtime = builder.start().expect("the runtime starts");
    assert_eq!(runtime.workers(), 1);
    assert_eq!(runtime.safety(), rebeam::Safety::Disarmed);
    let governor = runtime.governor_pid();
    // One worker, then a spare once the worker is ready (the pool starts spares last).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut run = common::descendants(governor);
    while run.len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        run = common::descendants(governor);
    }
    assert!(run.len() >= 2, "expected a worker and a spare under the governor, found {run:?}");
    assert!(runtime.control_socket().exists());
    let control = runtime.control_socket().to_path_buf();
    drop(runtime);
    assert!(!common::alive(governor), "the governor {governor} outlived its runtime");
    // SIGKILLed workers take a moment to be torn down: allow that, never an orphan that stays.
    let left = common::still_alive(&run, std::time::Duration::from_secs(5));
    assert!(left.is_empty(), "processes of the run outlived it: {left:?}");
    assert!(!control.exists(), "the control socket {} was left behind", control.display());
    let ours =
        |name: &String| std::iter::once(governor).chain(run.iter().copied()).any(|p| name.contains(&p.to_string()));
    let new_shm: Vec<String> = common::shm_names().into_iter().filter(|n| !shm_before.contains(n) && ours(n)).collect();
    assert!(new_shm.is_empty(), "the run left /dev/shm entries: {new_shm:?}");
}

#[test]
fn a_missing_governor_command_is_an_error_that_names_it() {
    let err = rebeam::Runtime::builder().governor("/nonexistent/rebeam").start().err().expect("no runtime");
    let text = err.to_string();
    assert!(text.contains("/nonexistent/rebeam"), "{text}");
}

#[test]
fn a_governor_that_refuses_its_arguments_is_reported_with_its_status() {
    let Some(venv) = common::venv() else { return };
    // `false` exits at once without writing the ready line: the start must fail, not hang.
    let err = rebeam::Runtime::builder().venv(venv).governor("/bin/false").start().err().expect("no runtime");
    let text = err.to_string();
    assert!(text.contains("ended before it was listening"), "{text}");
    assert!(text.contains("exit status: 1"), "{text}");
}

#[test]
fn the_host_graph_has_no_python_in_it() {
    let out = Command::new(env!("CARGO"))
        .args(["tree", "-p", "rebeam", "-e", "normal,build", "--prefix", "none"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.contains("rebeam-client"), "an unexpected tree:\n{tree}");
    let python: Vec<&str> = tree.lines().filter(|l| l.starts_with("pyo3") || l.contains("rebeam-py ")).collect();
    assert!(python.is_empty(), "the host links Python through: {python:?}");
}
