//! The top-level trees and adoption's rules (see the [`crate::trees`] module doc, "Adoption").

use super::Phase;

/// The top-level trees in start order; the first is the root.
#[derive(Debug, Clone, Default)]
pub struct Roots<T> {
    list: Vec<T>,
}

impl<T: Copy + PartialEq> Roots<T> {
    pub fn list(&self) -> &[T] {
        &self.list
    }

    pub fn push(&mut self, tree: T) {
        self.list.push(tree);
    }

    pub fn contains(&self, tree: T) -> bool {
        self.list.contains(&tree)
    }

    pub fn is_root(&self, tree: T) -> bool {
        self.list.first() == Some(&tree)
    }

    pub fn remove(&mut self, tree: T) {
        self.list.retain(|&r| r != tree);
    }

    /// The adopter takes the adopted tree's place among the top-level trees when that place is
    /// earlier than its own (so `Supervisor(modules=[Supervisor(...)])` becomes the root);
    /// the adopted tree leaves the list either way.
    pub fn take_place_of(&mut self, adopter: T, adopted: T) {
        let Some(pos) = self.list.iter().position(|&r| r == adopted) else { return };
        match self.list.iter().position(|&r| r == adopter) {
            Some(own) if own < pos => {
                self.list.remove(pos);
            }
            Some(own) => {
                self.list[pos] = adopter;
                self.list.remove(own);
            }
            // A nested adopter is not a top-level tree; it gains no place of its own.
            None => {
                self.list.remove(pos);
            }
        }
    }
}

/// Why a tree cannot adopt another (see [`adoptable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The tree to adopt is the adopter or one of its ancestors.
    OwnAncestor,
    /// No such tree.
    Unknown,
    /// The tree is already some tree's child.
    Nested,
    /// The tree is still starting or already stopping.
    NotRunning,
}

/// Whether `adopter` may make `sub` its child: only a running top-level tree that is not
/// `adopter` itself or one of its ancestors can be (any other tree id, and a peer can send any
/// number, would make a tree its own parent or give a tree two parents). `tree` gives a tree's
/// parent and phase, or `None` for an unknown id; `count` bounds the walk up from `adopter`, so
/// that even a cycle, which nothing should make, cannot hang the caller.
pub fn adoptable<T: Copy + PartialEq>(
    adopter: T,
    sub: T,
    roots: &Roots<T>,
    count: usize,
    tree: impl Fn(T) -> Option<(Option<T>, Phase)>,
) -> Result<(), Refusal> {
    let mut up = Some(adopter);
    for _ in 0..=count {
        let Some(t) = up else { break };
        if t == sub {
            return Err(Refusal::OwnAncestor);
        }
        up = tree(t).and_then(|(parent, _)| parent);
    }
    let Some((_, phase)) = tree(sub) else { return Err(Refusal::Unknown) };
    if !roots.contains(sub) {
        return Err(Refusal::Nested);
    }
    if phase != Phase::Running {
        return Err(Refusal::NotRunning);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
