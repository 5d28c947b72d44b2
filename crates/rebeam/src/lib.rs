//! Host Python actors from a Rust program.
//!
//! A [`Runtime`] is a rebeam run owned by this process: a governor and its Python workers, with
//! this process connected to it as the host. Dropping the runtime shuts all of it down.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! let runtime = rebeam::Runtime::builder().venv(".venv").workers(2).start()?;
//! println!("{} workers, safety {:?}", runtime.workers(), runtime.safety());
//! drop(runtime); // the governor and every worker are gone when this returns
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
//! - What the governor and the Python processes write on stderr becomes `tracing` events of
//!   the host, under the target [`LOG_TARGET`], at the level the line names.

mod error;
mod logs;
mod runtime;
mod safety;
mod start;

pub use error::Error;
pub use rebeam_proto::{Safety, SafetyTransition};
pub use runtime::{Builder, Runtime, SafetyMode};

/// The `tracing` target of events forwarded from the governor and the Python processes.
pub const LOG_TARGET: &str = "rebeam";
