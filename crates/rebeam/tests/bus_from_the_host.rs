//! The host publishes, reserved prefixes included; Python subscribers get neutral values.

mod common;

use std::time::{Duration, Instant};

use rebeam::geometry::Vec3;
use rebeam::Spawn;
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
