//! A process's CPU time and resident memory, for the status report.
//!
//! One read of `/proc/<pid>/stat` per process per report (utime, stime and rss are all in
//! it), and at most [`USAGE_READS_PER_REPORT`] of them, so a report costs a bounded number
//! of small reads however many processes there are. A process whose file cannot be read (it
//! just exited) has no usage; the report shows it without.

use rebeam_proto::ProcessUsage;

/// The most `/proc` reads one status report makes; processes past it show no usage.
pub const USAGE_READS_PER_REPORT: usize = 256;

/// Reads `pid`'s usage from `/proc`.
pub fn read(pid: u32) -> Option<ProcessUsage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = rustix::param::clock_ticks_per_second();
    let page = u64::try_from(rustix::param::page_size()).unwrap_or(u64::MAX);
    parse_stat(&stat, ticks, page)
}

/// The usage in one `/proc/<pid>/stat` line, given the kernel's clock ticks per second and
/// page size. The fields after the name (which may hold spaces and parentheses, so it is
/// skipped to the last ')') start at field 3, the state: utime and stime are fields 14 and
/// 15 (clock ticks), rss is field 24 (pages).
fn parse_stat(stat: &str, ticks_per_second: u64, page_bytes: u64) -> Option<ProcessUsage> {
    let after_name: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |n: usize| after_name.get(n - 3)?.parse::<u64>().ok();
    let ticks = field(14)?.saturating_add(field(15)?);
    let cpu_ms = ticks.saturating_mul(1000) / ticks_per_second.max(1);
    let rss_bytes = field(24)?.saturating_mul(page_bytes);
    Some(ProcessUsage { cpu_ms, rss_bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_rss_are_read_past_a_name_with_parentheses() {
        // pid (name) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime cutime cstime priority nice threads itrealvalue starttime vsize rss …
        let stat =
            "42 (a (b) c) S 1 42 42 0 -1 4194560 10 0 0 0 150 50 7 7 20 0 3 0 100 123456 300 18446744073709551615";
        let usage = parse_stat(stat, 100, 4096).expect("a well-formed line");
        assert_eq!(usage, ProcessUsage { cpu_ms: 2000, rss_bytes: 300 * 4096 });
        assert_eq!(parse_stat("42 (short) S 1 2", 100, 4096), None);
        assert_eq!(parse_stat("no parenthesis", 100, 4096), None);
    }

    #[test]
    fn our_own_usage_is_readable() {
        let usage = read(std::process::id()).expect("our own /proc entry");
        assert!(usage.rss_bytes > 0, "{usage:?}");
    }
}
