//! The defaults of rebeam's public API that no machine of this crate owns, each declared once.
//!
//! The rules: a default lives beside the logic it tunes when there is one (restart intensity
//! and the polite-stop budget in [`crate::supervision`], the subscription queue in
//! [`crate::topics`]); the rest live here. Python reads every one of them through the native
//! module (`rebeam._rebeam.DEFAULT_*`), so a default changed here changes the Python
//! signatures and docstrings that show it, and no other copy exists to fall out of step.

use std::time::Duration;

/// How long `call` waits for an answer when the caller gives no timeout.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Under `rebeam main.py`, main-side behaviours waiting this long without a `pump()` get a
/// warning, unless the program set its own watchdog (`rebeam.boc.set_pump_watchdog`).
pub const PUMP_WARN: Duration = Duration::from_secs(2);

/// How long `rebeam.stop()` (library mode) waits for the governor to exit before killing it:
/// the governor's own shutdown budget for its children, plus room to reap them.
pub const LIBRARY_STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The exit status of a rebeam process that hit an internal error: a governor that panicked,
/// a forked child that could not exec, a worker whose governor died before it started
/// (EX_SOFTWARE from sysexits.h, so a shell script can tell it from the program's own status).
pub const INTERNAL_ERROR_EXIT_STATUS: i32 = 70;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stop_timeout_outlasts_a_childs_polite_stop() {
        // Otherwise `rebeam.stop()` would kill a governor that is still stopping children
        // within their default budget.
        assert!(LIBRARY_STOP_TIMEOUT > crate::supervision::DEFAULT_SHUTDOWN);
    }

    #[test]
    fn the_internal_error_status_is_not_a_signal_status() {
        // 128 + n is what a shell reports for a death by signal n.
        assert!((1..128).contains(&INTERNAL_ERROR_EXIT_STATUS));
    }
}
