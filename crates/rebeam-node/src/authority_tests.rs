use super::*;

const A: &str = "a";

fn word(state: Safety, epoch: u64) -> Word {
    Word { state, epoch, session: "s1".into() }
}

fn arm() -> Vec<Change> {
    vec![Change::Arm { authority: A.into() }]
}

fn disarm(why: Why) -> Vec<Change> {
    vec![Change::Disarm { authority: A.into(), why }]
}

/// A follower in contact with `a`, disarmed at epoch 0, at time `t0`.
fn in_contact(t0: Instant) -> Follower {
    let mut f = Follower::new();
    assert_eq!(f.heard(A, &word(Safety::Disarmed, 0), t0), vec![Change::Contact { authority: A.into(), waits: false }]);
    f
}

#[test]
fn a_follower_arms_and_disarms_with_the_authority_once_per_change() {
    let t0 = Instant::now();
    let mut f = in_contact(t0);
    assert_eq!(f.heard(A, &word(Safety::Disarmed, 0), t0), vec![], "a heartbeat changes nothing");
    assert_eq!(f.heard(A, &word(Safety::Armed, 1), t0), arm());
    assert_eq!(f.heard(A, &word(Safety::Armed, 1), t0), vec![], "the same arm is acted on once");
    assert_eq!(f.heard(A, &word(Safety::Disarming, 1), t0), disarm(Why::Disarmed(Safety::Disarming)));
    assert_eq!(f.heard(A, &word(Safety::Disarmed, 1), t0), vec![], "already disarmed");
    assert_eq!(f.heard(A, &word(Safety::Armed, 2), t0), arm(), "a new arm arms again");
    assert_eq!(f.heard(A, &word(Safety::Error, 2), t0), disarm(Why::Disarmed(Safety::Error)));
}

#[test]
fn a_node_that_joins_an_armed_system_waits_for_the_next_arm() {
    let t0 = Instant::now();
    let mut f = Follower::new();
    let joined = f.heard(A, &word(Safety::Armed, 3), t0);
    assert_eq!(joined, vec![Change::Contact { authority: A.into(), waits: true }]);
    assert_eq!(f.contact().map(|c| c.floor), Some(3));
    assert_eq!(f.heard(A, &word(Safety::Armed, 3), t0), vec![], "an arm it did not see happen");
    assert_eq!(f.heard(A, &word(Safety::Disarmed, 3), t0), vec![], "it never armed, so nothing to undo");
    assert_eq!(f.heard(A, &word(Safety::Armed, 4), t0), arm());
}

#[test]
fn silence_past_the_timeout_disarms_and_contact_returns_disarmed() {
    let t0 = Instant::now();
    let mut f = in_contact(t0);
    assert_eq!(f.heard(A, &word(Safety::Armed, 1), t0), arm());
    assert_eq!(f.tick(t0 + AUTHORITY_TIMEOUT), vec![], "not past the timeout yet");
    let late = t0 + AUTHORITY_TIMEOUT + HEARTBEAT;
    assert_eq!(f.tick(late), disarm(Why::Silent(AUTHORITY_TIMEOUT + HEARTBEAT)));
    assert!(f.contact().is_none());
    assert_eq!(f.tick(late + AUTHORITY_TIMEOUT * 2), vec![], "lost once, said once");
    // The authority is still armed at epoch 1 when contact returns: this node waits.
    let back = f.heard(A, &word(Safety::Armed, 1), late);
    assert_eq!(back, vec![Change::Contact { authority: A.into(), waits: true }]);
    assert_eq!(f.heard(A, &word(Safety::Armed, 1), late), vec![]);
    assert_eq!(f.heard(A, &word(Safety::Disarmed, 1), late), vec![]);
    assert_eq!(f.heard(A, &word(Safety::Armed, 2), late), arm(), "armed again only by a new arm");
}

#[test]
fn each_word_heard_puts_the_timeout_off() {
    let t0 = Instant::now();
    let mut f = in_contact(t0);
    let mut t = t0;
    for _ in 0..5 {
        t += AUTHORITY_TIMEOUT / 2;
        assert_eq!(f.heard(A, &word(Safety::Disarmed, 0), t), vec![]);
        assert_eq!(f.tick(t + AUTHORITY_TIMEOUT / 2), vec![]);
    }
}

#[test]
fn the_authority_s_token_going_disarms_at_once() {
    let t0 = Instant::now();
    let mut f = in_contact(t0);
    assert_eq!(f.gone("b"), vec![], "another node's loss is not the authority's");
    assert_eq!(f.heard(A, &word(Safety::Armed, 1), t0), arm());
    assert_eq!(f.gone(A), disarm(Why::Gone));
    assert_eq!(f.gone(A), vec![]);
    // A restarted authority counts from zero: its first arm arms this node.
    let restarted = Word { state: Safety::Disarmed, epoch: 0, session: "s2".into() };
    assert_eq!(f.heard(A, &restarted, t0), vec![Change::Contact { authority: A.into(), waits: false }]);
    assert_eq!(f.heard(A, &Word { state: Safety::Armed, epoch: 1, ..restarted }, t0), arm());
}

#[test]
fn a_second_authority_is_not_followed() {
    let t0 = Instant::now();
    let mut f = in_contact(t0);
    assert_eq!(f.heard(A, &word(Safety::Armed, 1), t0), arm());
    let other = Word { state: Safety::Armed, epoch: 7, session: "s9".into() };
    assert_eq!(f.heard("z", &other, t0), disarm(Why::Another("z".into())));
    assert_eq!(f.heard(A, &word(Safety::Armed, 1), t0), vec![], "the arm it was disarmed from is not redone");
    assert_eq!(f.contact().map(|c| c.authority.as_str()), Some(A));
    assert_eq!(f.heard(A, &word(Safety::Armed, 2), t0), arm());
}
