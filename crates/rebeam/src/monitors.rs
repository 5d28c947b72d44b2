//! Monitors as streams of down notices, and the thread that reads the host's commands.
//!
//! The rules:
//! - [`Runtime::monitor`] watches an actor: exactly one [`Down`] comes on its [`Monitor`] when
//!   that actor ends (normally, by shutdown, by a crash with its error, or killed), and then
//!   the stream ends. A target already gone gives its notice at once, as in Erlang
//!   (`Exit::Killed("noproc: …")`).
//! - Dropping a [`Monitor`] removes it at the governor: no notice is kept for nobody.
//! - One thread per runtime drains the host's command queue (the governor sends the host, as
//!   the main process, down notices, publications and shutdown; nothing here runs Python code, so other
//!   commands are dropped; publications go to their [`crate::Subscription`] or
//!   [`crate::Transitions`] stream). It holds the monitors' table while a monitor is being set up, so a
//!   notice that overtakes the answer to `monitor` still finds its stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rebeam_client::Client;
use rebeam_proto::{ActorRef, Command, Exit, Request, Response, SafetyTransition};
use tokio::sync::mpsc;

use crate::actors::{IntoTarget, START_TIMEOUT};
use crate::{Error, Runtime};

/// The end of a monitored actor.
#[derive(Debug, Clone, PartialEq)]
pub struct Down {
    /// The monitor that saw it.
    pub monitor: u64,
    /// The actor that ended.
    pub actor: ActorRef,
    /// How it ended.
    pub reason: Exit,
}

/// Where each monitor's notice, and each transitions stream's publications, go.
#[derive(Clone, Default)]
pub(crate) struct Tables {
    pub(crate) downs: Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Down>>>>,
    pub(crate) transitions: Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<SafetyTransition>>>>,
    pub(crate) publications: Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<crate::Publication>>>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere leaves the table whole (each change is one insert or remove).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts the thread that drains `client`'s commands until the connection ends.
pub(crate) fn start_dispatch(client: Arc<Client>, tables: Tables) -> std::io::Result<()> {
    std::thread::Builder::new().name("rebeam-host-commands".into()).spawn(move || loop {
        match client.next_command(None) {
            Some(Command::Down { monitor, actor, reason, .. }) => {
                if let Some(tx) = lock(&tables.downs).remove(&monitor) {
                    let _ = tx.send(Down { monitor, actor, reason });
                }
            }
            Some(Command::Publication { subscription, topic, payload, dropped, .. }) => {
                if let Some(tx) = lock(&tables.publications).get(&subscription) {
                    let _ = tx.send(crate::bus::received(topic, &payload, dropped));
                    continue;
                }
                let transition = crate::transitions::parse(&payload.data);
                if let (Some(tx), Some(t)) = (lock(&tables.transitions).get(&subscription), transition) {
                    let _ = tx.send(t);
                }
            }
            Some(Command::Shutdown { .. }) if client.closed() => {
                // Every stream ends: nothing can come any more.
                lock(&tables.downs).clear();
                lock(&tables.transitions).clear();
                lock(&tables.publications).clear();
                return;
            }
            _ => {}
        }
    })?;
    Ok(())
}

/// A stream of one actor's down notice (see the module doc).
pub struct Monitor {
    id: u64,
    rx: mpsc::UnboundedReceiver<Down>,
    client: Arc<Client>,
    tables: Tables,
}

impl Monitor {
    /// The monitor's id (as in [`Down::monitor`]).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Waits for the notice; None once the run has ended without one. Not from inside a tokio
    /// runtime: use [`Monitor::down`] there.
    pub fn recv(&mut self) -> Option<Down> {
        self.rx.blocking_recv()
    }

    /// The notice if it has come, without waiting.
    pub fn try_recv(&mut self) -> Option<Down> {
        self.rx.try_recv().ok()
    }

    /// Waits for the notice without blocking the executor.
    pub async fn down(&mut self) -> Option<Down> {
        self.rx.recv().await
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if lock(&self.tables.downs).remove(&self.id).is_some() {
            let _ = self.client.send_unawaited(Request::Demonitor { monitor: self.id });
        }
    }
}

impl Runtime {
    /// Watches `target`: its end arrives on the returned [`Monitor`].
    pub fn monitor(&self, target: impl IntoTarget) -> Result<Monitor, Error> {
        let target = target.into_target();
        // Held across the request: see the module doc.
        let mut table = lock(&self.tables.downs);
        let id = match self
            .client
            .request(Request::Monitor { watcher: None, target: target.clone() }, Some(START_TIMEOUT))?
        {
            Response::Monitored(Ok(id)) => id,
            Response::Monitored(Err(info)) | Response::Refused(info) => {
                return Err(Error::Remote {
                    target: target.to_string(),
                    subject: "monitor".into(),
                    info: Box::new(info),
                })
            }
            other => return Err(Error::Unexpected(format!("{other:?}"))),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        table.insert(id, tx);
        drop(table);
        Ok(Monitor { id, rx, client: self.client.clone(), tables: self.tables.clone() })
    }
}
