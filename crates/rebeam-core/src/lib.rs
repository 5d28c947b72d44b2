//! Pure logic of rebeam, free of I/O: the governor wires these to sockets and processes.
//!
//! Each module owns one concern of the governor's state and states its rules in its doc:
//! `registry` (process ids, the actor table, names), `calls` (deliveries in flight),
//! `pool` (placement and worker replacement), `supervision` (restart arithmetic), `trees`
//! (supervision trees as one machine: slots, start/stop sequencing, adoption, escalation),
//! `cowns` (behaviour scheduling), `boc` (where behaviours run and how values move), `safety`
//! (the arm/disarm machine), `gate` (gated work and the disarm ladder), `bus` (subscriptions
//! and fan-out), `topics` (the bus's patterns and throttles), `noticeboard`.

pub mod boc;
pub mod bus;
pub mod calls;
pub mod cowns;
pub mod defaults;
pub mod gate;
pub mod noticeboard;
pub mod pool;
pub mod registry;
pub mod safety;
pub mod supervision;
pub mod topics;
pub mod trees;
