//! Host Python actors from a Rust program.
//!
//! A [`Runtime`] is a rebeam run owned by this process: a governor and its Python workers, with
//! this process connected to it as the host. Dropping the runtime shuts all of it down.
//!
//! ```no_run
//! use std::time::Duration;
//! use rebeam::{Runtime, Spawn, Strategy, Tree};
//!
//! #[derive(serde::Serialize)]
//! struct Goal { x: f64, joints: Vec<f64> }
//! #[derive(serde::Deserialize)]
//! struct Plan { joints: Vec<f64> }
//!
//! let runtime = Runtime::builder().venv(".venv").workers(2).start()?;
//! // `policies/pd.py` defines `class Policy(GenPy)` with a `@receive("plan")` handler.
//! let policy = Spawn::new("policies.pd:Policy").name("policy").kwarg("gain", &0.5)?;
//! runtime.start_tree(Tree::new(Strategy::OneForOne).child(policy))?;
//! runtime.arm()?;
//! let goal = Goal { x: 0.3, joints: vec![0.0; 6] };
//! let plan: Plan = runtime.call("policy", "plan", &goal, Duration::from_millis(5))?;
//! runtime.disarm()?;
//! drop(runtime); // the governor and every worker are gone when this returns
//! # let _ = plan;
//! # Ok::<(), rebeam::Error>(())
//! ```
//!
//! The rules this crate keeps:
//! - The host never links Python. The governor runs as its own process (the `rebeam` command,
//!   `rebeam serve`), a child of the host, and the Python processes are the governor's
//!   children: a Python crash or a stuck C call costs a worker, never the host. (Why not the
//!   governor as a library on a thread of the host: it takes over what belongs to the whole
//!   process — SIGINT and SIGTERM, reaping *every* child, a panic hook that exits — and a host
//!   must keep those.)
//! - The host is the run's main process (library mode): the run lasts while the [`Runtime`]
//!   does. If the host dies without dropping it, the governor sees its parent gone and shuts
//!   the run down; if the governor dies, its workers die with it.
//! - Values cross as the neutral model of [`value`], never as pickles (see [`Spawn`] and
//!   [`Runtime::call`] for actors, [`geometry`] for poses, [`Runtime::monitor`] for down
//!   notices, [`Runtime::arm`] for safety); a Python object too big or too live to cross stays
//!   in its worker behind a [`Handle`].
//! - What the governor and the Python processes write on stderr becomes `tracing` events of
//!   the host, under the target [`LOG_TARGET`], at the level the line names.

#![warn(missing_docs)]

mod actors;
mod bus;
mod error;
pub mod geometry;
mod handles;
mod logs;
pub mod messages;
mod monitors;
mod node;
mod runtime;
mod safety;
mod start;
mod transitions;
pub mod value;

pub use actors::{IntoTarget, Spawn, Tree, DEFAULT_MAX_RESTARTS, DEFAULT_MAX_SECONDS};
pub use bus::{Publication, Subscription, SUBSCRIPTION_QUEUE};
pub use error::Error;
pub use handles::Handle;
pub use monitors::{Down, Monitor};
pub use rebeam_proto::{ActorRef, ErrorInfo, ErrorKind, Exit, Restart, Strategy};
pub use rebeam_proto::{Safety, SafetyTransition};
pub use runtime::{Builder, Runtime, SafetyMode};
pub use transitions::{Transitions, TRANSITION_QUEUE};
pub use value::{from_value, to_value, NdArray, Value};

/// The `tracing` target of events forwarded from the governor and the Python processes.
pub const LOG_TARGET: &str = "rebeam";
