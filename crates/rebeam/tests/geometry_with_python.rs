//! Geometry both ways with a real Python actor that uses `rebeam.geometry`: what the Rust types
//! write, Python's checkers accept, and what Python's builders make, the Rust types decode.

mod common;

use std::time::Duration;

use rebeam::geometry::{Quaternion, Transform, Vec3};
use rebeam::messages::{Envelope, Quantity};
use rebeam::{Error, Spawn};
use serde::{Deserialize, Serialize};

const T: Duration = Duration::from_secs(20);

#[derive(Serialize)]
struct Move {
    transform: Transform,
    by: Vec3,
    rotation: Quaternion,
    speed: Quantity,
    frame_id: String,
}

#[derive(Debug, Deserialize)]
struct Moved {
    transform: Transform,
    rotation: Quaternion,
    speed: Quantity,
}

#[test]
fn python_geometry_round_trips_into_the_rust_types() {
    let Some(builder) = common::builder() else { return };
    let runtime = builder.start().expect("the runtime starts");
    runtime.spawn(Spawn::new("host_fixtures:Geometry").name("geometry")).expect("the actor starts");

    let sent = Envelope::now("host", "odom", ());
    let request = Move {
        transform: Transform::translation(Vec3 { x: 1.0, y: 2.0, z: 3.0 }),
        by: Vec3 { x: 0.5, y: 0.0, z: -1.0 },
        rotation: Quaternion { w: 0.5, x: 0.1, y: 0.2, z: 0.3 },
        speed: Quantity::new(0.4, "m/s"),
        frame_id: "odom".into(),
    };
    let back: Envelope<Moved> = runtime.call("geometry", "pose", &request, T).expect("the call answers");
    assert_eq!(back.payload.transform, Transform::translation(Vec3 { x: 1.5, y: 2.0, z: 2.0 }), "row-major both ways");
    assert_eq!(back.payload.rotation, request.rotation, "w, x, y, z both ways");
    assert_eq!(back.payload.speed, Quantity::new(0.8, "m/s"));
    assert_eq!((back.node.as_str(), back.frame_id.as_str()), ("py", "odom"));
    // Python's monotonic clock is the one Envelope::now reads: the reply is stamped after the request.
    assert!(back.monotonic_ns >= sent.monotonic_ns, "{} < {}", back.monotonic_ns, sent.monotonic_ns);
    assert!(back.wall_ns + 60_000_000_000 >= sent.wall_ns);

    // What Python sends in the wrong shape is a decode error naming it.
    let err = runtime.call::<_, Moved>("geometry", "bad_pose", &[1.0, 2.0], T).unwrap_err();
    assert!(matches!(&err, Error::Decode { .. }) && err.to_string().contains("shape [4, 4]"), "{err}");
    // A shape Python's checker refuses is a Python error the host reads (the handler raised:
    // the unsupervised actor ends, so this comes last).
    let wrong = a_move_with_a_bad_last_row();
    let err = runtime.call::<_, Moved>("geometry", "pose", &wrong, T).unwrap_err();
    assert!(matches!(&err, Error::Remote { .. }) && err.to_string().contains("last row"), "{err}");
}

fn a_move_with_a_bad_last_row() -> Move {
    let mut m = Move {
        transform: Transform::default(),
        by: Vec3::default(),
        rotation: Quaternion::default(),
        speed: Quantity::new(1.0, "m/s"),
        frame_id: "odom".into(),
    };
    m.transform.0[3][0] = 1.0;
    m
}
