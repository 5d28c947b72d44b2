//! How a well-behaved fake process answers what the governor asked of it.

use rebeam_proto::{ErrorKind, Event, Frame, Outcome, Status};

use super::super::{gen, Rng};
use super::Harness;
use crate::process::ProcessExit;

impl Harness {
    /// A well-behaved process does what it was asked: starts, replies, stops, surrenders, runs.
    pub(super) fn answer(&mut self) -> Result<bool, String> {
        let Some(i) = self.pick(|f, _, _| f.talking() && (f.owes() || f.shutdown_asked)) else {
            return Ok(false);
        };
        let f = &self.fakes[i];
        if f.shutdown_asked && (!f.owes() || self.rng.chance(1, 3)) {
            self.note(format!("process {i} exits after Shutdown"));
            self.vanish(i, ProcessExit::Code(0));
            return Ok(true);
        }
        let (events, note) = self.answer_one(i);
        if let Some(note) = note {
            self.note(note);
        }
        for event in events {
            if self.fakes[i].talking() {
                self.send_maybe_lent(i, Frame::Event(event))?;
            }
        }
        Ok(true)
    }

    /// The events that answer one thing process `i` owes (or why it answers nothing).
    fn answer_one(&mut self, i: usize) -> (Vec<Event>, Option<String>) {
        let rng = &mut self.rng;
        let f = &mut self.fakes[i];
        let take = |rng: &mut Rng, n: usize| rng.below(n as u64) as usize;
        loop {
            match rng.below(5) {
                0 if !f.starts.is_empty() => {
                    let a = f.starts.swap_remove(take(rng, f.starts.len()));
                    let result =
                        if rng.chance(6, 7) { Ok(gen::gating(rng)) } else { Err(gen::error(rng, ErrorKind::Crashed)) };
                    if result.is_ok() {
                        f.hosted.push(a);
                    }
                    return (vec![Event::Started { actor: a, result }], None);
                }
                1 if !f.calls.is_empty() => {
                    let (delivery, a) = f.calls.swap_remove(take(rng, f.calls.len()));
                    let outcome = match rng.below(10) {
                        0..=6 => Outcome::Reply { status: Status::Ok, payload: gen::payload(rng) },
                        7 => Outcome::Reply { status: Status::Error, payload: gen::payload(rng) },
                        _ => Outcome::Failed(gen::error(rng, ErrorKind::Crashed)),
                    };
                    let mut events = vec![];
                    // A handler that raised ends its actor, as a real worker does, mostly.
                    let exits = matches!(outcome, Outcome::Failed(_)) && rng.chance(4, 5) && f.hosted.contains(&a);
                    events.push(Event::Replied { delivery, outcome });
                    if exits {
                        f.hosted.retain(|&h| h != a);
                        events.push(Event::Exited {
                            actor: a,
                            reason: rebeam_proto::Exit::Crashed(gen::error(rng, ErrorKind::Crashed)),
                            // Its calls still owed are answered later, as a real worker
                            // answers those it took in after the crash (NoProcess).
                            taken_up_to: f.taken,
                        });
                    }
                    return (events, None);
                }
                2 if !f.stops.is_empty() => {
                    let a = f.stops.swap_remove(take(rng, f.stops.len()));
                    // Now and then a stop hangs: the stop deadline must kill the worker.
                    if rng.chance(1, 10) {
                        return (vec![], Some(format!("process {i} ignores Stop of {a}")));
                    }
                    f.hosted.retain(|&h| h != a);
                    return (
                        vec![Event::Exited { actor: a, reason: rebeam_proto::Exit::Shutdown, taken_up_to: u64::MAX }],
                        None,
                    );
                }
                3 if !f.surrenders.is_empty() => {
                    let cown = f.surrenders.swap_remove(take(rng, f.surrenders.len()));
                    return (vec![Event::CownValue { cown, payload: gen::payload(rng) }], None);
                }
                4 if !f.runs.is_empty() => {
                    let behaviour = f.runs.swap_remove(take(rng, f.runs.len()));
                    if rng.chance(1, 20) {
                        return (vec![], Some(format!("process {i} never finishes behaviour {behaviour}")));
                    }
                    return (vec![Event::BehaviourDone { behaviour }], None);
                }
                _ => {}
            }
        }
    }
}
