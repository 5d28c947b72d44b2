//! The bus from the host: publishing on any topic, and subscribing with patterns.
//!
//! The rules:
//! - The host owns every topic, the reserved prefixes (`safety.`, `actuator.`, `param.`,
//!   `rebeam.`) included: Python may publish there only where the builder allowed it
//!   ([`crate::Builder::allow_publish`]), the host always may.
//! - A publication from the host is a neutral value: Python subscribers (`rebeam.on(pattern,
//!   fn)`) receive it as dicts, lists and NumPy arrays.
//! - [`Runtime::subscribe`] takes a pattern as Python's `on` does (`*` one segment, `**` any
//!   number) and streams every matching publication, Python's and the host's own, in order.
//!   The governor keeps up to [`SUBSCRIPTION_QUEUE`] not yet taken; beyond that the oldest are
//!   dropped there, and the next one says how many ([`Publication::dropped`]).
//! - What the host can read: Python's `rebeam.publish` sends a payload in the neutral model
//!   when that carries it exactly (`None`, `bool`, `int` in 64 bits, `float`, `str`, `bytes`,
//!   `list`, `dict` with str keys, C-contiguous NumPy arrays of bool, int and float dtypes, nested
//!   of these), and as a pickle otherwise (tuples, dataclasses, NumPy scalars, any object); a
//!   pickle decodes to [`Error::Decode`] naming the topic and saying what to publish instead.
//! - Timestamps: each publication carries when this host took it off the connection, on the
//!   monotonic clock that Python's `time.monotonic_ns` reads and on the wall clock. For the
//!   publisher's own time, publish an envelope (`rebeam.geometry.envelope`, decoded as
//!   [`crate::messages::Envelope`]).
//! - The stream ends (None) when the run ends; dropping it unsubscribes.

use rebeam_proto::value::{decode_value, encode_value, is_value};
use rebeam_proto::{Payload, Request, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::actors::CAST_ACK_TIMEOUT;
use crate::monitors::{lock, Tables};
use crate::value::{from_value, to_value, Value};
use crate::{Error, Runtime};

/// Publications the governor keeps for a subscription that has not taken them yet (Python's
/// default bound too).
pub const SUBSCRIPTION_QUEUE: u32 = rebeam_core::topics::DEFAULT_QUEUE as u32;

/// One publication, as the host received it.
#[derive(Debug, Clone)]
pub struct Publication {
    /// The topic it was published on.
    pub topic: String,
    /// This host's monotonic clock when it arrived, in ns (comparable with Python's
    /// `time.monotonic_ns` on this machine).
    pub monotonic_ns: u64,
    /// The wall clock when it arrived, in ns since the Unix epoch.
    pub wall_ns: u64,
    /// How many publications this subscription's queue dropped before this one, in total.
    pub dropped: u64,
    // The payload, or why the host cannot read it (the publisher sent a pickle).
    payload: Result<Value, String>,
}

impl Publication {
    /// The payload decoded as `T`.
    ///
    /// ```
    /// let p = rebeam::Publication::from_host("sensor.range", rebeam::Value::Float(0.5));
    /// assert_eq!(p.value::<f64>()?, 0.5);
    /// # Ok::<(), rebeam::Error>(())
    /// ```
    pub fn value<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let at = |path: String| format!("topic {:?}: {path}", self.topic);
        match &self.payload {
            Ok(v) => from_value(v.clone()).map_err(|e| match e {
                Error::Decode { path, why } => Error::Decode { path: at(path), why },
                other => other,
            }),
            Err(why) => Err(Error::Decode { path: at("$".into()), why: why.clone() }),
        }
    }

    /// The payload as a neutral value, if the host can read it (see the module doc).
    ///
    /// ```
    /// let p = rebeam::Publication::from_host("a.b", rebeam::Value::Int(1));
    /// assert_eq!(p.raw(), Some(&rebeam::Value::Int(1)));
    /// ```
    pub fn raw(&self) -> Option<&Value> {
        self.payload.as_ref().ok()
    }

    /// A publication stamped now, as if received (for tests of code that consumes them).
    ///
    /// ```
    /// let p = rebeam::Publication::from_host("a.b", rebeam::Value::None);
    /// assert!(p.monotonic_ns > 0 && p.dropped == 0);
    /// ```
    pub fn from_host(topic: impl Into<String>, payload: Value) -> Publication {
        let (monotonic_ns, wall_ns) = crate::messages::clocks_now();
        Publication { topic: topic.into(), payload: Ok(payload), monotonic_ns, wall_ns, dropped: 0 }
    }
}

/// Why a pickled publication cannot be read here, and what to publish instead.
const UNREADABLE: &str = "Python published a value the neutral model cannot carry (it went as a pickle); \
                          publish None, bool, int, float, str, bytes, list, dict with str keys or C-contiguous \
                          NumPy arrays instead (a tuple as a list, a dataclass as a dict, a NumPy scalar as its \
                          .item())";

/// What the reader thread makes of a publication's payload.
pub(crate) fn received(topic: String, payload: &Payload, dropped: u64) -> Publication {
    let (monotonic_ns, wall_ns) = crate::messages::clocks_now();
    let payload = if is_value(payload) { decode_value(payload).map_err(|e| e.0) } else { Err(UNREADABLE.into()) };
    Publication { topic, payload, monotonic_ns, wall_ns, dropped }
}

/// A stream of the publications matching a pattern (see the module doc).
pub struct Subscription {
    id: u64,
    rx: mpsc::UnboundedReceiver<Publication>,
    client: std::sync::Arc<rebeam_client::Client>,
    tables: Tables,
}

impl Subscription {
    /// The next publication; None once the run has ended. Not from inside a tokio runtime:
    /// use [`Subscription::next`] there.
    pub fn recv(&mut self) -> Option<Publication> {
        self.rx.blocking_recv()
    }

    /// The next publication if one has come, without waiting.
    pub fn try_recv(&mut self) -> Option<Publication> {
        self.rx.try_recv().ok()
    }

    /// The next publication, without blocking the executor.
    pub async fn next(&mut self) -> Option<Publication> {
        self.rx.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if lock(&self.tables.publications).remove(&self.id).is_some() {
            let _ = self.client.send_unawaited(Request::Unsubscribe { subscription: self.id });
        }
    }
}

impl Runtime {
    /// Publishes `value` on `topic` to every matching subscription.
    ///
    /// ```no_run
    /// let runtime = rebeam::Runtime::builder().venv(".venv").start()?;
    /// runtime.publish("actuator.arm.goal", &[0.1, 0.2, 0.3])?;
    /// # Ok::<(), rebeam::Error>(())
    /// ```
    pub fn publish<T: Serialize + ?Sized>(&self, topic: &str, value: &T) -> Result<(), Error> {
        let payload = encode_value(&to_value(value)?);
        match self.client.request(Request::Publish { topic: topic.to_owned(), payload }, Some(CAST_ACK_TIMEOUT))? {
            Response::Done => Ok(()),
            Response::Refused(info) => Err(Error::Remote {
                target: format!("topic {topic:?}"),
                subject: "publish".into(),
                info: Box::new(info),
            }),
            other => Err(Error::Unexpected(format!("{other:?}"))),
        }
    }

    /// Every publication matching `pattern` from now on, as a stream.
    ///
    /// ```no_run
    /// let runtime = rebeam::Runtime::builder().venv(".venv").start()?;
    /// let mut joints = runtime.subscribe("sensor.joint.*")?;
    /// while let Some(p) = joints.recv() {
    ///     let angle: f64 = p.value()?;
    ///     println!("{} = {angle} at {} ns", p.topic, p.monotonic_ns);
    /// }
    /// # Ok::<(), rebeam::Error>(())
    /// ```
    pub fn subscribe(&self, pattern: &str) -> Result<Subscription, Error> {
        // Held across the request, as for monitors: a publication may overtake the answer.
        let mut table = lock(&self.tables.publications);
        let body =
            Request::Subscribe { actor: None, pattern: pattern.into(), throttle_ms: 0, queue: SUBSCRIPTION_QUEUE };
        let id = match self.client.request(body, Some(CAST_ACK_TIMEOUT))? {
            Response::Subscribed(Ok(id)) => id,
            Response::Subscribed(Err(info)) | Response::Refused(info) => {
                return Err(Error::Remote {
                    target: format!("pattern {pattern:?}"),
                    subject: "subscribe".into(),
                    info: Box::new(info),
                })
            }
            other => return Err(Error::Unexpected(format!("{other:?}"))),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        table.insert(id, tx);
        drop(table);
        Ok(Subscription { id, rx, client: self.client.clone(), tables: self.tables.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_neutral_payload_decodes_and_a_pickle_is_named_by_its_topic() {
        let p = received("s.a".into(), &encode_value(&Value::Int(3)), 2);
        assert_eq!((p.value::<i64>().unwrap(), p.dropped), (3, 2));
        let pickle = Payload { data: vec![0x80, 5, b'N', b'.'].into(), buffers: vec![] };
        let p = received("s.b".into(), &pickle, 0);
        let err = p.value::<Value>().unwrap_err().to_string();
        assert!(err.contains("topic \"s.b\"") && err.contains("pickle"), "{err}");
    }

    #[test]
    fn a_wrong_type_names_the_topic() {
        let p = Publication::from_host("s.c", Value::Str("x".into()));
        let err = p.value::<f64>().unwrap_err().to_string();
        assert!(err.contains("topic \"s.c\""), "{err}");
    }
}
