//! Safety transitions as a stream, as the governor announces them on `safety.transition`.
//!
//! The rules:
//! - Every transition from the moment [`Runtime::safety_transitions`] returns comes on the
//!   stream, in order, whoever caused it (the host's arm or disarm, a disarm completing after
//!   its grace, a kill that could not be confirmed): the governor publishes each on the bus.
//! - The stream holds up to [`TRANSITION_QUEUE`] transitions not yet taken at the governor's
//!   side; beyond that the oldest are dropped there (a stream nobody reads must not grow).
//! - The stream ends (None) when the run ends; dropping it unsubscribes.

use std::str::FromStr;

use rebeam_core::safety::SafetyState;
use rebeam_proto::{unpickle_map, PickleValue, Request, Response, Safety, SafetyTransition};
use tokio::sync::mpsc;

use crate::actors::CAST_ACK_TIMEOUT;
use crate::monitors::{lock, Tables};
use crate::{Error, Runtime};

/// Transitions the governor keeps for a stream that has not taken them yet.
pub const TRANSITION_QUEUE: u32 = 256;
/// The topic the governor announces transitions on.
const TOPIC: &str = "safety.transition";

/// A transition as the governor's publication carries it, if it is one.
pub(crate) fn parse(payload: &[u8]) -> Option<SafetyTransition> {
    let items = unpickle_map(payload)?;
    let text = |key: &str| {
        items.iter().find(|(k, _)| k == key).and_then(|(_, v)| match v {
            PickleValue::Str(s) => Some(s.clone()),
            _ => None,
        })
    };
    let state = |key: &str| text(key).and_then(|s| SafetyState::from_str(&s).ok()).map(wire);
    Some(SafetyTransition { from: state("from")?, to: state("to")?, reason: text("reason")? })
}

fn wire(state: SafetyState) -> Safety {
    match state {
        SafetyState::Disarmed => Safety::Disarmed,
        SafetyState::Armed => Safety::Armed,
        SafetyState::Disarming => Safety::Disarming,
        SafetyState::Error => Safety::Error,
    }
}

/// A stream of safety transitions (see the module doc).
pub struct Transitions {
    subscription: u64,
    rx: mpsc::UnboundedReceiver<SafetyTransition>,
    runtime_client: std::sync::Arc<rebeam_client::Client>,
    tables: Tables,
}

impl Transitions {
    /// The next transition; None once the run has ended. Not from inside a tokio runtime:
    /// use [`Transitions::next`] there.
    pub fn recv(&mut self) -> Option<SafetyTransition> {
        self.rx.blocking_recv()
    }

    /// The next transition if one has come, without waiting.
    pub fn try_recv(&mut self) -> Option<SafetyTransition> {
        self.rx.try_recv().ok()
    }

    /// The next transition, without blocking the executor.
    pub async fn next(&mut self) -> Option<SafetyTransition> {
        self.rx.recv().await
    }
}

impl Drop for Transitions {
    fn drop(&mut self) {
        if lock(&self.tables.transitions).remove(&self.subscription).is_some() {
            let _ = self.runtime_client.send_unawaited(Request::Unsubscribe { subscription: self.subscription });
        }
    }
}

impl Runtime {
    /// Every safety transition from now on, as a stream.
    pub fn safety_transitions(&self) -> Result<Transitions, Error> {
        // Held across the request, as for monitors: a publication may overtake the answer.
        let mut table = lock(&self.tables.transitions);
        let body = Request::Subscribe { actor: None, pattern: TOPIC.into(), throttle_ms: 0, queue: TRANSITION_QUEUE };
        let subscription = match self.client.request(body, Some(CAST_ACK_TIMEOUT))? {
            Response::Subscribed(Ok(id)) => id,
            Response::Subscribed(Err(info)) | Response::Refused(info) => {
                return Err(Error::Remote { target: TOPIC.into(), subject: "subscribe".into(), info: Box::new(info) })
            }
            other => return Err(Error::Unexpected(format!("{other:?}"))),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        table.insert(subscription, tx);
        drop(table);
        Ok(Transitions { subscription, rx, runtime_client: self.client.clone(), tables: self.tables.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebeam_proto::pickle_map;

    #[test]
    fn the_governors_announcement_reads_as_a_transition() {
        let payload = pickle_map(&[
            ("from", PickleValue::Str("armed".into())),
            ("to", PickleValue::Str("disarming".into())),
            ("reason", PickleValue::Str("disarmed by the host".into())),
            ("monotonic_ns", PickleValue::Int(5)),
        ]);
        let t = parse(&payload).expect("a transition");
        assert_eq!((t.from, t.to, t.reason.as_str()), (Safety::Armed, Safety::Disarming, "disarmed by the host"));
    }

    #[test]
    fn anything_else_is_not_a_transition() {
        assert!(parse(&pickle_map(&[("from", PickleValue::Str("armed".into()))])).is_none());
        assert!(parse(&pickle_map(&[
            ("from", PickleValue::Str("sideways".into())),
            ("to", PickleValue::Str("armed".into())),
            ("reason", PickleValue::Str(String::new())),
        ]))
        .is_none());
        assert!(parse(b"RBV\x01").is_none());
    }
}
