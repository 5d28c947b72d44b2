//! The host benchmark's rows: a Rust host calling a Python actor through rebeam, next to the
//! same Python function called in-process through PyO3 (one interpreter, one GIL: the
//! embedding the robotics seed planned); a control loop's deadline misses; crash → serving
//! again and disarm → policy stopped, as the host sees them.
//!
//! `host-bench <workload> [key=value ...]`, run by benches/bench.py with `PYTHONPATH` naming
//! benches/workloads and `REBEAM_VENV` the virtualenv whose `rebeam` runs the governor.
//! Workloads: `call` (both call rows), `loop` (misses at 100 Hz and 1 kHz), `crash`, `disarm`.
//! Each prints one `BENCH_JSON {...}` line.
//!
//! The Python → Python peer is rebeam_bench.py's `call` row of the same run.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use rebeam::{Error, Runtime, Spawn, Strategy, Tree};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Joints in each step's state (as the robot-host example and host_policy.py).
const JOINTS: usize = 6;
/// A call that is not about its own latency (setup, the crash, the disarm) may take this long.
const SLOW: Duration = Duration::from_secs(20);
/// Within a crash measurement, how long each probe call may take.
const PROBE: Duration = Duration::from_millis(50);

#[derive(Serialize)]
struct State<'a> {
    joints: &'a [f64],
}

#[derive(Deserialize)]
struct Step {
    joints: Vec<f64>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let workload = args.first().cloned().unwrap_or_else(|| "call".into());
    let sizes: HashMap<String, u64> = args
        .iter()
        .skip(1)
        .filter_map(|a| a.split_once('='))
        .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
        .collect();
    let size = |key: &str, default: u64| sizes.get(key).copied().unwrap_or(default);
    let out = match workload.as_str() {
        "call" => call_rows(size("host_call_n", 20_000) as usize, size("host_call_warm", 2_000) as usize)?,
        "loop" => loop_rows(size("host_ticks", 10_000) as u32)?,
        "crash" => crash_row(size("host_crash_reps", 10) as usize)?,
        "disarm" => disarm_row(size("host_disarm_reps", 10) as usize)?,
        other => return Err(format!("unknown workload {other:?} (call, loop, crash, disarm)").into()),
    };
    println!("BENCH_JSON {}", json!({ "workload": format!("host_{workload}"), "result": out }));
    Ok(())
}

fn runtime() -> Result<Runtime, Error> {
    let venv = std::env::var_os("REBEAM_VENV").map_or_else(|| PathBuf::from(".venv"), PathBuf::from);
    let runtime = Runtime::builder().venv(venv).workers(1).spares(1).start()?;
    runtime.start_tree(
        Tree::new(Strategy::OneForOne)
            .intensity(1000, Duration::from_secs(1))
            .child(Spawn::new("host_policy:Policy").name("policy")),
    )?;
    Ok(runtime)
}

/// p50, p99 and max of `ns`, in µs.
fn summary(mut ns: Vec<u64>) -> serde_json::Value {
    ns.sort_unstable();
    let at = |p: f64| ns[((ns.len() as f64 * p) as usize).min(ns.len() - 1)] as f64 / 1000.0;
    json!({ "n": ns.len(), "p50_us": at(0.50), "p99_us": at(0.99), "max_us": at(1.0) })
}

fn call_rows(n: usize, warm: usize) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let joints = vec![1.0; JOINTS];
    let runtime = runtime()?;
    let mut host = Vec::with_capacity(n);
    for i in 0..warm + n {
        let t = Instant::now();
        let step: Step = runtime.call("policy", "step", &State { joints: &joints }, SLOW)?;
        if i >= warm {
            host.push(t.elapsed().as_nanos() as u64);
        }
        assert_eq!(step.joints.len(), JOINTS);
    }
    // Where the host's time goes, part one: a request the governor answers itself (a publish
    // nobody hears), i.e. the host ↔ governor hop without a worker or Python.
    let mut governor = Vec::with_capacity(n);
    for i in 0..warm + n {
        let t = Instant::now();
        runtime.publish("bench.nobody", &0)?;
        if i >= warm {
            governor.push(t.elapsed().as_nanos() as u64);
        }
    }
    drop(runtime);

    // The same function in this process: the arguments built from Rust values and the result
    // read back into them, as an embedding must, under the GIL.
    let in_process = Python::attach(|py| -> PyResult<Vec<u64>> {
        let step = py.import("host_step")?.getattr("step")?;
        let mut ns = Vec::with_capacity(n);
        for i in 0..warm + n {
            let t = Instant::now();
            let state = PyDict::new(py);
            state.set_item("joints", PyList::new(py, &joints)?)?;
            let out: Vec<f64> = step.call1((state,))?.get_item("joints")?.extract()?;
            if i >= warm {
                ns.push(t.elapsed().as_nanos() as u64);
            }
            assert_eq!(out.len(), JOINTS);
        }
        Ok(ns)
    })?;
    Ok(json!({ "host": summary(host), "pyo3": summary(in_process), "governor_only": summary(governor) }))
}

/// Deadline misses of a control loop calling the policy every tick, per 10,000 ticks, at
/// 100 Hz (5 ms deadline) and 1 kHz (0.5 ms deadline): half the period, as the example.
fn loop_rows(ticks: u32) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let runtime = runtime()?;
    let mut rows = serde_json::Map::new();
    for (label, period) in [("100hz", Duration::from_millis(10)), ("1khz", Duration::from_micros(1000))] {
        let deadline = period / 2;
        let mut joints = vec![1.0; JOINTS];
        let (mut missed, mut late) = (0u32, Vec::new());
        let mut next = Instant::now();
        for _ in 0..ticks {
            let t = Instant::now();
            match runtime.call::<_, Step>("policy", "step", &State { joints: &joints }, deadline) {
                Ok(step) => joints = step.joints,
                Err(Error::Timeout { .. }) => missed += 1,
                Err(e) => return Err(e.into()),
            }
            late.push(t.elapsed().as_nanos() as u64);
            next += period;
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        let per_10k = f64::from(missed) * 10_000.0 / f64::from(ticks);
        rows.insert(
            label.into(),
            json!({ "ticks": ticks, "missed": missed, "missed_per_10k": per_10k,
                                          "deadline_us": deadline.as_micros() as u64, "call": summary(late) }),
        );
    }
    Ok(serde_json::Value::Object(rows))
}

/// From the crashing call's return to the first call answered again, as the host sees it.
fn crash_row(reps: usize) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let joints = vec![1.0; JOINTS];
    let runtime = runtime()?;
    let mut ms = Vec::new();
    for _ in 0..reps {
        let _: Step = runtime.call("policy", "step", &State { joints: &joints }, SLOW)?;
        let crashed = runtime.call::<_, ()>("policy", "fault", &(), SLOW);
        assert!(crashed.is_err(), "the fault handler raises");
        let t = Instant::now();
        while runtime.call::<_, Step>("policy", "step", &State { joints: &joints }, PROBE).is_err() {
            assert!(t.elapsed() < SLOW, "the policy never served again");
        }
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    Ok(json!({ "reps": reps, "median_ms": ms[ms.len() / 2], "max_ms": ms[ms.len() - 1] }))
}

/// From `disarm()` to the running gated policy stopped (its call answered, cancelled), and to
/// the next gated step refused.
fn disarm_row(reps: usize) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let joints = vec![1.0; JOINTS];
    let runtime = std::sync::Arc::new(runtime()?);
    let (mut stopped, mut refused) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        runtime.arm()?;
        let _: Step = runtime.call("policy", "gated_step", &State { joints: &joints }, SLOW)?;
        let spinning = {
            let runtime = runtime.clone();
            std::thread::spawn(move || {
                let answer = runtime.call::<_, String>("policy", "spin", &10.0, SLOW);
                (Instant::now(), answer)
            })
        };
        std::thread::sleep(Duration::from_millis(50)); // the spin is running
        let t = Instant::now();
        runtime.disarm()?;
        let refusal = runtime.call::<_, Step>("policy", "gated_step", &State { joints: &joints }, SLOW);
        refused.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(refusal.is_err(), "a gated step after the disarm is refused");
        let (ended, answer) = spinning.join().expect("the spinning call's thread");
        assert!(answer.map_or(true, |a| a == "cancelled"), "the spin stopped on the disarm");
        stopped.push(ended.saturating_duration_since(t).as_secs_f64() * 1000.0);
        while runtime.safety() != rebeam::Safety::Disarmed {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok(json!({ "reps": reps, "stopped_median_ms": med(stopped), "refused_median_ms": med(refused) }))
}
