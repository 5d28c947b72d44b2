//! Opaque handles: a Python object that stays in its worker, referenced from the host.
//!
//! A handler returns `rebeam.handle(obj)`; the host decodes the reply's field as a [`Handle`]
//! and passes `&handle` in a later call's input, and the handler of that call receives `obj`
//! itself — a model or a tensor never round-trips through the host.
//!
//! The rules:
//! - **Where it lives**: in a table of the worker process that made it, owned by the actor
//!   whose handler called `rebeam.handle` (the *holder*). On the wire a handle is the map
//!   `{HANDLE_KEY: {"id", "worker", "pid", "owner"}}`; the worker replaces it with the object
//!   when a host message carrying it is decoded.
//! - **How it is freed**: dropping the last [`Handle`] sends the holder a release (a cast the
//!   worker takes before any handler, without waiting: dropping never blocks); the table lets
//!   the object go and its finalizer runs. When the holder ends (stopped, crashed, or its worker
//!   died) every handle it made ends with it: its release could no longer reach it. (Under
//!   `--safety require-armed` the release is a message like any other: while the system is
//!   disarmed it is refused, and the object stays until its holder ends.)
//! - **Across workers: refused, not moved.** A handle used in a call to an actor of another
//!   worker is an error that names both workers. Moving would mean pickling the object, which is
//!   exactly what a handle is for avoiding (a model with open files or a GPU tensor may not
//!   pickle, and a large one costs what the handle saves); call an actor in the holder's worker
//!   instead (the holder itself is the sure one).
//! - **After the holder's end**: using the handle is an error that says it is gone and why
//!   (released, the holder ended, or its worker is not the one called — a worker that died
//!   took its objects with it); make a new handle.
//! - A handle decodes only from a reply read by a [`Runtime`] ([`Runtime::call`],
//!   [`Runtime::call_async`], [`Runtime::decode`]): it needs that runtime to release it.
//!   Elsewhere (plain [`crate::from_value`]) decoding one is an error saying so.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use rebeam_client::Client;
use rebeam_proto::value::{encode_value, HANDLE_KEY, HANDLE_RELEASE};
use rebeam_proto::{Request, Target};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::value::{from_value, Value};
use crate::{Error, Runtime};

/// A Python object kept in its worker, usable as an argument to later calls.
///
/// Not `Clone`: dropping it releases the object. Share it behind an `Arc` to use it from
/// several places.
///
/// ```no_run
/// use std::time::Duration;
/// use rebeam::{Handle, Runtime, Spawn};
///
/// let runtime = Runtime::builder().venv(".venv").start()?;
/// // `models.py`: `@receive("load")` returns `rebeam.handle(Model(path))`,
/// // `@receive("infer")` gets `{"model": <the Model itself>, "x": ...}`.
/// runtime.spawn(Spawn::new("models:Loader").name("loader"))?;
/// let model: Handle = runtime.call("loader", "load", "weights.bin", Duration::from_secs(5))?;
/// #[derive(serde::Serialize)]
/// struct Infer<'a> { model: &'a Handle, x: Vec<f64> }
/// let y: Vec<f64> = runtime.call("loader", "infer", &Infer { model: &model, x: vec![1.0] }, Duration::from_secs(1))?;
/// drop(model); // the worker lets the Model go
/// # let _ = y;
/// # Ok::<(), rebeam::Error>(())
/// ```
#[derive(Debug)]
pub struct Handle {
    id: u64,
    worker: String,
    pid: u32,
    owner: u64,
    // Weak: a handle kept past its runtime neither keeps the run alive nor sends anything.
    runtime: Weak<Client>,
}

/// The handle as the wire spells it (the inner map of `{HANDLE_KEY: ...}`).
#[derive(Serialize, Deserialize)]
struct Wire {
    id: u64,
    worker: String,
    pid: u32,
    owner: u64,
}

impl Handle {
    /// The handle's number in its worker's table.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The process id of the worker that holds the object.
    pub fn worker_pid(&self) -> u32 {
        self.pid
    }

    /// The id of the actor that made it (its holder: the handle ends when that actor does).
    pub fn holder(&self) -> u64 {
        self.owner
    }
}

impl Serialize for Handle {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let wire = Wire { id: self.id, worker: self.worker.clone(), pid: self.pid, owner: self.owner };
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry(HANDLE_KEY, &wire)?;
        map.end()
    }
}

thread_local! {
    // The runtime whose reply is being decoded on this thread (see `Runtime::decode`).
    static DECODING_FOR: RefCell<Option<Weak<Client>>> = const { RefCell::new(None) };
}

impl<'de> Deserialize<'de> for Handle {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Handle, D::Error> {
        let value = Value::deserialize(d)?;
        let wire = match &value {
            Value::Map(items) if items.len() == 1 && items[0].0 == HANDLE_KEY => from_value::<Wire>(items[0].1.clone())
                .map_err(|e| D::Error::custom(format!("a malformed handle: {e}")))?,
            other => {
                return Err(D::Error::custom(format!(
                    "expected a handle (what `rebeam.handle(obj)` returns), Python sent {other:?}"
                )))
            }
        };
        let runtime = DECODING_FOR.with(|r| r.borrow().clone()).ok_or_else(|| {
            D::Error::custom("a Handle decodes only from a runtime's reply (Runtime::call or Runtime::decode)")
        })?;
        Ok(Handle { id: wire.id, worker: wire.worker, pid: wire.pid, owner: wire.owner, runtime })
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let Some(client) = self.runtime.upgrade() else { return };
        let body = Request::Cast {
            target: Target::Actor(self.owner),
            subject: HANDLE_RELEASE.into(),
            sender: None,
            payload: encode_value(&Value::Map(vec![("id".into(), Value::Int(self.id as i64))])),
        };
        // Unawaited: a holder already gone has released everything it held.
        let _ = client.send_unawaited(body);
    }
}

/// `value` decoded as `T` for `client`'s runtime: handles in it release through that runtime.
pub(crate) fn decode_for<T: DeserializeOwned>(client: Weak<Client>, value: Value) -> Result<T, Error> {
    let previous = DECODING_FOR.with(|r| r.replace(Some(client)));
    let out = from_value(value);
    DECODING_FOR.with(|r| *r.borrow_mut() = previous);
    out
}

impl Runtime {
    /// Decodes a neutral value (from [`Runtime::call_value`]) as `T`; unlike
    /// [`crate::from_value`], handles in it are this runtime's.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// let runtime = rebeam::Runtime::builder().venv(".venv").start()?;
    /// let reply = runtime.call_value("loader", "load", rebeam::Value::Str("w.bin".into()), Duration::from_secs(5))?;
    /// let model: rebeam::Handle = runtime.decode(reply)?;
    /// # let _ = model;
    /// # Ok::<(), rebeam::Error>(())
    /// ```
    pub fn decode<T: DeserializeOwned>(&self, value: Value) -> Result<T, Error> {
        decode_for(Arc::downgrade(&self.client), value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::to_value;

    fn wire(id: i64) -> Value {
        let inner = vec![
            ("id".into(), Value::Int(id)),
            ("worker".into(), Value::Str("ab12".into())),
            ("pid".into(), Value::Int(4242)),
            ("owner".into(), Value::Int(7)),
        ];
        Value::Map(vec![(HANDLE_KEY.into(), Value::Map(inner))])
    }

    #[test]
    fn outside_a_runtime_a_handle_does_not_decode_and_says_why() {
        let err = from_value::<Handle>(wire(3)).unwrap_err();
        assert!(err.to_string().contains("only from a runtime's reply"), "{err}");
    }

    #[test]
    fn a_handle_is_written_as_it_was_read() {
        // A runtime already gone: the handle decodes, and its drop sends nothing.
        let h: Handle = decode_for(Weak::new(), wire(3)).unwrap();
        assert_eq!((h.id(), h.worker_pid(), h.holder()), (3, 4242, 7));
        assert_eq!(to_value(&h).unwrap(), wire(3));
    }

    #[test]
    fn anything_else_is_refused_with_what_came() {
        let err = from_value::<Handle>(Value::Int(3)).unwrap_err();
        assert!(err.to_string().contains("expected a handle") && err.to_string().contains("Int(3)"), "{err}");
        let bad = Value::Map(vec![(HANDLE_KEY.into(), Value::Int(1))]);
        assert!(from_value::<Handle>(bad).unwrap_err().to_string().contains("malformed handle"));
    }
}
