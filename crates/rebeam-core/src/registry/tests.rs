use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

#[test]
fn a_stale_id_never_finds_the_process_now_in_its_slot() {
    let mut procs = Procs::default();
    let old = procs.insert("worker 1");
    assert_eq!(procs.remove(old), Some("worker 1"));
    let new = procs.insert("worker 2");
    assert_eq!(new.slot(), old.slot(), "the slot is reused");
    assert_ne!(new, old);
    assert_eq!(procs.get(old), None);
    assert_eq!(procs.get(new), Some(&"worker 2"));
    assert_eq!(procs.remove(old), None, "removing through a stale id removes nothing");
    assert_eq!(procs.len(), 1);
    assert_eq!(ProcId::from_raw(new.to_raw()), new);
    assert_ne!(old.to_raw(), new.to_raw());
}

#[test]
fn iteration_lists_live_processes_in_slot_order() {
    let mut procs = Procs::default();
    let a = procs.insert('a');
    let b = procs.insert('b');
    let c = procs.insert('c');
    procs.remove(b);
    assert_eq!(procs.iter().map(|(id, v)| (id, *v)).collect::<Vec<_>>(), vec![(a, 'a'), (c, 'c')]);
    assert_eq!(procs.ids(), vec![a, c]);
    assert!(!procs.contains(b));
}

#[test]
#[should_panic(expected = "was removed")]
fn indexing_with_a_removed_id_panics_rather_than_alias() {
    let mut procs = Procs::default();
    let id = procs.insert(1);
    procs.remove(id);
    procs.insert(2);
    let _ = procs[id];
}

#[test]
fn a_name_is_held_by_one_actor_and_freed_only_by_it() {
    let mut names = Names::default();
    assert_eq!(names.register("counter", 7), Ok(()));
    assert_eq!(names.register("counter", 8), Err(7));
    assert!(!names.release("counter", 8), "another actor cannot free it");
    assert_eq!(names.lookup("counter"), Some(7));
    assert!(names.release("counter", 7));
    assert_eq!(names.lookup("counter"), None);
    assert_eq!(names.register("counter", 8), Ok(()), "free again: the restarted actor takes it");
    assert!(!names.release("counter", 7), "the old incarnation's late exit leaves it with the new one");
    assert_eq!(names.lookup("counter"), Some(8));
}

proptest! {
    /// Against a model that never reuses ids: every id finds exactly what the model says.
    #[test]
    fn procs_behave_like_a_map_with_fresh_keys(ops in proptest::collection::vec((any::<bool>(), 0..8usize), 0..300)) {
        let mut procs = Procs::default();
        let mut model: HashMap<ProcId, usize> = HashMap::new();
        let mut ever: Vec<ProcId> = Vec::new();
        for (n, (add, pick)) in ops.into_iter().enumerate() {
            if add || ever.is_empty() {
                let id = procs.insert(n);
                prop_assert!(!ever.contains(&id), "id {} handed out twice", id);
                ever.push(id);
                model.insert(id, n);
            } else {
                let id = ever[pick % ever.len()];
                prop_assert_eq!(procs.remove(id), model.remove(&id));
            }
            prop_assert_eq!(procs.len(), model.len());
            for id in &ever {
                prop_assert_eq!(procs.get(*id), model.get(id));
            }
        }
    }
}
