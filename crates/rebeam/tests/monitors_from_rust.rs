//! Monitors from the host: one down notice per monitored actor, blocking or async.

mod common;

use std::time::Duration;

use rebeam::{Exit, Restart, Spawn, Value};

const T: Duration = Duration::from_secs(20);

#[test]
fn a_crash_arrives_as_one_down_notice_with_its_error() {
    let Some(builder) = common::builder() else { return };
    let runtime = builder.start().expect("the runtime starts");
    let actor = runtime.spawn(Spawn::new("host_fixtures:Echo").name("m").restart(Restart::Temporary)).unwrap();
    let mut monitor = runtime.monitor(&actor).expect("the monitor is set");
    assert_eq!(monitor.try_recv(), None, "nothing has ended yet");
    let _ = runtime.call::<_, Value>("m", "fail", &"for the monitor", T);
    let down = monitor.recv().expect("a down notice");
    assert_eq!((down.monitor, down.actor.id), (monitor.id(), actor.id));
    let Exit::Crashed(info) = &down.reason else { panic!("{down:?}") };
    assert!(info.message.contains("for the monitor"), "{info:?}");
    assert_eq!(monitor.try_recv(), None, "exactly one notice");
}

#[test]
fn a_target_that_is_not_running_is_down_at_once() {
    let Some(builder) = common::builder() else { return };
    let runtime = builder.start().expect("the runtime starts");
    // Its notice is sent before the answer to `monitor`: the stream must still get it.
    let mut monitor = runtime.monitor("nobody").expect("the monitor is set");
    let down = monitor.recv().expect("an immediate down notice");
    assert_eq!(down.actor.name.as_deref(), Some("nobody"));
    assert!(matches!(&down.reason, Exit::Killed(why) if why.starts_with("noproc")), "{down:?}");
}

#[test]
fn a_monitor_is_awaitable_and_its_stream_ends_with_the_run() {
    let Some(builder) = common::builder() else { return };
    let runtime = builder.start().expect("the runtime starts");
    runtime.spawn(Spawn::new("host_fixtures:Echo").name("d").restart(Restart::Temporary)).unwrap();
    let mut dies = runtime.monitor("d").unwrap();
    runtime.spawn(Spawn::new("host_fixtures:Echo").name("stays")).unwrap();
    let mut stays = runtime.monitor("stays").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let _ = runtime.call_async::<_, Value>("d", "die", &(), T).await;
        let down = dies.down().await.expect("a down notice");
        assert!(matches!(down.reason, Exit::Killed(_) | Exit::Crashed(_)), "{down:?}");
    });
    drop(runtime);
    // The run is over: the other stream ends without a notice or with its shutdown.
    match stays.recv() {
        None => {}
        Some(down) => assert!(matches!(down.reason, Exit::Shutdown | Exit::Normal | Exit::Killed(_)), "{down:?}"),
    }
}
