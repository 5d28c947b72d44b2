//! What the tests of this crate share: finding a rebeam-capable Python, and reading the process
//! table.

#![allow(dead_code)] // each test file uses its own part of this module

use std::path::PathBuf;

/// The suite's virtualenv (made by `./bootstrap.sh`), if it has a Python and the `rebeam`
/// command; None after printing why the test is skipped.
pub fn venv() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv");
    if dir.join("bin/python").is_file() && dir.join("bin/rebeam").is_file() {
        return Some(dir);
    }
    eprintln!("skipped: no rebeam-capable Python at {} (run ./bootstrap.sh to make one)", dir.display());
    None
}

/// A builder for a small run on the suite's virtualenv, with Python's modules for the tests
/// importable (`PYTHONPATH` is inherited by the governor and its workers).
pub fn builder() -> Option<rebeam::Builder> {
    let venv = venv()?;
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    std::env::set_var("PYTHONPATH", fixtures);
    Some(rebeam::Runtime::builder().venv(venv).workers(1).spares(1))
}

/// Every live process whose ancestry includes `root` (not `root` itself).
pub fn descendants(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, ppid(pid)?)))
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let at = found[i];
        found.extend(parents.iter().filter(|(_, pp)| *pp == at).map(|(p, _)| *p));
        i += 1;
    }
    found.remove(0);
    found
}

/// Whether `pid` is a live process (a zombie counts as gone: it runs nothing).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .is_some_and(|zombie| !zombie)
}

/// Which of `pids` are still alive after up to `bound`.
pub fn still_alive(pids: &[u32], bound: std::time::Duration) -> Vec<u32> {
    let deadline = std::time::Instant::now() + bound;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() || std::time::Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// The names in /dev/shm now.
pub fn shm_names() -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}
