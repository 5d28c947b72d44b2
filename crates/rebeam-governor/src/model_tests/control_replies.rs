//! The control socket's refusals carry the rule that refused them, as data a host can act on.

use rebeam_proto::{ControlRequest, ControlResponse, RefusalKind, Role};
use tokio::sync::oneshot;

use super::fake::FakeOs;
use super::regressions::router;
use crate::control::Peer;
use crate::router::{Input, Router};
use crate::Program;

fn ask(router: &mut Router, request: ControlRequest, ancestry: Result<Vec<u32>, String>) -> ControlResponse {
    let peer = Peer { pid: ancestry.as_ref().ok().and_then(|chain| chain.first().copied()), ancestry };
    let (reply, mut answer) = oneshot::channel();
    router.handle(Input::Control(request, peer, reply));
    answer.try_recv().expect("a control request is answered within its input")
}

fn kind(response: ControlResponse) -> Option<RefusalKind> {
    match response {
        ControlResponse::Refused(refusal) => Some(refusal.kind),
        _ => None,
    }
}

#[test]
fn a_refusal_says_whether_the_peer_is_of_the_run_or_could_not_be_checked() {
    let os = FakeOs::default();
    let argv0 = std::ffi::OsString::from("main.py");
    let mut router = router(&os, Program::Script { script: "/nonexistent/main.py".into(), argv0, args: vec![] });
    let main = router.procs.values().find(|p| p.role == Role::Main).expect("the main process").pid;
    let from_main = kind(ask(&mut router, ControlRequest::Arm, Ok(vec![main, 1])));
    assert_eq!(from_main, Some(RefusalKind::InsideTheRun));
    let unchecked = kind(ask(&mut router, ControlRequest::Disarm, Err("its /proc entry is gone".into())));
    assert_eq!(unchecked, Some(RefusalKind::Unverified));
    assert_eq!(kind(ask(&mut router, ControlRequest::Status, Ok(vec![main, 1]))), None, "status is anyone's");
}
