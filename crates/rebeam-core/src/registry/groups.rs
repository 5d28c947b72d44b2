//! Groups: one name for several copies of an actor (Erlang's `pg`, Ray's `ActorPool`).
//!
//! The rules this module implements:
//!
//! - A group has a fixed number of member positions, `0..size`, fixed by its first member to
//!   join. Each position holds at most one actor at a time; a member that restarts rejoins its
//!   own position, so member order survives restarts and every process sees the same order.
//! - A position is freed only by the actor holding it (a late leave from an old incarnation is
//!   a no-op), and a group with no member left is forgotten: the next member to join starts it
//!   again, with its own size.
//! - A call or cast for the group's name goes to one present, reachable member, chosen by the
//!   group's [`Balance`]: round-robin takes the next such position after the last one chosen;
//!   least-busy takes the member with the fewest calls in flight, ties going round-robin, so
//!   equally idle members share the work. The caller says, per member, how many calls it has
//!   in flight, or that it cannot be reached (its process is dying: it is skipped as if it
//!   were restarting already).

use serde::{Deserialize, Serialize};

use super::ActorId;

/// How a group's name picks the member a call or cast goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Balance {
    #[default]
    RoundRobin,
    /// Fewest calls delivered to it and not yet answered.
    LeastBusy,
}

impl Balance {
    pub const ALL: [Balance; 2] = [Balance::RoundRobin, Balance::LeastBusy];

    /// The Python spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Balance::RoundRobin => "round_robin",
            Balance::LeastBusy => "least_busy",
        }
    }
}

impl std::str::FromStr for Balance {
    type Err = crate::supervision::SpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::supervision::parse_spelling("balance", s, &Balance::ALL, Balance::as_str)
    }
}

/// Why a member could not join its group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinRefused {
    /// The name is an actor's, not a group's.
    NameTaken(ActorId),
    /// The group exists with another size (or the position is past its end).
    Size { size: u32 },
    /// Another live actor holds that position.
    Held(ActorId),
}

/// One group: its member positions and where round-robin goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    members: Vec<Option<ActorId>>,
    balance: Balance,
    /// The position round-robin tries first.
    next: usize,
}

impl Group {
    pub(super) fn new(size: u32, balance: Balance) -> Group {
        Group { members: vec![None; size as usize], balance, next: 0 }
    }

    /// Member positions in order: `None` where the member is restarting.
    pub fn members(&self) -> &[Option<ActorId>] {
        &self.members
    }

    pub fn balance(&self) -> Balance {
        self.balance
    }

    pub fn size(&self) -> u32 {
        self.members.len() as u32
    }

    pub(super) fn join(&mut self, position: u32, actor: ActorId) -> Result<(), JoinRefused> {
        let size = self.size();
        let slot = self.members.get_mut(position as usize).ok_or(JoinRefused::Size { size })?;
        match *slot {
            Some(holder) if holder != actor => Err(JoinRefused::Held(holder)),
            _ => {
                *slot = Some(actor);
                Ok(())
            }
        }
    }

    /// Frees `position` if `actor` holds it; true if the group is now empty.
    pub(super) fn leave(&mut self, position: u32, actor: ActorId) -> bool {
        if let Some(slot) = self.members.get_mut(position as usize) {
            if *slot == Some(actor) {
                *slot = None;
            }
        }
        self.members.iter().all(Option::is_none)
    }

    /// The member the next call goes to (see the module doc); `load` gives one member's calls
    /// in flight, `None` if it cannot be reached. `None` if no member can take it.
    pub fn pick(&mut self, load: impl Fn(ActorId) -> Option<usize>) -> Option<ActorId> {
        let n = self.members.len();
        // Reachable members in round-robin order, starting at `next`.
        let order = (0..n)
            .map(|k| (self.next + k) % n)
            .filter_map(|i| self.members[i].and_then(|a| load(a).map(|busy| (i, a, busy))));
        let (position, actor, _) = match self.balance {
            Balance::RoundRobin => order.into_iter().next()?,
            // `min_by_key` keeps the first of equals: the round-robin one.
            Balance::LeastBusy => order.min_by_key(|&(_, _, busy)| busy)?,
        };
        self.next = (position + 1) % n;
        Some(actor)
    }
}

#[cfg(test)]
mod tests;
