//! Pure logic of rebeam, free of I/O: the governor wires these to sockets and processes.

pub mod cowns;
pub mod defaults;
pub mod noticeboard;
pub mod safety;
pub mod supervision;
pub mod topics;
