//! The noticeboard in the governor: the I/O half of `rebeam_core::noticeboard`.
//!
//! Values are pickled payloads; the governor never looks inside them. Fire-and-forget writes
//! (`notice_write`, `notice_delete`) arrive as events and a refused one is only logged, as in
//! bocpy, whose noticeboard thread logs and drops them; `notice_seed` and the
//! compare-and-set behind `notice_update` are requests, so their callers learn the outcome.

use rebeam_core::noticeboard::{NoticeError, Noticeboard};
use rebeam_proto::{ErrorInfo, ErrorKind, Payload, Response};

use crate::router::{ProcIdx, Router};

pub type Notices = Noticeboard<Payload>;

fn refusal(e: NoticeError) -> Response {
    let kind = match e {
        NoticeError::Full(_) => ErrorKind::Full,
        NoticeError::BadKey(_) => ErrorKind::BadRequest,
    };
    Response::Refused(ErrorInfo::new(kind, e.to_string()))
}

impl Router {
    pub fn notice(&mut self, proc: ProcIdx, key: &str, payload: Option<Payload>) {
        if let Err(e) = self.notices.write(key, payload) {
            tracing::warn!("noticeboard write from the {} not applied: {e}", self.procs[proc].describe());
        }
    }

    pub fn notice_seed(&mut self, key: &str, payload: Payload) -> Response {
        match self.notices.write(key, Some(payload)) {
            Ok(()) => Response::Done,
            Err(e) => refusal(e),
        }
    }

    pub fn notice_update(&mut self, key: &str, expected: u64, payload: Option<Payload>) -> Response {
        match self.notices.update(key, expected, payload) {
            Ok(applied) => Response::Updated(applied),
            Err(e) => refusal(e),
        }
    }

    pub fn notices_snapshot(&mut self, clear: bool) -> Response {
        let snapshot = self.notices.snapshot();
        if clear {
            self.notices.clear();
        }
        Response::Notices(snapshot)
    }
}
