//! The registry: what the governor's processes are called, and who holds which actor name.
//!
//! The rules this module implements:
//!
//! - A process is named by a [`ProcId`]: a slot and the generation of that slot. A slot is
//!   reused once its process is removed, with the next generation, so an id held past its
//!   process's removal (in a timer, a late frame, a stray reply) finds nothing, never the new
//!   process in the same slot.
//! - An actor is placed on at most one process at a time, and a process lists exactly the
//!   actors placed on it: [`Actors`] keeps both directions, so neither is edited by hand.
//! - A name is held by one actor at a time. It is taken when the actor is created and freed
//!   exactly when the rules say (its handler crashed answering a call, or it ended), and only
//!   by the actor holding it: freeing a name another actor took since is a no-op.
//! - A name is an actor's or a group's (see [`groups`]), never both: each refuses the other.
//!
//! Nothing here performs I/O; the governor stores its per-process state in a [`Procs`] and its
//! names in a [`Names`].

use std::collections::{BTreeSet, HashMap};
use std::fmt;

pub mod groups;

pub use groups::{Balance, Group, JoinRefused};

/// A process of the run: its slot and that slot's generation (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcId {
    slot: u32,
    generation: u32,
}

impl ProcId {
    /// The slot, for logs and dense tables (unique among live processes only).
    pub fn slot(self) -> u32 {
        self.slot
    }

    /// The id as one number (slot, then generation), for tables keyed by plain integers (the
    /// cown scheduler's worker locations); [`ProcId::from_raw`] reverses it.
    pub fn to_raw(self) -> u64 {
        (u64::from(self.slot) << 32) | u64::from(self.generation)
    }

    pub const fn from_raw(raw: u64) -> ProcId {
        ProcId { slot: (raw >> 32) as u32, generation: raw as u32 }
    }
}

impl fmt::Display for ProcId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.slot, self.generation)
    }
}

#[derive(Debug, Clone)]
enum Slot<T> {
    Taken {
        generation: u32,
        value: T,
    },
    /// Free; the next process here gets `generation`.
    Free {
        generation: u32,
    },
}

/// Per-process state, by [`ProcId`], in slots reused with a new generation.
#[derive(Debug, Clone)]
pub struct Procs<T> {
    slots: Vec<Slot<T>>,
    /// Free slots, the most recently freed last.
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Procs<T> {
    fn default() -> Self {
        Procs { slots: Vec::new(), free: Vec::new(), len: 0 }
    }
}

impl<T> Procs<T> {
    /// Adds a process; returns its id.
    pub fn insert(&mut self, value: T) -> ProcId {
        self.len += 1;
        if let Some(slot) = self.free.pop() {
            let generation = match self.slots[slot as usize] {
                Slot::Free { generation } => generation,
                Slot::Taken { .. } => unreachable!("a slot on the free list is free"),
            };
            self.slots[slot as usize] = Slot::Taken { generation, value };
            return ProcId { slot, generation };
        }
        let slot = u32::try_from(self.slots.len()).expect("fewer than 2^32 processes at once");
        self.slots.push(Slot::Taken { generation: 0, value });
        ProcId { slot, generation: 0 }
    }

    /// Removes a process; its id (and any copy of it) finds nothing from now on.
    pub fn remove(&mut self, id: ProcId) -> Option<T> {
        self.get(id)?;
        // A slot whose generations ran out is retired rather than reused (it never happens in
        // practice: 2^32 processes through one slot).
        let next = id.generation.checked_add(1);
        let old =
            std::mem::replace(&mut self.slots[id.slot as usize], Slot::Free { generation: next.unwrap_or(u32::MAX) });
        if next.is_some() {
            self.free.push(id.slot);
        }
        self.len -= 1;
        match old {
            Slot::Taken { value, .. } => Some(value),
            Slot::Free { .. } => unreachable!("checked by get"),
        }
    }

    pub fn get(&self, id: ProcId) -> Option<&T> {
        match self.slots.get(id.slot as usize)? {
            Slot::Taken { generation, value } if *generation == id.generation => Some(value),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, id: ProcId) -> Option<&mut T> {
        match self.slots.get_mut(id.slot as usize)? {
            Slot::Taken { generation, value } if *generation == id.generation => Some(value),
            _ => None,
        }
    }

    pub fn contains(&self, id: ProcId) -> bool {
        self.get(id).is_some()
    }

    /// Every process, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (ProcId, &T)> {
        self.slots.iter().enumerate().filter_map(|(slot, s)| match s {
            Slot::Taken { generation, value } => Some((ProcId { slot: slot as u32, generation: *generation }, value)),
            Slot::Free { .. } => None,
        })
    }

    /// Every process's state, in slot order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.iter().map(|(_, v)| v)
    }

    /// The first process (in slot order) that `pred` accepts.
    pub fn find(&self, pred: impl Fn(&T) -> bool) -> Option<ProcId> {
        self.iter().find(|(_, v)| pred(v)).map(|(id, _)| id)
    }

    /// The ids of every process, in slot order (to visit them while changing them).
    pub fn ids(&self) -> Vec<ProcId> {
        self.iter().map(|(id, _)| id).collect()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<T> std::ops::Index<ProcId> for Procs<T> {
    type Output = T;

    /// For ids the caller knows are current (taken from the table in the same step).
    fn index(&self, id: ProcId) -> &T {
        self.get(id).unwrap_or_else(|| panic!("process {id} was removed"))
    }
}

impl<T> std::ops::IndexMut<ProcId> for Procs<T> {
    fn index_mut(&mut self, id: ProcId) -> &mut T {
        self.get_mut(id).unwrap_or_else(|| panic!("process {id} was removed"))
    }
}

/// Actor names: which actor (by id) holds each, and the groups (see [`groups`]).
#[derive(Debug, Clone, Default)]
pub struct Names {
    held: HashMap<String, u64>,
    groups: HashMap<String, Group>,
}

/// What a name stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named<'a> {
    Actor(ActorId),
    Group(&'a Group),
}

impl Names {
    /// Gives `name` to `actor`; `Err(holder)` if another actor holds it, or a group (its
    /// first present member; 0 while none is).
    pub fn register(&mut self, name: &str, actor: u64) -> Result<(), u64> {
        if let Some(group) = self.groups.get(name) {
            return Err(group.members().iter().flatten().copied().next().unwrap_or(0));
        }
        match self.held.get(name) {
            Some(&holder) if holder != actor => Err(holder),
            _ => {
                self.held.insert(name.to_string(), actor);
                Ok(())
            }
        }
    }

    /// Frees `name` if `actor` holds it (a name taken since by a newer actor stays taken).
    pub fn release(&mut self, name: &str, actor: u64) -> bool {
        if self.held.get(name) == Some(&actor) {
            self.held.remove(name);
            return true;
        }
        false
    }

    /// An actor's name only (a group's name finds nothing here: see [`Names::resolve`]).
    pub fn lookup(&self, name: &str) -> Option<u64> {
        self.held.get(name).copied()
    }

    /// What `name` stands for, actor or group.
    pub fn resolve(&self, name: &str) -> Option<Named<'_>> {
        match self.held.get(name) {
            Some(&id) => Some(Named::Actor(id)),
            None => self.groups.get(name).map(Named::Group),
        }
    }

    /// Puts `actor` at `position` of group `name` (of `size` positions), starting the group if
    /// it has no member yet.
    pub fn join(
        &mut self,
        name: &str,
        position: u32,
        size: u32,
        balance: Balance,
        actor: ActorId,
    ) -> Result<(), JoinRefused> {
        if let Some(&holder) = self.held.get(name) {
            return Err(JoinRefused::NameTaken(holder));
        }
        let group = self.groups.entry(name.to_string()).or_insert_with(|| Group::new(size, balance));
        let joined = match group.size() {
            s if s != size => Err(JoinRefused::Size { size: s }),
            _ => group.join(position, actor),
        };
        // A position past the end of a group this join started leaves it empty: forget it.
        if group.members().iter().all(Option::is_none) {
            self.groups.remove(name);
        }
        joined
    }

    /// Frees `position` of group `name` if `actor` holds it; the last member out ends the group.
    pub fn leave(&mut self, name: &str, position: u32, actor: ActorId) {
        if self.groups.get_mut(name).is_some_and(|g| g.leave(position, actor)) {
            self.groups.remove(name);
        }
    }

    /// The member of group `name` the next call goes to (see [`Group::pick`]).
    pub fn pick(&mut self, name: &str, load: impl Fn(ActorId) -> Option<usize>) -> Option<ActorId> {
        self.groups.get_mut(name)?.pick(load)
    }

    /// Actor names and their holders (groups are in [`Names::groups`]).
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.held.iter().map(|(n, &a)| (n.as_str(), a))
    }

    pub fn groups(&self) -> impl Iterator<Item = (&str, &Group)> {
        self.groups.iter().map(|(n, g)| (n.as_str(), g))
    }
}

/// An actor's id (the governor's `ActorId`).
pub type ActorId = u64;

/// The actor table: each actor's state (`A`, the governor's) and the process it is placed on,
/// with the reverse index (each process's actors) kept in step here alone.
#[derive(Debug, Clone)]
pub struct Actors<A> {
    table: HashMap<ActorId, (Option<ProcId>, A)>,
    on: HashMap<ProcId, BTreeSet<ActorId>>,
}

impl<A> Default for Actors<A> {
    fn default() -> Self {
        Actors { table: HashMap::new(), on: HashMap::new() }
    }
}

impl<A> Actors<A> {
    /// Adds an actor, placed nowhere yet (it waits for a worker).
    pub fn insert(&mut self, id: ActorId, actor: A) {
        self.remove(&id);
        self.table.insert(id, (None, actor));
    }

    /// Places `id` on `proc` (moving it if it was placed elsewhere). False if it is unknown.
    pub fn place(&mut self, id: ActorId, proc: ProcId) -> bool {
        let Some((at, _)) = self.table.get_mut(&id) else { return false };
        if let Some(old) = at.replace(proc) {
            Self::unlist(&mut self.on, old, id);
        }
        self.on.entry(proc).or_default().insert(id);
        true
    }

    /// Removes an actor (and its place).
    pub fn remove(&mut self, id: &ActorId) -> Option<A> {
        let (at, actor) = self.table.remove(id)?;
        if let Some(proc) = at {
            Self::unlist(&mut self.on, proc, *id);
        }
        Some(actor)
    }

    /// Empties `proc`'s list and returns it, in id order. The actors keep naming `proc` as
    /// their place until each is removed: a dead process's actors end one by one after this.
    pub fn take_on(&mut self, proc: ProcId) -> Vec<ActorId> {
        self.on.remove(&proc).map(|set| set.into_iter().collect()).unwrap_or_default()
    }

    /// Where `id` is placed (`None`: unknown, or waiting for a worker).
    pub fn proc_of(&self, id: ActorId) -> Option<ProcId> {
        self.table.get(&id).and_then(|(at, _)| *at)
    }

    /// The actors listed on `proc`, in id order.
    pub fn on(&self, proc: ProcId) -> impl Iterator<Item = ActorId> + '_ {
        self.on.get(&proc).into_iter().flatten().copied()
    }

    pub fn count_on(&self, proc: ProcId) -> usize {
        self.on.get(&proc).map_or(0, BTreeSet::len)
    }

    pub fn get(&self, id: &ActorId) -> Option<&A> {
        self.table.get(id).map(|(_, a)| a)
    }

    pub fn get_mut(&mut self, id: &ActorId) -> Option<&mut A> {
        self.table.get_mut(id).map(|(_, a)| a)
    }

    pub fn contains_key(&self, id: &ActorId) -> bool {
        self.table.contains_key(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ActorId, &A)> {
        self.table.iter().map(|(id, (_, a))| (id, a))
    }

    pub fn keys(&self) -> impl Iterator<Item = &ActorId> {
        self.table.keys()
    }

    pub fn values(&self) -> impl Iterator<Item = &A> {
        self.table.values().map(|(_, a)| a)
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    fn unlist(on: &mut HashMap<ProcId, BTreeSet<ActorId>>, proc: ProcId, id: ActorId) {
        if let Some(set) = on.get_mut(&proc) {
            set.remove(&id);
            if set.is_empty() {
                on.remove(&proc);
            }
        }
    }
}

#[cfg(test)]
mod tests;
