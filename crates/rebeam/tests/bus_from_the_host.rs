//! The host publishes, reserved prefixes included, and Python subscribers get neutral values;
//! the host subscribes with patterns and reads Python's publications, stamped on arrival.

mod common;

use std::time::{Duration, Instant};

use rebeam::geometry::Vec3;
use rebeam::messages::Envelope;
use rebeam::{Error, Spawn, Value};
use serde::Deserialize;

const T: Duration = Duration::from_secs(20);

#[derive(Debug, Deserialize, PartialEq)]
struct Heard(String, Vec3);

#[test]
fn the_host_publishes_on_a_reserved_topic_and_python_hears_it() {
    let Some(builder) = common::builder() else { return };
    let runtime = builder.start().expect("the runtime starts");
    runtime.spawn(Spawn::new("host_fixtures:Listener").name("ears")).unwrap();
    let goal = Vec3 { x: 1.0, y: 2.0, z: 3.0 };
    // `actuator.` is reserved: Python may not publish there, the host may.
    runtime.publish("actuator.arm.goal", &goal).expect("the host owns reserved topics");
    let deadline = Instant::now() + T;
    let heard = loop {
        let heard: Vec<Heard> = runtime.call("ears", "heard", &(), T).unwrap();
        if !heard.is_empty() || Instant::now() >= deadline {
            break heard;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(heard, [Heard("actuator.arm.goal".into(), goal)]);
    let err = runtime.publish("bad..topic", &1).unwrap_err();
    assert!(err.to_string().contains("bad..topic"), "{err}");
}

#[test]
fn the_host_subscribes_with_a_pattern_and_reads_pythons_publications() {
    let Some(builder) = common::builder() else { return };
    let runtime = builder.start().expect("the runtime starts");
    runtime.spawn(Spawn::new("host_fixtures:Talker").name("talker")).unwrap();
    let mut sensors = runtime.subscribe("sensor.**").expect("the host subscribes");
    let mut other = runtime.subscribe("other.*").expect("a second subscription");
    let (before, _) = now();
    let said: u32 = runtime
        .call(
            "talker",
            "say",
            &[
                ("sensor.range", Value::Float(0.5)),
                ("sensor.joint.1", Value::Str("envelope".into())),
                ("elsewhere", Value::Int(1)),
                ("sensor.raw", Value::Str("tuple".into())),
            ],
            T,
        )
        .unwrap();
    assert_eq!(said, 4);
    runtime.publish("sensor.host", &7).unwrap();

    let range = sensors.recv().expect("a publication");
    assert_eq!((range.topic.as_str(), range.value::<f64>().unwrap()), ("sensor.range", 0.5));
    let (after, _) = now();
    assert!(before <= range.monotonic_ns && range.monotonic_ns <= after, "stamped on arrival");
    assert!(range.wall_ns > 1_600_000_000_000_000_000);

    let joint = sensors.recv().expect("a publication");
    let e: Envelope<Vec3> = joint.value().expect("Python's envelope decodes");
    assert_eq!((e.payload, e.node.as_str(), e.frame_id.as_str()), (Vec3 { x: 1.0, y: 2.0, z: 3.0 }, "talker", "base"));
    assert!(before <= e.monotonic_ns && e.monotonic_ns <= joint.monotonic_ns, "the publisher's time, then arrival");

    // A tuple has no exact neutral form: it went as a pickle, and the error says so by topic.
    let raw = sensors.recv().expect("a publication");
    let err = raw.value::<Value>().unwrap_err();
    assert!(matches!(&err, Error::Decode { .. }), "{err}");
    assert!(err.to_string().contains("\"sensor.raw\"") && err.to_string().contains("pickle"), "{err}");

    let own = sensors.recv().expect("the host's own publication");
    assert_eq!((own.topic.as_str(), own.value::<i64>().unwrap()), ("sensor.host", 7));
    assert!(sensors.try_recv().is_none() && other.try_recv().is_none(), "only what matches");

    let err = runtime.subscribe("bad..pattern").err().expect("a bad pattern is refused");
    assert!(err.to_string().contains("bad..pattern"), "{err}");
    drop(sensors);
    drop(runtime);
    assert!(other.recv().is_none(), "the stream ends with the run");
}

fn now() -> (u64, u64) {
    let e = Envelope::now("t", "t", ());
    (e.monotonic_ns, e.wall_ns)
}
