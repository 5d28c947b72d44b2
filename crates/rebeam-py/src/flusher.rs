//! The thread that sends held frames once the Python burst that held them is over.
//!
//! rebeam-client holds frames nobody waits for (quiet `@when`s, a worker's behaviours' "done")
//! so that a burst of them goes in one write (its `batch` module). The rules here:
//! - While a thread runs Python, the frames it holds wait; anything else it sends, a full
//!   batch, or a blocking call of its own sends them first.
//! - Once frames are held the flusher asks for the GIL, and gets it only when the holding
//!   thread lets Python go: it blocks (a wait, a sleep, I/O), or the interpreter's switch
//!   interval makes it take turns. The flusher lets the GIL go at once and sends what is held.
//!   No timer is involved: a lone `@when` followed by a blocking call goes at once.
//! - Started by the first frame held; stopped (and joined) by `stop()`, which Python calls at
//!   exit, before the interpreter finalises: a thread that asks for the GIL while it finalises
//!   is ended inside that call, so the flusher never asks after `stop()`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use pyo3::Python;
use rebeam_client::Client;

#[derive(Default)]
pub(crate) struct Flusher {
    stop: Arc<AtomicBool>,
    started: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Flusher {
    /// Starts the thread, once (cheap after that: one atomic load).
    pub(crate) fn ensure(&self, client: &Arc<Client>) {
        if self.started.load(Ordering::Relaxed) || self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let (client, stop) = (client.clone(), self.stop.clone());
        let spawned = std::thread::Builder::new().name("rebeam-flusher".into()).spawn(move || {
            while client.wait_held(&stop) {
                // Waits for the holding thread to let Python go; None once Python is finalising
                // (never after `stop()`): send what is held and end.
                let attached = Python::try_attach(|_py| ()).is_some();
                let _ = client.flush_held(); // a write error is the connection's end, seen elsewhere
                if !attached {
                    break;
                }
            }
        });
        // Without the thread, held frames still go with the next write or full batch.
        if let Ok(handle) = spawned {
            *self.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        }
    }

    /// Whether `stop()` was called: nothing may be held after it (no thread would send it).
    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Stops the thread and waits for it (the caller has let the GIL go, which the thread may
    /// be waiting for); what is held is sent.
    pub(crate) fn stop(&self, client: &Client) {
        self.stop.store(true, Ordering::SeqCst);
        client.wake_held();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
        let _ = client.flush_held();
    }
}
