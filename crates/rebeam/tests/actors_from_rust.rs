//! Real Python actors, spawned and called from Rust with typed values.

mod common;

use std::time::Duration;

use rebeam::geometry::{Quaternion, Transform, Vec3};
use rebeam::messages::{Envelope, Quantity};
use rebeam::{Error, NdArray, Restart, Spawn, Strategy, Tree, Value};
use serde::{Deserialize, Serialize};

const T: Duration = Duration::from_secs(20);

#[derive(Serialize)]
struct State {
    pose: NdArray,
    joints: Vec<f64>,
}

#[derive(Debug, Deserialize)]
struct Scaled {
    pose: [[f64; 2]; 2],
    n: u32,
    label: String,
}

#[derive(Debug, Deserialize)]
struct WrongShape {
    #[allow(dead_code)]
    n: String,
}

#[test]
fn typed_values_cross_to_python_and_back() {
    let Some(builder) = common::builder() else { return };
    let runtime = builder.start().expect("the runtime starts");
    let spec = Spawn::new("host_fixtures:Echo").name("echo").kwarg("gain", &2.0).unwrap().arg(&2.0).unwrap();
    // Both a positional and a keyword `gain`: Python refuses, and the host hears why.
    let err = runtime.spawn(spec).unwrap_err();
    assert!(matches!(&err, Error::StartFailed { .. }) && err.to_string().contains("gain"), "{err}");

    let spec = Spawn::new("host_fixtures:Echo").name("echo").kwarg("gain", &2.0).unwrap().kwarg("label", "e").unwrap();
    let actor = runtime.spawn(spec).expect("the actor starts");
    assert_eq!(actor.name.as_deref(), Some("echo"));

    let state = State { pose: NdArray::from_f64(vec![2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap(), joints: vec![0.5; 3] };
    let out: Scaled = runtime.call("echo", "scale", &state, T).expect("the call answers");
    assert_eq!(out.pose, [[2.0, 4.0], [6.0, 8.0]]);
    assert_eq!((out.n, out.label.as_str()), (3, "e"));

    // What Python sees: a dict of NumPy arrays, lists, and plain values.
    let kinds: std::collections::BTreeMap<String, String> =
        runtime.call(&actor, "types", &serde_json_like(), T).expect("types answers");
    let want = [
        ("a", "ndarray"),
        ("b", "bytes"),
        ("f", "float"),
        ("i", "int"),
        ("l", "list"),
        ("m", "dict"),
        ("n", "NoneType"),
        ("s", "str"),
        ("t", "bool"),
    ];
    assert_eq!(kinds, want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());

    let echoed = runtime.call_value("echo", "echo", serde_json_like(), T).expect("echo answers");
    assert_eq!(echoed, serde_json_like(), "every kind comes back as it went");

    // Geometry crosses as NumPy arrays and comes back as itself.
    let t = Transform::translation(Vec3 { x: 1.0, y: 2.0, z: 3.0 });
    let q = Quaternion { w: 0.5, x: 0.5, y: 0.5, z: 0.5 };
    let back: (Transform, Quaternion, Vec3) = runtime.call("echo", "echo", &(t, q, Vec3::default()), T).unwrap();
    assert_eq!(back, (t, q, Vec3::default()));
    let stamped = Envelope::now("host", "base_link", (t, Quantity::new(0.5, "m/s")));
    let echoed: Envelope<(Transform, Quantity)> = runtime.call("echo", "echo", &stamped, T).unwrap();
    assert_eq!(echoed, stamped, "an envelope is a dict Python hands back as it came");

    let err = runtime.call::<_, WrongShape>("echo", "scale", &state, T).unwrap_err();
    let Error::Decode { path, why } = &err else { panic!("{err}") };
    assert_eq!(path, "$.n");
    assert!(why.contains("integer `3`"), "{why}");
}

/// One value of every kind.
fn serde_json_like() -> Value {
    Value::Map(vec![
        ("a".into(), Value::Array(rebeam::value::Array::from_f64(vec![3], &[1.0, 2.0, 3.0]).unwrap())),
        ("b".into(), Value::Bytes(vec![0u8, 1, 2].into())),
        ("f".into(), Value::Float(0.25)),
        ("i".into(), Value::Int(-5)),
        ("l".into(), Value::List(vec![Value::Int(1), Value::Str("x".into())])),
        ("m".into(), Value::Map(vec![("k".into(), Value::Bool(false))])),
        ("n".into(), Value::None),
        ("s".into(), Value::Str("héllo".into())),
        ("t".into(), Value::Bool(true)),
    ])
}

#[test]
fn failures_in_python_are_typed_errors() {
    let Some(builder) = common::builder() else { return };
    let runtime = builder.start().expect("the runtime starts");
    runtime.spawn(Spawn::new("host_fixtures:Echo").name("e").restart(Restart::Permanent)).unwrap();
    let err = runtime.call::<_, Value>("e", "refuse", &(), T).unwrap_err();
    assert!(matches!(&err, Error::ErrorReply { value: Value::Map(_), .. }), "{err}");
    let err = runtime.call::<_, Value>("e", "sleep", &2.0, Duration::from_millis(200)).unwrap_err();
    assert!(matches!(&err, Error::Timeout { .. }), "{err}");
    let err = runtime.call::<_, Value>("nobody", "echo", &(), T).unwrap_err();
    assert!(matches!(&err, Error::Remote { info, .. } if info.kind == rebeam::ErrorKind::NoProcess), "{err}");
    assert!(runtime.cast("e", "echo", &1).unwrap());
    assert!(!runtime.cast("nobody", "echo", &1).unwrap_or(false));
    // Last: a reply that cannot be encoded counts as a crash, and this actor has no supervisor.
    let err = runtime.call::<_, Value>("e", "opaque", &(), T).unwrap_err();
    assert!(err.to_string().contains("cannot send object at $ to the Rust host"), "{err}");
}

#[test]
fn a_crashed_actor_is_restarted_by_its_tree_and_serves_again() {
    let Some(builder) = common::builder() else { return };
    let runtime = builder.start().expect("the runtime starts");
    let tree = Tree::new(Strategy::OneForOne).name("root").child(Spawn::new("host_fixtures:Echo").name("p"));
    runtime.start_tree(tree).expect("the tree starts");
    let first: u32 = runtime.call("p", "pid", &(), T).unwrap();
    let err = runtime.call::<_, Value>("p", "fail", &"now", T).unwrap_err();
    let Error::Remote { info, .. } = &err else { panic!("{err}") };
    assert_eq!(info.exc_type.as_deref(), Some("ValueError"));
    assert!(info.traceback.as_deref().unwrap_or("").contains("host_fixtures.py"), "{info:?}");
    // Restarted in place after a raise; then the worker itself dies, and the supervisor
    // restarts the actor in a spare.
    assert_eq!(serving_pid(&runtime), first, "a raise costs the actor, not its worker");
    let err = runtime.call::<_, Value>("p", "die", &(), T).unwrap_err();
    assert!(matches!(&err, Error::Remote { info, .. } if info.kind == rebeam::ErrorKind::ActorDown), "{err}");
    let second = serving_pid(&runtime);
    assert_ne!(first, second, "the actor runs in another worker now");
}

/// The pid of the worker running "p", once it serves (after a restart it may take a moment).
fn serving_pid(runtime: &rebeam::Runtime) -> u32 {
    let deadline = std::time::Instant::now() + T;
    loop {
        match runtime.call::<_, u32>("p", "pid", &(), T) {
            Ok(pid) => return pid,
            Err(_) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("the actor never served again: {e}"),
        }
    }
}

#[test]
fn async_calls_run_on_tokio_without_blocking_it() {
    let Some(builder) = common::builder() else { return };
    let runtime = builder.start().expect("the runtime starts");
    runtime.spawn(Spawn::new("host_fixtures:Echo").name("a")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let list = vec![1, 2];
        let (x, y) = tokio::join!(
            runtime.call_async::<_, Vec<i64>>("a", "echo", &list, T),
            runtime.call_async::<_, String>("a", "echo", "two", T),
        );
        assert_eq!(x.unwrap(), vec![1, 2]);
        assert_eq!(y.unwrap(), "two");
        assert!(runtime.cast_async("a", "echo", &()).await.unwrap());
    });
}
