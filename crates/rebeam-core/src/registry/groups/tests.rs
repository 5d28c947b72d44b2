use std::collections::HashMap;

use proptest::prelude::*;

use crate::registry::{Balance, JoinRefused, Named, Names};

fn pool(names: &mut Names, balance: Balance, members: &[u64]) {
    for (i, &a) in members.iter().enumerate() {
        names.join("pool", i as u32, members.len() as u32, balance, a).unwrap();
    }
}

#[test]
fn round_robin_visits_every_present_member_in_order() {
    let mut names = Names::default();
    pool(&mut names, Balance::RoundRobin, &[10, 11, 12]);
    let picks: Vec<u64> = (0..6).filter_map(|_| names.pick("pool", |_| Some(0))).collect();
    assert_eq!(picks, vec![10, 11, 12, 10, 11, 12]);
    names.leave("pool", 1, 11);
    let picks: Vec<u64> = (0..4).filter_map(|_| names.pick("pool", |_| Some(0))).collect();
    assert_eq!(picks, vec![10, 12, 10, 12], "a restarting member is skipped");
}

#[test]
fn a_restarted_member_takes_back_its_own_position() {
    let mut names = Names::default();
    pool(&mut names, Balance::RoundRobin, &[10, 11, 12]);
    names.leave("pool", 1, 11);
    names.join("pool", 1, 3, Balance::RoundRobin, 21).unwrap();
    names.leave("pool", 1, 11);
    let Some(Named::Group(g)) = names.resolve("pool") else { panic!("pool is a group") };
    assert_eq!(g.members(), &[Some(10), Some(21), Some(12)], "the old incarnation's late leave is a no-op");
}

#[test]
fn a_member_that_cannot_be_reached_is_skipped_by_either_balance() {
    for balance in Balance::ALL {
        let mut names = Names::default();
        pool(&mut names, balance, &[10, 11, 12]);
        let reach = |a: u64| (a != 11).then_some(0);
        let picks: Vec<u64> = (0..4).filter_map(|_| names.pick("pool", reach)).collect();
        assert_eq!(picks, vec![10, 12, 10, 12], "{balance:?}");
        assert_eq!(names.pick("pool", |_| None), None, "{balance:?}: nobody reachable");
    }
}

#[test]
fn least_busy_picks_the_fewest_in_flight_and_shares_ties() {
    let mut names = Names::default();
    pool(&mut names, Balance::LeastBusy, &[10, 11, 12]);
    let busy: HashMap<u64, usize> = [(10, 2), (11, 0), (12, 1)].into();
    assert_eq!(names.pick("pool", |a| Some(busy[&a])), Some(11));
    assert_eq!(names.pick("pool", |a| Some(busy[&a])), Some(11));
    let picks: Vec<u64> = (0..3).filter_map(|_| names.pick("pool", |_| Some(0))).collect();
    assert_eq!(picks, vec![12, 10, 11], "equally idle members take turns");
}

#[test]
fn a_name_is_an_actors_or_a_groups_never_both() {
    let mut names = Names::default();
    names.register("solo", 5).unwrap();
    assert_eq!(names.join("solo", 0, 2, Balance::RoundRobin, 6), Err(JoinRefused::NameTaken(5)));
    pool(&mut names, Balance::RoundRobin, &[10, 11]);
    assert_eq!(names.register("pool", 7), Err(10));
    assert_eq!(names.lookup("pool"), None, "lookup finds actors only");
    assert_eq!(names.resolve("solo"), Some(Named::Actor(5)));
}

#[test]
fn joins_that_do_not_fit_the_group_are_refused() {
    let mut names = Names::default();
    pool(&mut names, Balance::RoundRobin, &[10, 11]);
    assert_eq!(names.join("pool", 0, 3, Balance::RoundRobin, 20), Err(JoinRefused::Size { size: 2 }));
    assert_eq!(names.join("pool", 1, 2, Balance::RoundRobin, 20), Err(JoinRefused::Held(11)));
    assert_eq!(names.join("new", 5, 2, Balance::RoundRobin, 20), Err(JoinRefused::Size { size: 2 }));
    assert_eq!(names.resolve("new"), None, "a refused first join leaves no empty group behind");
}

#[test]
fn the_last_member_out_ends_the_group() {
    let mut names = Names::default();
    pool(&mut names, Balance::RoundRobin, &[10, 11]);
    names.leave("pool", 0, 10);
    names.leave("pool", 1, 11);
    assert_eq!(names.resolve("pool"), None);
    assert_eq!(names.pick("pool", |_| Some(0)), None);
    names.join("pool", 0, 4, Balance::RoundRobin, 30).unwrap();
    assert_eq!(names.groups().map(|(_, g)| g.size()).collect::<Vec<_>>(), vec![4], "started again, its own size");
}

#[test]
fn balances_parse_from_their_python_spelling() {
    for b in Balance::ALL {
        assert_eq!(b.as_str().parse::<Balance>(), Ok(b));
    }
    let err = "fastest".parse::<Balance>().unwrap_err();
    assert_eq!((err.what, err.valid), ("balance", vec!["round_robin", "least_busy"]));
}

proptest! {
    /// However members leave and rejoin, a pick is always a present member, and round-robin
    /// over an unchanged group visits each present member once per turn.
    #[test]
    fn picks_are_present_members_and_turns_are_fair(ops in proptest::collection::vec((0..4u32, any::<bool>()), 0..200)) {
        let mut names = Names::default();
        let mut model: [Option<u64>; 4] = [None; 4];
        let mut next_id = 1;
        for (position, join) in ops {
            if join {
                if let Some(holder) = model[position as usize] {
                    names.leave("g", position, holder);
                }
                names.join("g", position, 4, Balance::RoundRobin, next_id).unwrap();
                model[position as usize] = Some(next_id);
                next_id += 1;
            } else if let Some(holder) = model[position as usize].take() {
                names.leave("g", position, holder);
            }
            let present: Vec<u64> = model.iter().flatten().copied().collect();
            let mut turn: Vec<u64> = (0..present.len()).filter_map(|_| names.pick("g", |_| Some(0))).collect();
            turn.sort_unstable();
            let mut want = present.clone();
            want.sort_unstable();
            prop_assert_eq!(turn, want);
        }
    }
}
