//! The command role: one holder, stepping aside without a wake-up when nothing comes, and a
//! standby claiming it for a command that arrives meanwhile.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver};
use rebeam_proto::Command;

use crate::role::{CommandRole, Commands};

/// Long enough that a standby that should claim does; a test that passes never waits it.
const CLAIM_WAIT: Duration = Duration::from_secs(10);
/// How long a standby that must not claim is given to do so anyway.
const NO_CLAIM_WAIT: Duration = Duration::from_millis(50);

fn queue() -> (Commands, Receiver<Command>, Arc<CommandRole>) {
    let (tx, rx) = unbounded();
    let role = Arc::new(CommandRole::default());
    (Commands::new(tx, role.clone(), Default::default()), rx, role)
}

fn stop(actor: u64) -> Command {
    Command::Stop { actor }
}

#[test]
fn a_holder_that_steps_aside_takes_the_role_back_when_nothing_came() {
    let (_tx, rx, role) = queue();
    role.step_aside(|| !rx.is_empty());
    assert!(role.resume());
    // Held again: a standby does not claim it, even for a command.
    assert!(!role.standby(|| true, Some(NO_CLAIM_WAIT)));
}

#[test]
fn a_command_arriving_while_the_role_is_free_goes_to_a_standby() {
    let (tx, rx, role) = queue();
    let standby = {
        let (role, rx) = (role.clone(), rx.clone());
        std::thread::spawn(move || role.standby(|| !rx.is_empty(), Some(CLAIM_WAIT)))
    };
    role.step_aside(|| !rx.is_empty());
    assert!(tx.send(stop(1)));
    assert!(standby.join().unwrap(), "the standby claimed the role");
    // The old holder finds it taken.
    assert!(!role.resume());
}

#[test]
fn a_command_queued_before_the_holder_steps_aside_goes_to_a_standby() {
    let (tx, rx, role) = queue();
    assert!(tx.send(stop(1)));
    let standby = {
        let (role, rx) = (role.clone(), rx.clone());
        std::thread::spawn(move || role.standby(|| !rx.is_empty(), Some(CLAIM_WAIT)))
    };
    role.step_aside(|| !rx.is_empty());
    assert!(standby.join().unwrap());
    assert!(!role.resume());
}

#[test]
fn a_standby_never_claims_a_held_role() {
    let (tx, rx, role) = queue();
    assert!(tx.send(stop(1)));
    assert!(!role.standby(|| !rx.is_empty(), Some(NO_CLAIM_WAIT)));
}

/// Threads take commands only while they hold the role, step aside after each batch, and take
/// it back or wait as standbys (with no timeout: a lost wake-up would leave commands untaken
/// and fail the wait): never two holders, and every command taken once and in order.
#[test]
fn holders_and_standbys_take_every_command_once_in_order() {
    const COMMANDS: u64 = 20_000;
    const THREADS: usize = 3;
    /// A thread that takes it leaves (one per thread, after the commands).
    const LEAVE: u64 = u64::MAX;
    let (tx, rx, role) = queue();
    let holders = Arc::new(AtomicUsize::new(0));
    let taken = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    for t in 0..THREADS {
        let (rx, role, holders, taken) = (rx.clone(), role.clone(), holders.clone(), taken.clone());
        // The first thread starts as the holder; the others as standbys.
        threads.push(std::thread::spawn(move || {
            let mut holding = t == 0;
            loop {
                if !holding {
                    holding = role.standby(|| !rx.is_empty(), None);
                    continue;
                }
                assert_eq!(holders.fetch_add(1, Ordering::SeqCst), 0, "two holders at once");
                let mut leave = false;
                while let Ok(Command::Stop { actor }) = rx.try_recv() {
                    if actor == LEAVE {
                        leave = true;
                        break;
                    }
                    taken.lock().unwrap().push(actor);
                }
                holders.fetch_sub(1, Ordering::SeqCst);
                role.step_aside(|| !rx.is_empty());
                if leave {
                    return;
                }
                // What the holder would run meanwhile.
                for _ in 0..(t * 50) {
                    std::hint::spin_loop();
                }
                holding = role.resume();
            }
        }));
    }
    for i in 0..COMMANDS {
        assert!(tx.send(stop(i)));
        if i % 7 == 0 {
            std::thread::yield_now();
        }
    }
    for _ in 0..THREADS {
        assert!(tx.send(stop(LEAVE)));
    }
    let (joined_tx, joined) = unbounded();
    std::thread::spawn(move || {
        for t in threads {
            t.join().unwrap();
        }
        let _ = joined_tx.send(());
    });
    joined.recv_timeout(CLAIM_WAIT).expect("every thread took its leave: no command left untaken");
    assert_eq!(*taken.lock().unwrap(), (0..COMMANDS).collect::<Vec<_>>());
}
