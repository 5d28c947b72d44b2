//! Whether a core is free right now, for a receiver deciding whether to spin before it sleeps.
//!
//! Rules:
//! - A core is free when the threads runnable on the machine at this moment (the kernel's own
//!   count, the fourth field of `/proc/loadavg`, which counts the asker) are no more than the
//!   CPUs this process may run on: then no runnable thread waits for a CPU while the asker
//!   spins, so spinning takes nothing from anyone. A spinner asks again as it spins and stops
//!   as soon as the answer is no (see `Receiver::wait`).
//! - The count is read with one `pread` of a file each thread keeps open. If it cannot be read
//!   (no procfs), no core is free: spinning is only ever an optimisation.

use std::cell::RefCell;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::OnceLock;

/// Where the kernel says how many threads are runnable now.
const LOADAVG: &str = "/proc/loadavg";
/// Enough for `/proc/loadavg`'s one line (five short fields).
const LOADAVG_BYTES: usize = 128;

thread_local! {
    static LOADAVG_FILE: RefCell<Option<File>> = RefCell::new(File::open(LOADAVG).ok());
}

/// The CPUs this process may run on (its affinity and quota), read once.
pub fn cpus() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The threads runnable on the machine now, the asker included; None if it cannot be read.
pub fn runnable() -> Option<usize> {
    LOADAVG_FILE.with(|file| {
        let file = file.borrow();
        let mut buf = [0u8; LOADAVG_BYTES];
        let n = file.as_ref()?.read_at(&mut buf, 0).ok()?;
        parse_runnable(&buf[..n])
    })
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
