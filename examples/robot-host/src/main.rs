//! A robot's control loop in Rust calling a Python policy through rebeam.
//!
//! The rules it shows:
//! - Every tick (100 Hz) the host sends the pose as a `Transform` (NumPy `(4, 4)`, row-major)
//!   and the joint states as an array to the `policy` actor, with a 5 ms deadline.
//! - A missed deadline, a refusal (the system is disarmed) or a crashed policy never stops the
//!   loop: the robot **holds position** for that tick (the joints it commands stay as they were).
//! - One tick (a fifth of the way in) asks the policy to stall past the deadline, so a miss
//!   and its hold are always seen. Halfway through, the policy crashes; its supervisor restarts
//!   it and the loop goes on. The host arms at the start and disarms near the end, after which
//!   the gated policy is refused: disarm stops it.
//!
//! Run it from the repository with `cargo run -p robot-host -- [TICKS [DEADLINE_MS]]` (it uses
//! `.venv`, made by `./bootstrap.sh`, or the virtualenv in `REBEAM_VENV`). The last lines it
//! prints are counts, one `label: n` a line, for its test to read.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rebeam::geometry::{Transform, Vec3};
use rebeam::{Error, Runtime, Spawn, Strategy, Tree};
use serde::{Deserialize, Serialize};

/// The control period (100 Hz).
const PERIOD: Duration = Duration::from_millis(10);
/// How long one policy call may take before the tick holds position.
const DEADLINE: Duration = Duration::from_millis(5);
/// Ticks run when no count is given (three seconds).
const DEFAULT_TICKS: u32 = 300;
/// Joints of the simulated arm.
const JOINTS: usize = 6;
/// The policy's step towards its target each tick: slow enough that a held tick shows.
const GAIN: f64 = 0.02;
/// How far past the deadline the stalled tick's policy sleeps.
const STALL_PAST_DEADLINE: Duration = Duration::from_millis(20);

#[derive(Serialize)]
struct State<'a> {
    pose: &'a Transform,
    joints: &'a [f64],
    /// Nonzero on the one tick whose policy call must miss its deadline.
    stall_ms: u64,
}

#[derive(Deserialize)]
struct Command {
    joints: Vec<f64>,
    #[allow(dead_code)] // read by Python from the pose, echoed for the curious
    height: f64,
}

#[derive(Default, Debug)]
struct Tally {
    served: u32,
    missed: u32,
    refused: u32,
    down: u32,
    held: u32,
    served_after_crash: u32,
}

fn main() -> Result<(), Error> {
    let ticks: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(DEFAULT_TICKS);
    let deadline = std::env::args().nth(2).and_then(|a| a.parse().ok()).map_or(DEADLINE, Duration::from_millis);
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let venv = std::env::var_os("REBEAM_VENV").map_or_else(|| here.join("../../.venv"), PathBuf::from);
    // The policy's module sits beside this crate's manifest; the workers inherit PYTHONPATH.
    std::env::set_var("PYTHONPATH", &here);

    let runtime = Runtime::builder().venv(venv).workers(1).spares(1).start()?;
    let policy = Spawn::new("robot_policy:Policy").name("policy").kwarg("gain", &GAIN)?;
    runtime.start_tree(Tree::new(Strategy::OneForOne).name("robot").child(policy))?;
    runtime.arm()?;
    println!("{} Hz control loop, deadline {} ms per tick", 1000 / PERIOD.as_millis(), deadline.as_millis());
    println!("armed: {:?}", runtime.safety_status()?);

    let mut joints = vec![1.0; JOINTS];
    let pose = Transform::translation(Vec3 { x: 0.1, y: 0.2, z: 0.8 });
    let mut tally = Tally::default();
    let mut next = Instant::now();
    for tick in 0..ticks {
        if tick == ticks / 2 {
            // The policy crashes; its supervisor restarts it while the loop keeps time.
            let _ = runtime.call::<_, ()>("policy", "fault", &(), DEADLINE);
            println!("tick {tick}: the policy crashed");
        }
        if tick == ticks * 9 / 10 {
            runtime.disarm()?;
            println!("tick {tick}: disarmed: {:?}", runtime.safety_status()?);
        }
        let stall_ms = if tick == ticks / 5 { (deadline + STALL_PAST_DEADLINE).as_millis() as u64 } else { 0 };
        let state = State { pose: &pose, joints: &joints, stall_ms };
        match runtime.call::<_, Command>("policy", "step", &state, deadline) {
            Ok(command) => {
                joints = command.joints;
                tally.served += 1;
                if tick + 1 == ticks / 5 {
                    println!("tick {tick}: commanded {:.3?}", joints);
                }
                if tick > ticks / 2 {
                    tally.served_after_crash += 1;
                }
            }
            // Every failure holds position: the joints stay as they are this tick.
            Err(e) => {
                match e {
                    Error::Timeout { .. } => {
                        tally.missed += 1;
                        println!("tick {tick}: missed the deadline; held position at {:.3?}", joints);
                    }
                    Error::Remote { info, .. } if info.kind == rebeam::ErrorKind::Safety => tally.refused += 1,
                    Error::Remote { .. } => tally.down += 1,
                    other => return Err(other),
                }
                tally.held += 1;
            }
        }
        next += PERIOD;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    println!(
        "{ticks} ticks: {} served, {} missed the deadline, {} refused while disarmed, {} while the policy was down",
        tally.served, tally.missed, tally.refused, tally.down
    );
    println!("missed the deadline: {}", tally.missed);
    println!("held position: {}", tally.held);
    println!("served after the crash: {}", tally.served_after_crash);
    println!("refused while disarmed: {}", tally.refused);
    println!("final joints: {:.3?}", joints);
    Ok(())
}
