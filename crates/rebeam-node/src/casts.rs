//! Casts across nodes, the transport's side. A cast is a query as a call is (the same key,
//! the same "not here" answers, the same cache of which node has a name), whose answer says
//! whether the receiver's node put it in a live actor's mailbox.
//!
//! The rules:
//! - **Order.** A cast's first query is sent from the loop that takes the router's outputs, in
//!   the order the router gave them, and Zenoh keeps one link's messages in order: so casts
//!   from one sender to one actor arrive in the order sent. Only the wait for the answer is a
//!   task of its own. A cast re-asked of every node (its cached node no longer had the name)
//!   may arrive after later ones: the name's actor moved, so it is another actor anyway.
//! - **Pipelined.** The window ([`CastWindow`], asked by the router as it hands a cast over)
//!   opens for a cast asked of one node that is up (the node that answered for its name last,
//!   or a process id's node): its sender is answered "sent" (True) at once, without a round
//!   trip, as a cast into an actor's own ring is, so a sender's casts follow each other at the
//!   rate the link takes them. Its node's answer still comes, and still corrects the cache.
//!   The first cast to a name no node answered for yet waits for its answer, so a cast to a
//!   name on no node returns False.
//! - **A bound.** At most [`CASTS_IN_FLIGHT`] casts answered early wait for their node's
//!   answer at once; past it, the window is closed and a cast's sender waits for its own
//!   answer (the rule below), so a fast sender is slowed to the link's pace and what is in
//!   flight never grows unbounded.
//! - **Never delivered.** No node has the name, the node is lost before it answers, or no
//!   answer comes within [`CAST_WAIT`]: the sender is told the cast was not delivered (False),
//!   as for a local cast to a dead actor. A cast answered early that meets that fate is lost,
//!   as a cast into a ring whose actor ends is: the lost ones are counted, and each run of
//!   them is logged once ([`LOSS_REPORT_DELAY`]) with how many.

use rebeam_governor::node::CastWindow;

use super::*;

/// How long a cast waits for its receiver's node to say whether it was delivered: a node
/// answers as soon as its router has taken the cast, so only a node that is lost (or stuck)
/// takes this long, and a lost one is noticed sooner through its token.
const CAST_WAIT: Duration = Duration::from_secs(5);

/// Casts answered "sent" before their node's answer, at most, at once (see the module doc):
/// enough to keep a link busy across a loopback or LAN round trip at the rate one node's
/// router takes casts, and few enough that a node lost mid-burst loses a bounded number.
pub(crate) const CASTS_IN_FLIGHT: usize = 1024;

/// How long after a cast answered early is lost its loss is logged, with every other lost
/// meanwhile: a node lost mid-burst loses up to `CASTS_IN_FLIGHT` at once, logged as one line.
const LOSS_REPORT_DELAY: Duration = Duration::from_millis(500);

/// Casts of this node answered early, in flight, and lost (see the module doc).
#[derive(Debug, Default)]
pub(super) struct CastsInFlight {
    in_flight: AtomicUsize,
    lost: AtomicU64,
    unreported: AtomicU64,
}

impl CastsInFlight {
    /// Takes a place in flight, if one is free.
    fn take(&self) -> bool {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < CASTS_IN_FLIGHT).then_some(n + 1))
            .is_ok()
    }

    fn give_back(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Counts one lost; true for the first of a run not yet reported.
    fn lose(&self) -> bool {
        self.lost.fetch_add(1, Ordering::Relaxed);
        self.unreported.fetch_add(1, Ordering::AcqRel) == 0
    }

    /// The run lost since the last report, and every cast lost so far.
    fn report(&self) -> (u64, u64) {
        (self.unreported.swap(0, Ordering::AcqRel), self.lost.load(Ordering::Relaxed))
    }
}

impl CastWindow for Shared {
    fn open(&self, name: &str) -> bool {
        self.first_ask(name).0.one_node_up() && self.casts.take()
    }
}

impl Shared {
    /// Sends a cast's first query now (see the module doc on order), and waits for its answer
    /// in a task of its own; `early`: its sender was answered already (the window opened).
    pub(super) fn cast(self: &Arc<Self>, call: u64, name: String, frame: Vec<u8>, early: bool) {
        let started = Instant::now();
        let (tally, target) = self.first_ask(&name);
        let replies = self.query_now(&name, keys::calls(&target), &frame, CAST_WAIT);
        let cast = Cast { call, name, frame, started, early };
        tokio::spawn(Arc::clone(self).cast_answered(cast, replies, tally));
    }

    async fn cast_answered(self: Arc<Self>, cast: Cast, mut replies: Result<Replies, Verdict>, mut tally: Tally) {
        let Cast { call, name, frame, started, early } = cast;
        loop {
            let answer = match replies {
                Ok(r) => self.answer_of(&name, r, &mut tally, started, CAST_WAIT, cast_delivered).await.map(|(d, _)| d),
                Err(verdict) => Err(verdict),
            };
            let delivered = match answer {
                Ok(delivered) => delivered,
                Err(Verdict::Fail(info)) => {
                    tracing::debug!("a cast to '{name}' was not delivered: {}", info.message);
                    false
                }
                Err(Verdict::AskAll) => {
                    lock(&self.cache).remove(&name);
                    tally = Tally::new(&name, self.others(), false);
                    replies = self.query(&name, "*", &frame, CAST_WAIT).await;
                    continue;
                }
            };
            if !early {
                let _ = self.to_router.send(NodeIn::CastAnswer { call, delivered });
                return;
            }
            self.casts.give_back();
            if !delivered && self.casts.lose() {
                tokio::spawn(Arc::clone(&self).report_lost());
            }
            return;
        }
    }

    async fn report_lost(self: Arc<Self>) {
        tokio::time::sleep(LOSS_REPORT_DELAY).await;
        let (run, total) = self.casts.report();
        tracing::warn!(
            "{run} casts to other nodes, sent, were lost before delivery (their node was lost, \
             or no node had the name any more); {total} so far"
        );
    }
}

/// One cast on its way: `early` if its sender was answered when it was sent.
struct Cast {
    call: u64,
    name: String,
    frame: Vec<u8>,
    started: Instant,
    early: bool,
}

fn cast_delivered(response: Response) -> Option<bool> {
    match response {
        Response::Cast { delivered } => Some(delivered),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebeam_proto::{IntoEncoded, Routed};

    #[test]
    fn casts_in_flight_are_bounded_and_a_run_of_losses_is_reported_once() {
        let casts = CastsInFlight::default();
        assert!((0..CASTS_IN_FLIGHT).all(|_| casts.take()));
        assert!(!casts.take(), "past the bound, a sender waits for its answer");
        casts.give_back();
        assert!(casts.take(), "a place given back is free again");
        assert!(casts.lose(), "the first loss of a run is reported");
        assert!(!casts.lose() && !casts.lose(), "the rest join its report");
        assert_eq!(casts.report(), (3, 3));
        assert!(casts.lose(), "a new run after a report");
        assert_eq!(casts.report(), (1, 4));
    }

    #[test]
    fn a_cast_answer_says_whether_it_was_delivered() {
        for delivered in [true, false] {
            let bytes = Routed::cast_answer(5, delivered).into_encoded().expect("encodes").to_vec();
            assert_eq!(decode_response(&bytes).and_then(cast_delivered), Some(delivered));
        }
        let call =
            Frame::Response { req: 5, body: Response::Call(Outcome::Failed(ErrorInfo::new(ErrorKind::Crashed, "x"))) };
        let bytes = call.into_encoded().expect("encodes").to_vec();
        assert_eq!(decode_response(&bytes).and_then(cast_delivered), None, "a call's answer is not a cast's");
    }
}
