//! Opaque handles with real workers: the object stays in its worker, later calls receive it,
//! the host's drop frees it (its finalizer runs), and a handle used where its object is not
//! (another worker, after its holder's crash or its worker's death) is a clear error.

mod common;

use std::time::{Duration, Instant};

use rebeam::{Error, Handle, Runtime, Spawn, Strategy, Tree, Value};
use serde::{Deserialize, Serialize};

const T: Duration = Duration::from_secs(20);
/// How long a release (a cast) may take to reach the worker, in the polls below.
const SETTLE: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
struct Loaded {
    model: Handle,
    size: u32,
}

#[derive(Serialize)]
struct Infer<'a> {
    model: &'a Handle,
    x: f64,
}

#[derive(Debug, Deserialize)]
struct Inferred {
    y: f64,
    kind: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
struct Counts {
    finalized: u32,
    held: u32,
    pid: u32,
}

fn counts(runtime: &Runtime, actor: &str) -> Counts {
    runtime.call(actor, "counts", &(), T).expect("counts answers")
}

/// Polls `actor`'s counts until `done` holds, or panics after [`SETTLE`]; an actor being
/// restarted (not there for a moment) is waited for too.
fn wait_counts(runtime: &Runtime, actor: &str, done: impl Fn(&Counts) -> bool) -> Counts {
    let deadline = Instant::now() + SETTLE;
    loop {
        let c = runtime.call::<_, Counts>(actor, "counts", &(), T);
        if let Ok(c) = &c {
            if done(c) {
                return c.clone();
            }
        }
        assert!(Instant::now() < deadline, "not settled: {c:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn load(runtime: &Runtime, actor: &str, scale: f64) -> Loaded {
    runtime.call(actor, "load", &serde_map("scale", scale), T).expect("load answers")
}

#[test]
fn later_calls_receive_the_object_and_dropping_the_handle_frees_it() {
    let Some(builder) = common::builder() else { return };
    let runtime = builder.start().expect("the runtime starts");
    runtime.spawn(Spawn::new("host_fixtures:Models").name("models")).unwrap();
    let loaded = load(&runtime, "models", 2.5);
    assert_eq!(loaded.size, 3);
    let before = counts(&runtime, "models");
    assert_eq!((before.held, loaded.model.worker_pid()), (1, before.pid));

    // The object itself, not a copy (a Model holds a lock: it could not have been pickled).
    for x in [1.0, 4.0] {
        let out: Inferred = runtime.call("models", "infer", &Infer { model: &loaded.model, x }, T).unwrap();
        assert_eq!((out.y, out.kind.as_str()), (2.5 * x, "Model"));
    }
    // The async form decodes handles for its runtime too.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let second: Loaded =
        rt.block_on(runtime.call_async("models", "load", &serde_map("scale", 1.0), T)).expect("load answers");
    assert_eq!(counts(&runtime, "models").held, 2);

    drop(loaded);
    let after = wait_counts(&runtime, "models", |c| c.held == 1);
    assert_eq!(after.finalized, before.finalized + 1, "the Python object's finalizer ran");
    // The other handle still works: a release frees only its own object.
    let out: Inferred = runtime.call("models", "infer", &Infer { model: &second.model, x: 3.0 }, T).unwrap();
    assert_eq!(out.y, 3.0);
    drop(second);
    wait_counts(&runtime, "models", |c| c.held == 0 && c.finalized == before.finalized + 2);
}

#[test]
fn a_handle_is_refused_in_another_worker() {
    let Some(builder) = common::builder() else { return };
    let runtime = builder.workers(2).start().expect("the runtime starts");
    // Actors are placed by the governor: spawn until two live in different workers.
    let mut pids = vec![];
    for i in 0..6 {
        let name = format!("m{i}");
        runtime.spawn(Spawn::new("host_fixtures:Models").name(name.clone())).unwrap();
        pids.push((name.clone(), counts(&runtime, &name).pid));
        if pids.iter().any(|(_, p)| *p != pids[0].1) {
            break;
        }
    }
    let (here, there) = (&pids[0].0, &pids.last().unwrap().0);
    assert_ne!(pids[0].1, pids.last().unwrap().1, "two workers: {pids:?}");
    let loaded = load(&runtime, here, 1.0);
    let err = runtime.call::<_, Inferred>(there.as_str(), "infer", &Infer { model: &loaded.model, x: 1.0 }, T);
    let err = err.unwrap_err();
    assert!(matches!(&err, Error::Remote { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("never leave their worker") && text.contains(&pids[0].1.to_string()), "{text}");
    // Another actor of the holder's worker may use it.
    let _ = pids.iter().find(|(n, p)| n != here && *p == pids[0].1).map(|(n, _)| {
        let out: Inferred = runtime.call(n.as_str(), "infer", &Infer { model: &loaded.model, x: 2.0 }, T).unwrap();
        assert_eq!(out.y, 2.0);
    });
}

#[test]
fn the_holders_crash_ends_its_handles_and_their_use_says_so() {
    let Some(builder) = common::builder() else { return };
    let runtime = builder.start().expect("the runtime starts");
    let tree = Tree::new(Strategy::OneForOne).intensity(10, Duration::from_secs(5));
    runtime.start_tree(tree.child(Spawn::new("host_fixtures:Models").name("models"))).unwrap();

    // A Python exception: the actor ends, its worker lives on, and the object goes at once.
    let loaded = load(&runtime, "models", 1.0);
    let before = counts(&runtime, "models");
    assert!(runtime.call::<_, Value>("models", "fail", &(), T).is_err());
    let after = wait_counts(&runtime, "models", |c| c.pid != before.pid || c.finalized > before.finalized);
    assert_eq!(after.pid, before.pid, "one worker: the holder restarts in the same one");
    assert_eq!((after.held, after.finalized), (0, before.finalized + 1), "the crash freed the object");
    let err = runtime.call::<_, Inferred>("models", "infer", &Infer { model: &loaded.model, x: 1.0 }, T).unwrap_err();
    assert!(err.to_string().contains("handle") && err.to_string().contains("new handle"), "{err}");
    drop(loaded); // its holder is gone: the release goes nowhere, and nothing breaks

    // The worker dies: the restarted holder is in another worker, and the handle says so.
    let loaded = load(&runtime, "models", 1.0);
    let dead = counts(&runtime, "models").pid;
    assert!(runtime.call::<_, Value>("models", "die", &(), T).is_err());
    let restarted = wait_counts(&runtime, "models", |c| c.pid != dead);
    let err = runtime.call::<_, Inferred>("models", "infer", &Infer { model: &loaded.model, x: 1.0 }, T).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&format!("worker pid {dead}")) && text.contains("died with it"), "{text}");
    drop(loaded);
    assert_eq!(counts(&runtime, "models").pid, restarted.pid, "the host and the run go on");
}

fn serde_map(key: &'static str, value: f64) -> std::collections::BTreeMap<&'static str, f64> {
    std::iter::once((key, value)).collect()
}
