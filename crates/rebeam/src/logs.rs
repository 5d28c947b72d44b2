//! The run's stderr as the host's `tracing` events.
//!
//! The rules:
//! - A line `rebeam <level>: <message>` (the governor's format) becomes an event at that level
//!   (`warning` is WARN) whose message is the text after the tag.
//! - Any other line (a Python process's own output on stderr, a traceback) becomes an INFO
//!   event carrying the line as it was: the host decides what it is worth.
//! - Forwarding ends when the last writer (the governor and every worker) has closed the pipe.

use std::io::{BufRead, BufReader, Read};

use crate::LOG_TARGET;

/// A forwarded line's level, as this module's rules read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// The level a line names and the message after its tag.
pub(crate) fn parse(line: &str) -> (Level, &str) {
    const TAGS: [(&str, Level); 5] = [
        ("rebeam error: ", Level::Error),
        ("rebeam warning: ", Level::Warn),
        ("rebeam info: ", Level::Info),
        ("rebeam debug: ", Level::Debug),
        ("rebeam trace: ", Level::Trace),
    ];
    TAGS.iter()
        .find_map(|(tag, level)| line.strip_prefix(tag).map(|rest| (*level, rest)))
        .unwrap_or((Level::Info, line))
}

fn emit(line: &str) {
    let (level, message) = parse(line);
    match level {
        Level::Error => tracing::error!(target: LOG_TARGET, "{message}"),
        Level::Warn => tracing::warn!(target: LOG_TARGET, "{message}"),
        Level::Info => tracing::info!(target: LOG_TARGET, "{message}"),
        Level::Debug => tracing::debug!(target: LOG_TARGET, "{message}"),
        Level::Trace => tracing::trace!(target: LOG_TARGET, "{message}"),
    }
}

/// Forwards `pipe` line by line on a thread of its own until every writer has closed it.
pub(crate) fn forward(pipe: impl Read + Send + 'static) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("rebeam-logs".into()).spawn(move || {
        for line in BufReader::new(pipe).lines() {
            match line {
                Ok(line) => emit(line.trim_end()),
                Err(_) => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_governors_tags_name_the_level() {
        assert_eq!(parse("rebeam error: worker 2 died"), (Level::Error, "worker 2 died"));
        assert_eq!(parse("rebeam warning: slow"), (Level::Warn, "slow"));
        assert_eq!(parse("rebeam info: started"), (Level::Info, "started"));
        assert_eq!(parse("rebeam debug: x"), (Level::Debug, "x"));
        assert_eq!(parse("rebeam trace: y"), (Level::Trace, "y"));
    }

    #[test]
    fn other_lines_are_info_and_kept_whole() {
        assert_eq!(parse("Traceback (most recent call last):"), (Level::Info, "Traceback (most recent call last):"));
        assert_eq!(parse("rebeam errors: not a tag"), (Level::Info, "rebeam errors: not a tag"));
    }
}
