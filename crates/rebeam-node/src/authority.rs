//! One arming authority for a system of several nodes, as a follower node sees it: a pure
//! machine that the node's session feeds with what it hears of the authority and the time,
//! and whose [`Change`]s it carries out on this node's safety gate.
//!
//! The rules:
//! - **Who arms.** The node started with `--authority` is the system's arming authority: the
//!   host arms and disarms the system on that node's control socket, as on a single node. At
//!   most one node is the authority (a second is refused at join). Every other node is a
//!   *follower*: `arm` on its control socket is refused with a message that names the
//!   authority; `disarm` and `force-disarm` stay allowed there, since stopping is always
//!   safe. A system with no authority node is never armed. Python arms nothing, on any node.
//! - **What the authority says.** It publishes its [`Word`] (its safety state, its *arm
//!   epoch*: how many times it has been armed, and its session) on every change of state and
//!   every [`HEARTBEAT`].
//! - **Following.** A follower in contact arms when the authority is armed at an epoch later
//!   than the one it heard when contact was made ([`Contact::floor`]), once per epoch, and
//!   disarms, with the same ladder as a local disarm, when the authority leaves `armed`. So a
//!   node that joins an armed system, or comes back to one, stays disarmed until the host
//!   arms again: it never starts gated work on an arm it did not see happen. A follower
//!   disarmed on its own control socket stays disarmed until the next arm.
//! - **Fail safe.** A follower that hears nothing from the authority for
//!   [`AUTHORITY_TIMEOUT`], or sees its liveliness token go (its link closed, or it was
//!   killed), loses contact and disarms itself at once; the session checks every
//!   [`HEARTBEAT`], so a silent authority is noticed within `AUTHORITY_TIMEOUT + HEARTBEAT`.
//!   Contact returns with the next word heard; arming again needs a later arm (above).
//! - **Another authority.** A word from a second authority (two started on the two sides of
//!   a partition that then healed) is not followed: the follower disarms and keeps to the
//!   authority it was in contact with until that one is lost.

use std::time::{Duration, Instant};

use rebeam_proto::Safety;

/// How often the authority repeats its word when nothing changes.
pub const HEARTBEAT: Duration = Duration::from_millis(100);
/// How long a follower goes without a word from the authority before it disarms itself: ten
/// heartbeats, so that a loaded machine's late timers do not disarm a healthy system.
pub const AUTHORITY_TIMEOUT: Duration = Duration::from_secs(1);

/// What the authority publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub state: Safety,
    /// How many times the authority has been armed (its run's count).
    pub epoch: u64,
    /// The authority's session: a restarted authority is another one, whose epochs start again.
    pub session: String,
}

/// What a follower does about what it heard (or did not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Contact with `authority` is made; `waits`: it is armed already, so this node stays
    /// disarmed until it arms again.
    Contact { authority: String, waits: bool },
    /// Arm this node: the authority armed.
    Arm { authority: String },
    /// Disarm this node.
    Disarm { authority: String, why: Why },
}

/// Why a follower disarms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// The authority left `armed` (its state now).
    Disarmed(Safety),
    /// Nothing heard from the authority for this long.
    Silent(Duration),
    /// The authority's token went: its link closed, or it was stopped or killed.
    Gone,
    /// A second authority spoke (its name).
    Another(String),
}

/// The authority a follower is in contact with.
#[derive(Debug, Clone)]
pub struct Contact {
    pub authority: String,
    session: String,
    heard: Instant,
    /// The arm epoch heard when contact was made: only a later arm arms this node.
    pub floor: u64,
    /// The latest epoch this node armed for (or `floor`).
    acted: u64,
    /// Whether this node armed for `acted` and has not disarmed since.
    armed: bool,
}

/// A follower's view of the authority.
#[derive(Debug, Clone, Default)]
pub struct Follower {
    contact: Option<Contact>,
}

impl Follower {
    pub fn new() -> Self {
        Follower::default()
    }

    /// The authority this node is in contact with, if any.
    pub fn contact(&self) -> Option<&Contact> {
        self.contact.as_ref()
    }

    /// A word from `authority`.
    pub fn heard(&mut self, authority: &str, word: &Word, now: Instant) -> Vec<Change> {
        let Some(c) = self.contact.as_mut() else {
            let waits = word.state == Safety::Armed;
            self.contact = Some(Contact {
                authority: authority.to_string(),
                session: word.session.clone(),
                heard: now,
                floor: word.epoch,
                acted: word.epoch,
                armed: false,
            });
            return vec![Change::Contact { authority: authority.to_string(), waits }];
        };
        if c.authority != authority || c.session != word.session {
            let why = Why::Another(authority.to_string());
            c.armed = false;
            return vec![Change::Disarm { authority: c.authority.clone(), why }];
        }
        c.heard = now;
        match word.state {
            Safety::Armed if word.epoch > c.acted => {
                c.acted = word.epoch;
                c.armed = true;
                vec![Change::Arm { authority: c.authority.clone() }]
            }
            Safety::Armed => vec![],
            state if c.armed => {
                c.armed = false;
                vec![Change::Disarm { authority: c.authority.clone(), why: Why::Disarmed(state) }]
            }
            _ => vec![],
        }
    }

    /// The time is `now`: contact is lost if the authority has been silent too long.
    pub fn tick(&mut self, now: Instant) -> Vec<Change> {
        let silent = match &self.contact {
            Some(c) => now.saturating_duration_since(c.heard),
            None => return vec![],
        };
        if silent <= AUTHORITY_TIMEOUT {
            return vec![];
        }
        self.lose(Why::Silent(silent))
    }

    /// `authority`'s liveliness token went.
    pub fn gone(&mut self, authority: &str) -> Vec<Change> {
        match &self.contact {
            Some(c) if c.authority == authority => self.lose(Why::Gone),
            _ => vec![],
        }
    }

    fn lose(&mut self, why: Why) -> Vec<Change> {
        let Some(c) = self.contact.take() else { return vec![] };
        // A disarm whether or not this node was armed: on a disarmed gate it changes nothing,
        // and the log says that contact was lost.
        vec![Change::Disarm { authority: c.authority, why }]
    }
}

/// A state's spelling, as logs and the word show it.
pub fn spelling(state: Safety) -> &'static str {
    match state {
        Safety::Disarmed => "disarmed",
        Safety::Armed => "armed",
        Safety::Disarming => "disarming",
        Safety::Error => "error",
    }
}

/// The state [`spelling`] spells `text`.
pub fn parse_state(text: &str) -> Option<Safety> {
    [Safety::Disarmed, Safety::Armed, Safety::Disarming, Safety::Error].into_iter().find(|s| spelling(*s) == text)
}

#[cfg(test)]
#[path = "authority_tests.rs"]
mod tests;
