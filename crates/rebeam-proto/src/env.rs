//! Every `REBEAM_*` environment variable the Rust side reads or sets, named once.
//!
//! The governor sets the process group for each Python process it starts; the Python side
//! names the same variables in `python/rebeam/_env.py` (the native module exports [`ALL`] as
//! `_rebeam.ENV_VARS`, and tests/python/test_env.py checks the two lists agree). The rest are
//! read by `rebeam` itself, or by its tests.

// -- set by the governor for the processes it starts ----------------------------------------

/// The governor's process socket (also the key of the line `rebeam serve` writes to its
/// ready pipe).
pub const SOCKET: &str = "REBEAM_SOCKET";
/// The one-time token a process presents in its Hello.
pub const TOKEN: &str = "REBEAM_TOKEN";
/// `main` or `worker`.
pub const ROLE: &str = "REBEAM_ROLE";
/// The process's index in the run.
pub const INDEX: &str = "REBEAM_INDEX";
/// The user's script, absolute (empty in library mode).
pub const SCRIPT: &str = "REBEAM_SCRIPT";
/// The governor's pid, so a worker orphaned before it started exits at once.
pub const GOVERNOR_PID: &str = "REBEAM_GOVERNOR_PID";
/// The log filter, for the governor and the Python processes alike (`rebeam --log`).
pub const LOG: &str = "REBEAM_LOG";
/// `marked` or `require-armed` (`rebeam --safety`).
pub const SAFETY: &str = "REBEAM_SAFETY";
/// The node's name under `rebeam --node NAME`: set by `rebeam` for the whole run, so that the
/// Python side pickles a process id with its node.
pub const NODE: &str = "REBEAM_NODE";
/// The zygote's end of its socket to the governor (an fd number; see the governor's
/// `zygote.rs`): set for the zygote alone, which removes it before it forks a worker.
pub const ZYGOTE_FD: &str = "REBEAM_ZYGOTE_FD";

// -- read by `rebeam` -----------------------------------------------------------------------

/// The interpreter for the script and the workers (`--python`).
pub const PYTHON: &str = "REBEAM_PYTHON";
/// The worker count (`--workers`).
pub const WORKERS: &str = "REBEAM_WORKERS";
/// The control socket `rebeam ctl` talks to; never handed to the Python processes.
pub const CONTROL: &str = "REBEAM_CONTROL";
/// `off` starts every worker as a fresh interpreter instead of forking it from the zygote
/// (`--zygote`).
pub const ZYGOTE: &str = "REBEAM_ZYGOTE";
/// Where `rebeam` keeps the environments it provisions for scripts' declared dependencies.
pub const CACHE_DIR: &str = "REBEAM_CACHE_DIR";
/// The main process's token, handed to `rebeam serve` by library mode.
pub const MAIN_TOKEN: &str = "REBEAM_MAIN_TOKEN";
/// A hidden test hook: the governor panics on purpose this many milliseconds after start.
pub const TEST_PANIC_AFTER_MS: &str = "REBEAM_TEST_PANIC_AFTER_MS";

/// The variables both sides name: the ones the governor sets for Python, and the ones library
/// mode hands to `rebeam serve`.
pub const ALL: [&str; 12] =
    [SOCKET, TOKEN, ROLE, INDEX, SCRIPT, GOVERNOR_PID, LOG, SAFETY, NODE, ZYGOTE_FD, PYTHON, MAIN_TOKEN];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_prefixed() {
        let mut seen = std::collections::HashSet::new();
        for name in ALL.iter().chain(&[WORKERS, CONTROL, ZYGOTE, CACHE_DIR, TEST_PANIC_AFTER_MS]) {
            assert!(name.starts_with("REBEAM_"), "{name}");
            assert!(seen.insert(name), "{name} named twice");
        }
    }
}
