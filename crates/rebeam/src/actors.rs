//! Python actors from Rust: spawning them, alone or in supervision trees, and calling them.
//!
//! The rules:
//! - [`Spawn::new`] names a `GenPy` class as `"package.module:Class"`; the worker imports it
//!   and constructs `Class(*args, **kwargs)` from the neutral values given (the module must be
//!   importable by the workers: installed, or on `PYTHONPATH`).
//! - Messages and replies are neutral values ([`crate::value`]), never pickles: a Python
//!   handler receives dicts, lists and NumPy arrays, and what it returns comes back the same way.
//! - [`Runtime::call`] waits up to its timeout, kept on this side to the moment: a control
//!   loop's 5 ms deadline is 5 ms (the governor gives up on the call too, but only at its next
//!   sweep, up to a second later; its late answer is dropped here). A handler that
//!   raised is [`Error::Remote`] with the Python exception and traceback; `response_error(x)`
//!   is [`Error::ErrorReply`] with `x`; no answer in time is [`Error::Timeout`].
//! - The `_async` forms run the same request on tokio's blocking pool: they never block the
//!   executor, and they need a tokio runtime.

use std::time::Duration;

use rebeam_proto::value::{decode_value, encode_value};
use rebeam_proto::{
    ActorRef, ChildCode, ChildSpec, ErrorInfo, ErrorKind, Outcome, Request, Response, Restart, Status, Strategy,
    Target, TreeSpec,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::value::{to_value, Value};
use crate::{Error, Runtime};

/// How long the governor may take to say whether a cast was delivered.
pub const CAST_ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a spawn or a tree start may take (importing the class, its `@start()` hook).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Whom a message is for: an actor's registered name or its [`ActorRef`].
pub trait IntoTarget {
    /// The target as the wire names it.
    fn into_target(self) -> Target;
}

impl IntoTarget for &str {
    fn into_target(self) -> Target {
        Target::Name(self.to_owned())
    }
}

impl IntoTarget for String {
    fn into_target(self) -> Target {
        Target::Name(self)
    }
}

impl IntoTarget for &ActorRef {
    fn into_target(self) -> Target {
        Target::Actor(self.id)
    }
}

/// A Python actor to start: its class, constructor arguments, name and restart kind.
///
/// ```
/// let spec = rebeam::Spawn::new("policies.pd:Policy").name("policy").kwarg("gain", &2.5)?;
/// # Ok::<(), rebeam::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Spawn {
    class: String,
    name: Option<String>,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
    restart: Restart,
    shutdown: Option<Duration>,
}

impl Spawn {
    /// The actor of class `"package.module:Class"`, permanent, unnamed, with no arguments.
    pub fn new(class: impl Into<String>) -> Spawn {
        Spawn {
            class: class.into(),
            name: None,
            args: vec![],
            kwargs: vec![],
            restart: Restart::Permanent,
            shutdown: None,
        }
    }

    /// Registers the actor under `name` (the name survives restarts).
    pub fn name(mut self, name: impl Into<String>) -> Spawn {
        self.name = Some(name.into());
        self
    }

    /// Appends a positional constructor argument.
    pub fn arg<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Spawn, Error> {
        self.args.push(to_value(value)?);
        Ok(self)
    }

    /// Sets a keyword constructor argument.
    pub fn kwarg<T: Serialize + ?Sized>(mut self, key: impl Into<String>, value: &T) -> Result<Spawn, Error> {
        self.kwargs.push((key.into(), to_value(value)?));
        Ok(self)
    }

    /// When a supervisor starts it again: permanent (always), transient (after a failure),
    /// temporary (never).
    pub fn restart(mut self, restart: Restart) -> Spawn {
        self.restart = restart;
        self
    }

    /// How long it gets to stop politely before it is killed (default: the governor's).
    pub fn shutdown(mut self, timeout: Duration) -> Spawn {
        self.shutdown = Some(timeout);
        self
    }

    fn child_spec(&self) -> ChildSpec {
        let spec = Value::Map(vec![
            ("class".into(), Value::Str(self.class.clone())),
            ("args".into(), Value::List(self.args.clone())),
            ("kwargs".into(), Value::Map(self.kwargs.clone())),
        ]);
        ChildSpec {
            name: self.name.clone(),
            label: self.name.clone().unwrap_or_else(|| self.class.clone()),
            restart: self.restart,
            shutdown_ms: self.shutdown.map(|d| d.as_millis() as u64),
            code: ChildCode::Actor { class_name: self.class.clone(), instance: encode_value(&spec) },
            group: None,
            node: Default::default(),
        }
    }
}

/// A supervisor and its children, started in order.
#[derive(Debug, Clone)]
pub struct Tree {
    name: Option<String>,
    strategy: Strategy,
    max_restarts: u32,
    max_seconds: Duration,
    children: Vec<Spawn>,
}

/// A supervisor's default intensity, as in Python's `Supervisor`: 3 restarts in 5 seconds.
pub const DEFAULT_MAX_RESTARTS: u32 = 3;
/// The window of [`DEFAULT_MAX_RESTARTS`].
pub const DEFAULT_MAX_SECONDS: Duration = Duration::from_secs(5);

impl Tree {
    /// A supervisor of `strategy` with the default intensity and no children yet.
    pub fn new(strategy: Strategy) -> Tree {
        Tree {
            name: None,
            strategy,
            max_restarts: DEFAULT_MAX_RESTARTS,
            max_seconds: DEFAULT_MAX_SECONDS,
            children: vec![],
        }
    }

    /// Registers the supervisor under `name`.
    pub fn name(mut self, name: impl Into<String>) -> Tree {
        self.name = Some(name.into());
        self
    }

    /// At most `restarts` restarts within `within`, else the supervisor gives up.
    pub fn intensity(mut self, restarts: u32, within: Duration) -> Tree {
        self.max_restarts = restarts;
        self.max_seconds = within;
        self
    }

    /// Appends a child; children start in the order added and stop in reverse.
    pub fn child(mut self, child: Spawn) -> Tree {
        self.children.push(child);
        self
    }
}

fn remote(target: &Target, subject: &str, info: ErrorInfo, timeout: Duration) -> Error {
    match info.kind {
        ErrorKind::Timeout => Error::Timeout { target: target.to_string(), subject: subject.into(), timeout },
        _ => Error::Remote { target: target.to_string(), subject: subject.into(), info: Box::new(info) },
    }
}

impl Runtime {
    /// Starts an actor outside any supervision tree and returns it once it has started.
    pub fn spawn(&self, spec: Spawn) -> Result<ActorRef, Error> {
        let label = spec.class.clone();
        match self.client.request(Request::Spawn { child: spec.child_spec().into() }, Some(START_TIMEOUT))? {
            Response::Spawned(Ok(actor)) => Ok(actor),
            Response::Spawned(Err(info)) | Response::Refused(info) => {
                Err(Error::StartFailed { what: label, info: Box::new(info) })
            }
            other => Err(Error::Unexpected(format!("{other:?}"))),
        }
    }

    /// Starts a supervision tree; returns its id once every child has started.
    pub fn start_tree(&self, tree: Tree) -> Result<u64, Error> {
        let what = tree.name.clone().unwrap_or_else(|| "a supervision tree".into());
        let spec = TreeSpec {
            name: tree.name,
            strategy: tree.strategy,
            max_restarts: tree.max_restarts,
            max_seconds_ms: tree.max_seconds.as_millis() as u64,
            children: tree.children.iter().map(Spawn::child_spec).collect(),
        };
        match self.client.request(Request::StartTree { spec }, Some(START_TIMEOUT))? {
            Response::TreeStarted(Ok(id)) => Ok(id),
            Response::TreeStarted(Err(info)) | Response::Refused(info) => {
                Err(Error::StartFailed { what, info: Box::new(info) })
            }
            other => Err(Error::Unexpected(format!("{other:?}"))),
        }
    }

    /// Calls `target`'s handler for `subject` with `input` and decodes its reply as `Out`.
    pub fn call<In: Serialize + ?Sized, Out: DeserializeOwned>(
        &self,
        target: impl IntoTarget,
        subject: &str,
        input: &In,
        timeout: Duration,
    ) -> Result<Out, Error> {
        self.decode(self.call_value(target, subject, to_value(input)?, timeout)?)
    }

    /// [`Runtime::call`] with neutral values on both sides.
    pub fn call_value(
        &self,
        target: impl IntoTarget,
        subject: &str,
        input: Value,
        timeout: Duration,
    ) -> Result<Value, Error> {
        call_blocking(&self.client, target.into_target(), subject.to_owned(), input, timeout)
    }

    /// [`Runtime::call`] without blocking the tokio executor.
    pub async fn call_async<In: Serialize + ?Sized, Out: DeserializeOwned>(
        &self,
        target: impl IntoTarget,
        subject: &str,
        input: &In,
        timeout: Duration,
    ) -> Result<Out, Error> {
        let (client, target, subject, input) =
            (self.client.clone(), target.into_target(), subject.to_owned(), to_value(input)?);
        let reply = tokio::task::spawn_blocking(move || call_blocking(&client, target, subject, input, timeout))
            .await
            .map_err(|e| Error::Unexpected(format!("the call's task failed: {e}")))??;
        self.decode(reply)
    }

    /// Sends `input` to `target` without waiting for an answer. False if it was not delivered
    /// (no such actor, or its mailbox was full).
    pub fn cast<In: Serialize + ?Sized>(
        &self,
        target: impl IntoTarget,
        subject: &str,
        input: &In,
    ) -> Result<bool, Error> {
        cast_blocking(&self.client, target.into_target(), subject.to_owned(), to_value(input)?)
    }

    /// [`Runtime::cast`] without blocking the tokio executor.
    pub async fn cast_async<In: Serialize + ?Sized>(
        &self,
        target: impl IntoTarget,
        subject: &str,
        input: &In,
    ) -> Result<bool, Error> {
        let (client, target, subject, input) =
            (self.client.clone(), target.into_target(), subject.to_owned(), to_value(input)?);
        tokio::task::spawn_blocking(move || cast_blocking(&client, target, subject, input))
            .await
            .map_err(|e| Error::Unexpected(format!("the cast's task failed: {e}")))?
    }
}

fn call_blocking(
    client: &rebeam_client::Client,
    target: Target,
    subject: String,
    input: Value,
    timeout: Duration,
) -> Result<Value, Error> {
    let body = Request::Call {
        target: target.clone(),
        subject: subject.clone(),
        sender: None,
        payload: encode_value(&input),
        timeout_ms: timeout.as_millis().max(1) as u64,
    };
    let answer = match client.request(body, Some(timeout)) {
        Err(rebeam_client::ClientError::Timeout) => {
            return Err(Error::Timeout { target: target.to_string(), subject, timeout })
        }
        other => other?,
    };
    match answer {
        Response::Call(Outcome::Reply { status, payload }) => {
            let value = decode_value(&payload).map_err(|e| Error::Decode { path: "$".into(), why: e.0 })?;
            match status {
                Status::Ok => Ok(value),
                Status::Error => Err(Error::ErrorReply { target: target.to_string(), subject, value }),
            }
        }
        Response::Call(Outcome::Failed(info)) | Response::Refused(info) => {
            Err(remote(&target, &subject, info, timeout))
        }
        other => Err(Error::Unexpected(format!("{other:?}"))),
    }
}

fn cast_blocking(client: &rebeam_client::Client, target: Target, subject: String, input: Value) -> Result<bool, Error> {
    let body =
        Request::Cast { target: target.clone(), subject: subject.clone(), sender: None, payload: encode_value(&input) };
    // On its ring at once if it can go there without waiting: delivered, with no answer to wait for.
    let Some(body) = client.try_cast(body) else { return Ok(true) };
    match client.request(body, Some(CAST_ACK_TIMEOUT))? {
        Response::Cast { delivered } => Ok(delivered),
        Response::Refused(info) => Err(remote(&target, &subject, info, Duration::ZERO)),
        other => Err(Error::Unexpected(format!("{other:?}"))),
    }
}
