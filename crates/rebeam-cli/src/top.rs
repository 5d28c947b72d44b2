//! `rebeam top`: a live view of a running system, drawn by `view.rs` from the status reports
//! of the control socket (the same owner-only client as `rebeam ctl`, asking only `status`,
//! which changes nothing).
//!
//! The loop: ask for a report, draw it against the one before, then wait up to the interval
//! for a key; `q`, Esc or Ctrl-C quit, a resize redraws at once. A refresh that fails (the
//! run ended, the socket is gone) keeps the last report on screen with the reason in the
//! header, and the next refresh tries again, so a view left open across a restart of the run
//! under the same socket path picks it up.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::DefaultTerminal;
use rebeam_proto::{ControlRequest, ControlResponse};

use crate::view::{self, Sample};

/// Asks the governor at `socket` for one sample.
fn sample(socket: &Path) -> Result<Sample, String> {
    match rebeam_governor::control_request(socket, ControlRequest::Status)? {
        ControlResponse::Status { state, report } => Ok(Sample { state, report }),
        ControlResponse::Refused(r) => Err(crate::render::refusal(&r)),
        other => Err(format!("unexpected answer to status: {other:?}")),
    }
}

/// Runs the view until the user quits; an error only when the first report cannot be had
/// (nothing to show) or the terminal fails.
pub fn run(socket: PathBuf, interval: Duration) -> Result<(), String> {
    // Fail before taking over the terminal: the message stays readable.
    let first = sample(&socket)?;
    let mut terminal = ratatui::try_init().map_err(|e| format!("cannot set up the terminal: {e}"))?;
    let result = watch(&mut terminal, &socket, first, interval).map_err(|e| format!("terminal error: {e}"));
    ratatui::restore();
    result
}

fn watch(terminal: &mut DefaultTerminal, socket: &Path, first: Sample, interval: Duration) -> io::Result<()> {
    let (mut now, mut before): (Sample, Option<Sample>) = (first, None);
    let mut note: Option<String> = None;
    loop {
        terminal.draw(|frame| view::draw(frame, &now, before.as_ref(), note.as_deref()))?;
        let deadline = Instant::now() + interval;
        // Keys until the next refresh; a resize only needs a redraw.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !event::poll(left)? {
                break;
            }
            match event::read()? {
                Event::Key(key) if key.kind == KeyEventKind::Press && quits(key.code, key.modifiers) => return Ok(()),
                Event::Resize(..) => {
                    terminal.draw(|frame| view::draw(frame, &now, before.as_ref(), note.as_deref()))?;
                }
                _ => {}
            }
        }
        match sample(socket) {
            Ok(next) => {
                before = Some(std::mem::replace(&mut now, next));
                note = None;
            }
            Err(e) => note = Some(format!("last refresh failed: {e}")),
        }
    }
}

fn quits(code: KeyCode, modifiers: KeyModifiers) -> bool {
    matches!(code, KeyCode::Char('q') | KeyCode::Esc)
        || (code == KeyCode::Char('c') && modifiers.contains(KeyModifiers::CONTROL))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_escape_and_control_c_quit_and_nothing_else_does() {
        assert!(quits(KeyCode::Char('q'), KeyModifiers::NONE));
        assert!(quits(KeyCode::Esc, KeyModifiers::NONE));
        assert!(quits(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert!(!quits(KeyCode::Char('c'), KeyModifiers::NONE));
        assert!(!quits(KeyCode::Char('x'), KeyModifiers::NONE));
    }

    #[test]
    fn no_governor_is_an_error_before_the_terminal_is_touched() {
        let err = run(PathBuf::from("/nonexistent/ctl.sock"), Duration::from_secs(1)).expect_err("nothing listens");
        assert!(err.contains("/nonexistent/ctl.sock"), "{err}");
    }
}
