//! The constants `rebeam._rebeam` exports: defaults, limits and the spellings of the enums
//! that cross the boundary (with the functions that check a spelling). Each is declared once in Rust (rebeam-core or rebeam-proto); the
//! Python package reads them from here for its signatures and checks, and the stub lists them
//! (tests/python/test_stub.py compares the two).

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use rebeam_core::registry::Balance;
use rebeam_core::supervision::{self, Restart, Strategy};
use rebeam_core::{defaults, topics};

use crate::errors::{kind_name, KINDS};

pub fn add(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_function(wrap_pyfunction!(crate::convert::check_strategy, m)?)?;
    m.add_function(wrap_pyfunction!(crate::convert::check_restart, m)?)?;
    m.add_function(wrap_pyfunction!(crate::convert::check_balance, m)?)?;
    m.add("PROTOCOL_VERSION", rebeam_proto::PROTOCOL_VERSION)?;
    m.add("LOCAL_DELIVERY", rebeam_client::LOCAL_DELIVERY)?;
    m.add("DEFAULT_MAX_MESSAGE_BYTES", rebeam_proto::DEFAULT_MAX_MESSAGE_BYTES)?;
    m.add("MAX_QUEUE", topics::MAX_QUEUE)?;
    m.add("MAX_BEHAVIOUR_CODES", rebeam_core::boc::MAX_CODES)?;
    m.add("MAX_THROTTLE", topics::MAX_THROTTLE.as_secs_f64())?;
    m.add("MAX_RESTARTS", supervision::MAX_RESTARTS)?;
    m.add("MAX_RESTART_WINDOW", supervision::MAX_RESTART_WINDOW.as_secs_f64())?;
    m.add("DEFAULT_QUEUE", topics::DEFAULT_QUEUE)?;
    m.add("DEFAULT_CALL_TIMEOUT", defaults::CALL_TIMEOUT.as_secs_f64())?;
    m.add("DEFAULT_PUMP_WARN_MS", millis(defaults::PUMP_WARN))?;
    m.add("DEFAULT_STOP_TIMEOUT", defaults::LIBRARY_STOP_TIMEOUT.as_secs_f64())?;
    m.add("INTERNAL_ERROR_EXIT_STATUS", defaults::INTERNAL_ERROR_EXIT_STATUS)?;
    m.add("DEFAULT_MAX_RESTARTS", supervision::DEFAULT_MAX_RESTARTS)?;
    // Seconds as a float, as the Python API takes them (`Supervisor(max_seconds=...)`).
    m.add("DEFAULT_MAX_SECONDS", supervision::DEFAULT_MAX_SECONDS as f64)?;
    m.add("DEFAULT_SHUTDOWN", supervision::DEFAULT_SHUTDOWN.as_secs_f64())?;
    // A child's restart kind when its spec names none (`GenPy.restart`).
    m.add("DEFAULT_RESTART", Restart::default().as_str())?;
    m.add("ANY_NODE", rebeam_proto::ANY_NODE)?;
    m.add("STRATEGIES", PyTuple::new(py, Strategy::ALL.map(Strategy::as_str))?)?;
    m.add("RESTARTS", PyTuple::new(py, Restart::ALL.map(Restart::as_str))?)?;
    m.add("BALANCES", PyTuple::new(py, Balance::ALL.map(Balance::as_str))?)?;
    m.add("ENV_VARS", PyTuple::new(py, rebeam_proto::env::ALL)?)?;
    m.add("ERROR_KINDS", PyTuple::new(py, KINDS.map(kind_name))?)?;
    Ok(())
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
