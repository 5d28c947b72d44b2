//! Pure logic of rebeam, free of I/O: the governor wires these to sockets and processes.

pub mod calls;
pub mod cowns;
pub mod noticeboard;
pub mod registry;
pub mod safety;
pub mod supervision;
pub mod topics;
