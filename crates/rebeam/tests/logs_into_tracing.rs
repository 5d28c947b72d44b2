//! The governor's log lines reach the host as `tracing` events of target `rebeam`.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `tracing` writer into a buffer the test reads.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[test]
fn governor_lines_become_events_at_their_level() {
    let Some(builder) = common::builder() else { return };
    let captured = Captured::default();
    let writer = captured.clone();
    // The events come from the forwarding thread, so the subscriber must be the global one
    // (this file holds this one test for that reason).
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this test binary");

    let runtime = builder.log_filter("info").start().expect("the runtime starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    // The governor says at info level what it started.
    while !captured.text().contains("started library mode") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(runtime);
    let text = captured.text();
    let line = text
        .lines()
        .find(|l| l.contains("started library mode"))
        .unwrap_or_else(|| panic!("no start line in:\n{text}"));
    assert!(line.contains(" INFO ") && line.contains(" rebeam:"), "not an INFO event of target rebeam: {line}");
    assert!(!line.contains("rebeam info:"), "the level tag is parsed, not kept: {line}");
}
