//! A worker's side of the connection: commands in, replies and lifecycle reports out.
//!
//! One thread at a time holds the command role (`step_aside`/`resume`/`standby`, rebeam-client
//! `role.rs`), so commands are taken in arrival order.

use pyo3::prelude::*;
use rebeam_proto::{ActorId, ErrorInfo, ErrorKind, Event, Gating, Outcome, Status};

use crate::casts::batch_to_py;
use crate::commands::command_to_py;
use crate::convert::payload_from_py;
use crate::errors::{info_from_py, to_pyerr};
use crate::{exits, numbers, Connection, COMMAND_BATCH};

#[pymethods]
impl Connection {
    /// The next command for this process, or None after `timeout` seconds (None waits forever).
    #[pyo3(signature = (timeout=None))]
    fn next_command<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let timeout = timeout.map(|t| numbers::timeout("next_command()", t)).transpose()?;
        match py.detach(|| self.client.next_command(timeout)) {
            Some(cmd) => command_to_py(py, cmd),
            None => Ok(None),
        }
    }

    /// A direct call's delivery reached its live actor's mailbox (see `Client::took`).
    fn took(&self, delivery: u64) {
        self.client.took(delivery);
    }

    /// From now on each delivery counts against the process's bound until `handled` reports
    /// it (see `Client::count_handled`).
    fn count_handled(&self) {
        self.client.count_handled();
    }

    /// From now on the idle command thread sleeps on the rings itself (see
    /// `Client::read_rings_when_idle`).
    fn read_rings_when_idle(&self) {
        self.client.read_rings_when_idle();
    }

    /// This worker is done with `n` deliveries: handled, refused, or dropped with their actor.
    #[pyo3(signature = (n=1))]
    fn handled(&self, n: usize) {
        self.client.handled(n);
    }

    /// Deliveries waiting in this process now, as the bound counts them.
    fn backlog(&self) -> usize {
        self.client.backlog()
    }

    /// Gives up the command role to run what this thread took (see `Client::step_aside`).
    fn step_aside(&self) {
        self.client.step_aside();
    }

    /// Takes the command role back; False if a standby claimed it meanwhile.
    fn resume(&self) -> bool {
        self.client.resume()
    }

    /// Waits (without the GIL) until this thread claims the free command role for a command
    /// that arrived; False after `timeout` seconds (None waits forever).
    #[pyo3(signature = (timeout=None))]
    fn standby(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let timeout = timeout.map(|t| numbers::timeout("standby()", t)).transpose()?;
        Ok(py.detach(|| self.client.standby(timeout)))
    }

    /// The next commands, as a list (empty after `timeout` seconds): the first as
    /// `next_command` gives it, then the casts queued right behind it, converted under one hold
    /// of the GIL, each run of casts to one actor as one `Casts` (see `casts.rs`).
    #[pyo3(signature = (timeout=None))]
    fn next_commands<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let timeout = timeout.map(|t| numbers::timeout("next_commands()", t)).transpose()?;
        let batch = py.detach(|| self.client.next_commands(timeout, COMMAND_BATCH));
        batch_to_py(py, batch)
    }

    /// Answers a delivered call with a handler's result.
    fn reply(
        &self,
        py: Python<'_>,
        delivery: u64,
        ok: bool,
        data: &Bound<'_, PyAny>,
        buffers: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let payload = payload_from_py(py, data, buffers)?;
        let status = if ok { Status::Ok } else { Status::Error };
        self.send_event(py, Event::Replied { delivery, outcome: Outcome::Reply { status, payload } })
    }

    /// Answers a delivered call with a failure: `info` is `(kind, message, exc_type, traceback)`.
    fn reply_failure(&self, py: Python<'_>, delivery: u64, info: &Bound<'_, PyAny>) -> PyResult<()> {
        let info = info_from_py(info)?;
        self.send_event(py, Event::Replied { delivery, outcome: Outcome::Failed(info) })
    }

    /// Reports that an actor started (`error` None) or failed to start. `gating` is
    /// `(handled subjects, gated subjects, catch-all gated)`.
    #[pyo3(signature = (actor, error=None, gating=None))]
    fn started(
        &self,
        py: Python<'_>,
        actor: ActorId,
        error: Option<&Bound<'_, PyAny>>,
        gating: Option<(Vec<String>, Vec<String>, bool)>,
    ) -> PyResult<()> {
        let result = match error {
            None => {
                let (handled, subjects, catch_all) = gating.unwrap_or_default();
                Ok(Gating { handled, subjects, catch_all })
            }
            Some(info) => Err(info_from_py(info)?),
        };
        self.send_event(py, Event::Started { actor, result })
    }

    /// Reports that an actor ended, as an `_rebeam.Exit`, and the highest governor delivery
    /// id this process had taken in when it died (`None`: it cannot say, so every delivery to
    /// the actor ends with it; see the governor's `calls` rules).
    #[pyo3(signature = (actor, exit, taken_up_to=None))]
    fn exited(
        &self,
        py: Python<'_>,
        actor: ActorId,
        exit: &Bound<'_, exits::PyExit>,
        taken_up_to: Option<u64>,
    ) -> PyResult<()> {
        let taken_up_to = taken_up_to.unwrap_or(u64::MAX);
        self.send_event(py, Event::Exited { actor, reason: exit.get().exit(), taken_up_to })
    }

    /// The main process finished the script body (`error` if it raised, `exit` if it called
    /// `sys.exit(exit)`).
    #[pyo3(signature = (error=None, exit=None))]
    fn body_done(&self, py: Python<'_>, error: Option<&Bound<'_, PyAny>>, exit: Option<i32>) -> PyResult<()> {
        let error = error.map(info_from_py).transpose()?;
        self.send_event(py, Event::BodyDone { error, exit })
    }

    /// Writes raw bytes on the socket, bypassing the codec. For tests of the governor's
    /// handling of malformed frames; never needed by programs.
    fn _send_raw(&self, py: Python<'_>, bytes: Vec<u8>) -> PyResult<()> {
        py.detach(|| self.client.send_raw(&bytes))
            .map_err(|e| to_pyerr(py, ErrorInfo::new(ErrorKind::ShuttingDown, e.to_string())))
    }
}
