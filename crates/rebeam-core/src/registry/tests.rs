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

#[test]
fn an_actor_is_listed_on_exactly_the_process_it_is_placed_on() {
    let mut procs = Procs::default();
    let (p, q) = (procs.insert(()), procs.insert(()));
    let mut actors = Actors::default();
    actors.insert(7, "seven");
    assert_eq!(actors.proc_of(7), None);
    assert!(actors.place(7, p));
    assert!(!actors.place(8, p), "an unknown actor is placed nowhere");
    assert_eq!(actors.on(p).collect::<Vec<_>>(), vec![7]);
    assert!(actors.place(7, q));
    assert_eq!((actors.count_on(p), actors.on(q).collect::<Vec<_>>()), (0, vec![7]), "moved, not copied");
    assert_eq!(actors.remove(&7), Some("seven"));
    assert_eq!((actors.count_on(q), actors.proc_of(7)), (0, None));
}

#[test]
fn a_dead_processs_list_is_taken_whole_and_its_actors_end_one_by_one() {
    let mut procs = Procs::default();
    let p = procs.insert(());
    let mut actors = Actors::default();
    for id in [3, 1, 2] {
        actors.insert(id, ());
        actors.place(id, p);
    }
    assert_eq!(actors.take_on(p), vec![1, 2, 3]);
    assert_eq!(actors.count_on(p), 0);
    assert_eq!(actors.proc_of(2), Some(p), "still there until it is ended");
    actors.remove(&2);
    assert_eq!(actors.len(), 2);
    assert_eq!(actors.take_on(p), Vec::<ActorId>::new());
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
