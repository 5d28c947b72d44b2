//! `whereis` across nodes, the transport's side: a query as a call by name is (the same key,
//! the same "not here" answers, the same cache of which node has a name), whose answer is the
//! actor there.
//!
//! The rules: the first node to answer with an actor wins; no node has the name, the asked
//! node is lost before it answers, or none answers within [`FIND_WAIT`]: None, as for a name
//! nobody has (a `whereis` never raises for a node's loss; a call to the pid it gave would
//! say what became of it).

use rebeam_proto::ActorRef;

use super::*;

/// How long a `whereis` waits for the other nodes: a node answers as soon as its router has
/// looked the name up, so only a lost (or stuck) node takes this long.
const FIND_WAIT: Duration = Duration::from_secs(5);

impl Shared {
    pub(super) async fn whereis(self: Arc<Self>, call: u64, name: String, frame: Vec<u8>) {
        let started = Instant::now();
        let (mut tally, mut target) = self.first_ask(&name);
        let found = loop {
            let answer = match self.query(&name, &target, &frame, FIND_WAIT).await {
                Ok(r) => self.answer_of(&name, r, &mut tally, started, FIND_WAIT, whereis_answer).await,
                Err(verdict) => Err(verdict),
            };
            match answer {
                Ok((Some(actor), node)) => break Some((actor, node)),
                Ok((None, _)) | Err(Verdict::Fail(_)) => break None,
                Err(Verdict::AskAll) => {
                    lock(&self.cache).remove(&name);
                    tally = Tally::new(&name, self.others(), false);
                    target = "*".to_string();
                }
            }
        };
        let _ = self.to_router.send(NodeIn::Found { call, found });
    }
}

fn whereis_answer(response: Response) -> Option<Option<ActorRef>> {
    match response {
        Response::Whereis(found) => Some(found),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebeam_proto::IntoEncoded;

    #[test]
    fn a_whereis_answer_gives_the_actor_or_none() {
        let actor = ActorRef { id: 9, name: Some("counter".into()) };
        for found in [Some(actor), None] {
            let frame = Frame::Response { req: 4, body: Response::Whereis(found.clone()) };
            let bytes = frame.into_encoded().expect("encodes").to_vec();
            assert_eq!(decode_response(&bytes).and_then(whereis_answer), Some(found));
        }
        let cast = Frame::Response { req: 4, body: Response::Cast { delivered: true } };
        let bytes = cast.into_encoded().expect("encodes").to_vec();
        assert_eq!(decode_response(&bytes).and_then(whereis_answer), None, "a cast's answer is not a whereis'");
    }
}
