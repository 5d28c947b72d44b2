use super::{adoptable, Refusal, Roots};
use crate::trees::Phase;

fn roots(list: &[u64]) -> Roots<u64> {
    let mut r = Roots::default();
    for &t in list {
        r.push(t);
    }
    r
}

#[test]
fn an_outer_tree_adopting_two_earlier_trees_becomes_the_only_root() {
    // `Supervisor(modules=[Supervisor(a), Supervisor(b), client])`: a and b start first.
    let mut t = roots(&[1, 2, 3]);
    t.take_place_of(3, 1);
    assert_eq!(t.list(), [3, 2]);
    t.take_place_of(3, 2);
    assert_eq!(t.list(), [3]);
    assert!(t.is_root(3));
}

#[test]
fn an_adopter_keeps_its_earlier_place_and_a_nested_adopter_gains_none() {
    let mut t = roots(&[1, 2, 3]);
    t.take_place_of(1, 3);
    assert_eq!(t.list(), [1, 2]);
    t.take_place_of(9, 2);
    assert_eq!(t.list(), [1]);
    t.take_place_of(9, 7);
    assert_eq!(t.list(), [1]);
}

/// Trees 1 (root, running) > 2 (nested in 1, running); 3 top-level and running; 4 top-level
/// and starting.
fn family(id: u64) -> Option<(Option<u64>, Phase)> {
    match id {
        1 => Some((None, Phase::Running)),
        2 => Some((Some(1), Phase::Running)),
        3 => Some((None, Phase::Running)),
        4 => Some((None, Phase::Starting)),
        _ => None,
    }
}

#[test]
fn only_a_running_top_level_tree_outside_the_adopters_line_can_be_adopted() {
    let top = roots(&[1, 3, 4]);
    assert_eq!(adoptable(2, 3, &top, 4, family), Ok(()));
    assert_eq!(adoptable(2, 2, &top, 4, family), Err(Refusal::OwnAncestor));
    assert_eq!(adoptable(2, 1, &top, 4, family), Err(Refusal::OwnAncestor));
    assert_eq!(adoptable(3, 2, &top, 4, family), Err(Refusal::Nested));
    assert_eq!(adoptable(3, 4, &top, 4, family), Err(Refusal::NotRunning));
    assert_eq!(adoptable(3, 9, &top, 4, family), Err(Refusal::Unknown));
}

#[test]
fn a_parent_cycle_cannot_hang_the_adoption_check() {
    let cycle = |id: u64| Some((Some(if id == 1 { 2 } else { 1 }), Phase::Running));
    assert_eq!(adoptable(1, 3, &roots(&[3]), 2, cycle), Ok(()));
}
