//! The arming authority over Zenoh (the rules are in [`crate::authority`]): the authority's
//! token and its word, published on every change and every heartbeat; a follower's
//! subscription to that word, its watch on the authority's token, and the ticks that notice
//! silence. What a follower decides goes to the governor as [`NodeIn::Follow`].

use std::sync::{Arc, Mutex};
use std::time::Instant;

use rebeam_governor::node::{Authority, Follow, NodeIn};
use rebeam_proto::Safety;
use tokio::sync::mpsc;
use zenoh::qos::{CongestionControl, Priority};
use zenoh::sample::SampleKind;
use zenoh::Session;

use crate::authority::{Change, Follower, Why, Word, AUTHORITY_TIMEOUT, HEARTBEAT};
use crate::session::lock;
use crate::{keys, NodeError};

/// What a node keeps of its part in arming while it is up.
pub(crate) enum Arming {
    /// This node is the authority: its token, and its word for the router's changes.
    Authority {
        _token: zenoh::liveliness::LivelinessToken,
        herald: Arc<Herald>,
    },
    Follower,
}

impl Arming {
    /// The router's safety state changed (only the authority's matters to other nodes).
    pub(crate) async fn announce(&self, state: Safety) {
        if let Arming::Authority { herald, .. } = self {
            herald.set(state).await;
        }
    }
}

/// The authority's side: its word, sent on change and on every heartbeat.
pub(crate) struct Herald {
    session: Session,
    key: String,
    word: Mutex<Word>,
}

impl Herald {
    async fn set(&self, state: Safety) {
        let text = {
            let mut word = lock(&self.word);
            if state == Safety::Armed && word.state != Safety::Armed {
                word.epoch += 1;
            }
            word.state = state;
            encode(&word)
        };
        self.say(text).await;
    }

    async fn say(&self, text: String) {
        // Blocking, not dropped, under congestion: a disarm must not be lost to a full queue.
        let put = self.session.put(&self.key, text).congestion_control(CongestionControl::Block);
        if let Err(e) = put.priority(Priority::RealTime).await {
            tracing::debug!("cannot publish the safety state: {e}");
        }
    }
}

/// Takes this node's part in arming: the authority (`authority`), or a follower of it.
pub(crate) async fn start(
    session: &Session,
    name: &str,
    authority: bool,
    to_router: mpsc::UnboundedSender<NodeIn>,
) -> Result<Arming, NodeError> {
    let fail = |e: zenoh::Error| NodeError::Open(name.to_string(), e.to_string());
    if !authority {
        follow(session, to_router).await.map_err(fail)?;
        return Ok(Arming::Follower);
    }
    let others = session.liveliness().get(keys::authorities()).await.map_err(fail)?;
    if let Ok(reply) = others.recv_async().await {
        let other = reply.result().ok().and_then(|s| keys::node_of(s.key_expr().as_str()).map(str::to_string));
        return Err(NodeError::TwoAuthorities(name.to_string(), other.unwrap_or_default()));
    }
    let token = session.liveliness().declare_token(keys::authority(name)).await.map_err(fail)?;
    let word = Word { state: Safety::Disarmed, epoch: 0, session: session.zid().to_string() };
    let herald = Arc::new(Herald { session: session.clone(), key: keys::safety(name), word: Mutex::new(word) });
    let _ = to_router.send(NodeIn::Authority(Authority::Here));
    tokio::spawn(heartbeat(Arc::clone(&herald)));
    tracing::info!("node {name} is the arming authority: the system is armed and disarmed here");
    Ok(Arming::Authority { _token: token, herald })
}

async fn heartbeat(herald: Arc<Herald>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        if herald.session.is_closed() {
            return;
        }
        let text = encode(&lock(&herald.word));
        herald.say(text).await;
    }
}

async fn follow(session: &Session, to_router: mpsc::UnboundedSender<NodeIn>) -> zenoh::Result<()> {
    let follower = Arc::new(Mutex::new(Follower::new()));
    let (heard, gone) = (Arc::clone(&follower), Arc::clone(&follower));
    let (tell_heard, tell_gone) = (to_router.clone(), to_router.clone());
    session
        .declare_subscriber(keys::safeties())
        .callback(move |sample| {
            let Some(authority) = keys::node_of(sample.key_expr().as_str()) else { return };
            let Some(word) = decode(&sample.payload().to_bytes()) else {
                return tracing::warn!("node {authority} sent a malformed safety state");
            };
            let changes = lock(&heard).heard(authority, &word, Instant::now());
            carry_out(&tell_heard, changes);
        })
        .background()
        .await?;
    session
        .liveliness()
        .declare_subscriber(keys::authorities())
        .callback(move |sample| {
            if sample.kind() == SampleKind::Delete {
                if let Some(authority) = keys::node_of(sample.key_expr().as_str()) {
                    let changes = lock(&gone).gone(authority);
                    carry_out(&tell_gone, changes);
                }
            }
        })
        .background()
        .await?;
    let session = session.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT);
        while !session.is_closed() && !to_router.is_closed() {
            tick.tick().await;
            let changes = lock(&follower).tick(Instant::now());
            carry_out(&to_router, changes);
        }
    });
    Ok(())
}

fn carry_out(to_router: &mpsc::UnboundedSender<NodeIn>, changes: Vec<Change>) {
    for change in changes {
        match change {
            Change::Contact { authority, waits } => {
                if waits {
                    tracing::info!(
                        "in contact with the arming authority, node {authority}; it is armed already, so this \
                         node stays disarmed until the host arms the system again"
                    );
                } else {
                    tracing::info!("in contact with the arming authority, node {authority}");
                }
                let _ = to_router.send(NodeIn::Authority(Authority::Elsewhere(Some(authority))));
            }
            Change::Arm { authority } => {
                tracing::info!("armed by the arming authority, node {authority}");
                let _ = to_router.send(NodeIn::Follow(Follow::Arm));
            }
            Change::Disarm { authority, why } => {
                match why {
                    Why::Disarmed(state) => {
                        let state = crate::authority::spelling(state);
                        tracing::info!("disarmed: the arming authority, node {authority}, is {state}");
                    }
                    Why::Silent(for_) => tracing::warn!(
                        "lost contact with the arming authority, node {authority}: nothing heard from it for {:.1} s \
                         (the limit is {:.1} s); this node disarms itself, and is armed again only when the host \
                         arms the system after contact returns",
                        for_.as_secs_f64(),
                        AUTHORITY_TIMEOUT.as_secs_f64()
                    ),
                    Why::Gone => tracing::warn!(
                        "lost contact with the arming authority, node {authority}: it is down (it left, or its link \
                         was lost); this node disarms itself, and is armed again only when the host arms the system \
                         after contact returns"
                    ),
                    Why::Another(other) => tracing::error!(
                        "node {other} says it is the arming authority too, but this node follows node {authority}; \
                         disarming (a system has one authority: stop one of them)"
                    ),
                }
                let _ = to_router.send(NodeIn::Follow(Follow::Disarm));
            }
        }
    }
}

/// A word as it crosses: `STATE EPOCH SESSION`.
fn encode(word: &Word) -> String {
    format!("{} {} {}", crate::authority::spelling(word.state), word.epoch, word.session)
}

fn decode(bytes: &[u8]) -> Option<Word> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut parts = text.split(' ');
    let state = crate::authority::parse_state(parts.next()?)?;
    let epoch = parts.next()?.parse().ok()?;
    let session = parts.next().filter(|s| !s.is_empty())?.to_string();
    parts.next().is_none().then_some(Word { state, epoch, session })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_crosses_as_it_was() {
        for state in [Safety::Disarmed, Safety::Armed, Safety::Disarming, Safety::Error] {
            let word = Word { state, epoch: 12, session: "a1b2".into() };
            assert_eq!(decode(encode(&word).as_bytes()), Some(word));
        }
        for bad in ["", "armed", "armed x s", "armed 1", "armed 1 s extra", "sleepy 1 s", "armed 1 "] {
            assert_eq!(decode(bad.as_bytes()), None, "{bad:?}");
        }
    }
}
