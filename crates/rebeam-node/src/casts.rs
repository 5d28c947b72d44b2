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
//! - **Never delivered.** No node has the name, the node is lost before it answers, or no
//!   answer comes within [`CAST_WAIT`]: the sender is told the cast was not delivered (False),
//!   as for a local cast to a dead actor.

use super::*;

/// How long a cast waits for its receiver's node to say whether it was delivered: a node
/// answers as soon as its router has taken the cast, so only a node that is lost (or stuck)
/// takes this long, and a lost one is noticed sooner through its token.
const CAST_WAIT: Duration = Duration::from_secs(5);

impl Shared {
    /// Sends a cast's first query now (see the module doc on order), and waits for its answer
    /// in a task of its own.
    pub(super) async fn cast(self: &Arc<Self>, call: u64, name: String, frame: Vec<u8>) {
        let started = Instant::now();
        let (tally, target) = self.first_ask(&name);
        let replies = self.query(&name, &target, &frame, CAST_WAIT).await;
        tokio::spawn(Arc::clone(self).cast_answered(call, name, frame, replies, tally, started));
    }

    async fn cast_answered(
        self: Arc<Self>,
        call: u64,
        name: String,
        frame: Vec<u8>,
        mut replies: Result<Replies, Verdict>,
        mut tally: Tally,
        started: Instant,
    ) {
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
            let _ = self.to_router.send(NodeIn::CastAnswer { call, delivered });
            return;
        }
    }
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
