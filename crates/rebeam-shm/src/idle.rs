//! Whether a core is free right now, for a receiver deciding whether to spin before it sleeps.
//!
//! Rules:
//! - A core is free when the threads runnable on the machine at this moment (the kernel's own
//!   count, the fourth field of `/proc/loadavg`, which counts the asker) are no more than the
//!   CPUs this process may run on: then no runnable thread waits for a CPU while the asker
//!   spins, so spinning takes nothing from anyone. A spinner asks again as it spins and stops
//!   as soon as the answer is no (see `Receiver::wait`).
//! - The count is read with one `pread` of a file the process opens once, on the first ask
//!   (one fd for the process's life, however many threads ask: `pread` needs no lock). If it
//!   cannot be read (no procfs), no core is free: spinning is only ever an optimisation.
//! - A [`Spin`] is one receiver's rule: poll for up to its budget (never past the wait's own
//!   timeout), and, when it spins only while a core is free, ask before the first poll and
//!   again every [`SPIN_RECHECK`], stopping at the first no; it yields its CPU every
//!   [`SPIN_YIELD`] (to a thread woken onto it meanwhile, if there is one). Every wait on a
//!   ring (one receiver's or several at once) spins by the same rule before it announces sleep.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::error::Result;

/// How often a receiver spinning only while a core is free asks again whether one is.
pub const SPIN_RECHECK: Duration = Duration::from_micros(10);
/// How often a spinner offers its CPU to a thread woken onto it (`sched_yield`, which returns at
/// once when none is): a free core can stop being free between two asks, and the thread woken
/// then should not wait for the next ask. Measured on two cores: 10,000 async calls in flight
/// ran at 23-25k/s spinning without yielding, 27-28k/s without spinning, 27-28k/s yielding at
/// every poll (calls' p99 better too, casts a little slower), 25-40k/s (median 32k) yielding
/// every 2 µs, with call p50 9-12 µs and casts 500-547k/s.
pub const SPIN_YIELD: Duration = Duration::from_micros(2);

/// How a receiver polls its ring before it sleeps (see the module rules). The default does not
/// spin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spin {
    /// The longest it polls.
    pub budget: Duration,
    /// Poll only while a core is free.
    pub idle_only: bool,
}

impl Spin {
    /// The larger of two rules: the longer budget, spinning only while a core is free if
    /// either does (a wait over several receivers spins once, for all of them).
    pub fn max(self, other: Spin) -> Spin {
        Spin { budget: self.budget.max(other.budget), idle_only: self.idle_only || other.idle_only }
    }

    /// Polls `done` until it says yes (true), or the budget, capped at `timeout`, runs out or a
    /// core is no longer free (false).
    pub fn run(self, timeout: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<bool> {
        if self.budget.is_zero() || (self.idle_only && !core_free()) {
            return Ok(false);
        }
        let start = Instant::now();
        let until = start + self.budget.min(timeout);
        let (mut recheck, mut offer) = (start + SPIN_RECHECK, start + SPIN_YIELD);
        loop {
            if done()? {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= until {
                return Ok(false);
            }
            if self.idle_only && now >= recheck {
                if !core_free() {
                    return Ok(false);
                }
                recheck = now + SPIN_RECHECK;
            }
            if now >= offer {
                std::thread::yield_now();
                offer = now + SPIN_YIELD;
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

/// Where the kernel says how many threads are runnable now.
const LOADAVG: &str = "/proc/loadavg";
/// Enough for `/proc/loadavg`'s one line (five short fields).
const LOADAVG_BYTES: usize = 128;

/// `/proc/loadavg`, opened on the first ask; None if it cannot be.
fn loadavg() -> Option<&'static File> {
    static FILE: OnceLock<Option<File>> = OnceLock::new();
    FILE.get_or_init(|| File::open(LOADAVG).ok()).as_ref()
}

/// The CPUs this process may run on (its affinity and quota), read once.
pub fn cpus() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The threads runnable on the machine now, the asker included; None if it cannot be read.
pub fn runnable() -> Option<usize> {
    let mut buf = [0u8; LOADAVG_BYTES];
    let n = loadavg()?.read_at(&mut buf, 0).ok()?;
    parse_runnable(&buf[..n])
}

/// Whether a core is free for a spinner now (see the module rules).
pub fn core_free() -> bool {
    runnable().is_some_and(|n| n <= cpus())
}

/// The runnable count in a `/proc/loadavg` line: `1.00 0.50 0.25 3/412 12345` gives 3.
fn parse_runnable(line: &[u8]) -> Option<usize> {
    let line = std::str::from_utf8(line).ok()?;
    line.split_ascii_whitespace().nth(3)?.split('/').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spin_without_a_budget_never_polls() {
        let mut polls = 0;
        assert!(!Spin::default()
            .run(Duration::from_secs(1), || {
                polls += 1;
                Ok(true)
            })
            .unwrap());
        assert_eq!(polls, 0);
    }

    #[test]
    fn a_spin_stops_when_done_or_at_its_budget_capped_by_the_timeout() {
        let spin = Spin { budget: Duration::from_millis(20), idle_only: false };
        let mut polls = 0;
        assert!(spin
            .run(Duration::from_secs(1), || {
                polls += 1;
                Ok(polls == 3)
            })
            .unwrap());
        assert_eq!(polls, 3);
        let start = Instant::now();
        assert!(!spin.run(Duration::from_millis(2), || Ok(false)).unwrap());
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(2), "it spun {took:?}");
    }

    #[test]
    fn the_larger_rule_takes_the_longer_budget_and_the_idle_condition() {
        let a = Spin { budget: Duration::from_micros(5), idle_only: true };
        let b = Spin { budget: Duration::from_micros(50), idle_only: false };
        assert_eq!(a.max(b), Spin { budget: Duration::from_micros(50), idle_only: true });
        assert_eq!(Spin::default().max(b), b);
    }

    #[test]
    fn the_runnable_count_is_the_fourth_fields_first_number() {
        assert_eq!(parse_runnable(b"1.00 0.50 0.25 3/412 12345\n"), Some(3));
        assert_eq!(parse_runnable(b"0.00 0.00 0.00 17/9000 1"), Some(17));
    }

    #[test]
    fn a_line_that_is_not_loadavg_gives_nothing() {
        assert_eq!(parse_runnable(b""), None);
        assert_eq!(parse_runnable(b"1.00 0.50 0.25"), None);
        assert_eq!(parse_runnable(b"1.00 0.50 0.25 x/412 1"), None);
    }

    #[test]
    fn the_kernel_counts_the_asker_among_the_runnable() {
        // Read twice from the same open file: the count is fresh each time, never empty.
        for _ in 0..2 {
            assert!(runnable().is_some_and(|n| n >= 1), "{:?}", runnable());
        }
        assert!(cpus() >= 1);
    }
}
