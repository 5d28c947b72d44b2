//! Safety from the host: arm, disarm, force-disarm and the state, over the run's control socket.
//!
//! The rules (the governor's, the same ladder as `rebeam ctl`):
//! - Only the host changes the state; Python reads it. The runtime starts the governor with
//!   `--host`, so this process itself (not anything it starts) is the host on the socket.
//! - `arm` moves disarmed → armed. `disarm` moves armed → disarming, and gated work in flight
//!   gets the grace before its worker is killed; the state is disarmed once it has stopped.
//!   `force_disarm` also leaves `error` (a kill that could not be confirmed) for disarmed.
//! - A request the machine does not allow in the current state is [`Error::Safety`] with the
//!   governor's reason; the state is unchanged.

use rebeam_proto::{ControlRequest, ControlResponse, Frame, Safety, SafetyTransition};

use crate::{Error, Runtime};

/// Control frames are small; an answer bigger than this is not one.
const CONTROL_ANSWER_LIMIT: u64 = 1 << 20;

impl Runtime {
    /// Arms the system: `@requires_armed` work may run. Returns the transitions it caused.
    pub fn arm(&self) -> Result<Vec<SafetyTransition>, Error> {
        self.safety_request(ControlRequest::Arm)
    }

    /// Disarms: gated work stops (or its worker is killed after the grace).
    pub fn disarm(&self) -> Result<Vec<SafetyTransition>, Error> {
        self.safety_request(ControlRequest::Disarm)
    }

    /// Disarms from any state, `error` included.
    pub fn force_disarm(&self) -> Result<Vec<SafetyTransition>, Error> {
        self.safety_request(ControlRequest::ForceDisarm)
    }

    /// The safety state, asked of the governor (a round trip; [`Runtime::safety`] reads the
    /// last broadcast without one).
    pub fn safety_status(&self) -> Result<Safety, Error> {
        match self.control(ControlRequest::Status)? {
            ControlResponse::Status { state, .. } => Ok(state),
            other => Err(Error::Control(format!("unexpected answer to status: {other:?}"))),
        }
    }

    fn safety_request(&self, request: ControlRequest) -> Result<Vec<SafetyTransition>, Error> {
        match self.control(request)? {
            ControlResponse::Safety { transitions, .. } => Ok(transitions),
            ControlResponse::Refused(refusal) => Err(Error::Safety(refusal.message)),
            other => Err(Error::Control(format!("unexpected answer: {other:?}"))),
        }
    }

    fn control(&self, request: ControlRequest) -> Result<ControlResponse, Error> {
        let socket = &self.control;
        let mut stream = std::os::unix::net::UnixStream::connect(socket)
            .map_err(|e| Error::Control(format!("cannot connect to {}: {e}", socket.display())))?;
        // A refused peer gets its refusal and the connection closes, maybe before our write:
        // read the answer even when the write failed.
        let written = rebeam_proto::write_frame(&mut stream, &Frame::Control(request));
        match rebeam_proto::read_frame(&mut stream, CONTROL_ANSWER_LIMIT) {
            Ok(Frame::ControlReply(response)) => Ok(response),
            Ok(other) => Err(Error::Control(format!("unexpected answer from the governor: {other:?}"))),
            Err(e) => Err(Error::Control(match written {
                Err(w) => format!("cannot send to {}: {w}", socket.display()),
                Ok(()) => format!("no answer from the governor at {}: {e}", socket.display()),
            })),
        }
    }
}
