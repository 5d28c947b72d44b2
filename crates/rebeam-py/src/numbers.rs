//! Numbers from Python, checked where they enter: a timeout or a bound that Rust cannot hold
//! (`inf`, `nan`, a negative) is the caller's mistake, so it becomes a `ValueError` naming the
//! argument here, before anything is sent, not a panic in Rust or a surprise in the governor.

use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::PyResult;

/// A timeout in seconds: finite and ≥ 0. One too long for a `Duration` is as good as forever.
pub fn timeout(what: impl std::fmt::Display, secs: f64) -> PyResult<Duration> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(PyValueError::new_err(format!(
            "{what}: timeout={secs} is not a finite number of seconds ≥ 0; pass one (or None to wait without a limit, where allowed)"
        )));
    }
    Ok(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

/// The same timeout in whole milliseconds, as the protocol carries it.
pub fn timeout_ms(what: &str, secs: f64) -> PyResult<u64> {
    timeout(what, secs).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_is_finite_and_not_negative() {
        for bad in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN, -0.5] {
            assert!(timeout_ms("call()", bad).is_err(), "{bad} was accepted");
        }
        assert_eq!(timeout_ms("call()", 1.5).ok(), Some(1500));
        assert_eq!(timeout_ms("call()", 0.0).ok(), Some(0));
        assert_eq!(timeout("call()", 1e300).ok(), Some(Duration::MAX));
        assert_eq!(timeout_ms("call()", 1e300).ok(), Some(u64::MAX));
    }
}
