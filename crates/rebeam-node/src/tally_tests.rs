use super::*;

fn nodes(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn kind(v: Verdict) -> ErrorKind {
    match v {
        Verdict::Fail(info) => info.kind,
        Verdict::AskAll => panic!("expected a failure, got AskAll"),
    }
}

#[test]
fn every_node_not_having_it_is_no_process_naming_the_name() {
    let mut t = Tally::new("counter", nodes(&["a", "b"]), false);
    t.not_here("a");
    t.not_here("b");
    match t.end(false) {
        Verdict::Fail(info) => {
            assert_eq!(info.kind, ErrorKind::NoProcess);
            assert!(info.message.contains("'counter'") && info.message.contains("a, b"), "{}", info.message);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn alone_a_node_says_no_other_is_up() {
    let t = Tally::new("x", BTreeSet::new(), false);
    match t.end(false) {
        Verdict::Fail(info) => assert!(info.message.contains("no other node is up"), "{}", info.message),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_silent_node_is_lost_not_absent() {
    let mut t = Tally::new("counter", nodes(&["a", "b"]), false);
    t.not_here("a");
    match t.end(false) {
        Verdict::Fail(info) => {
            assert_eq!(info.kind, ErrorKind::ActorDown);
            assert!(info.message.contains("node b"), "{}", info.message);
        }
        other => panic!("{other:?}"),
    }
    let t = Tally::new("counter", nodes(&["a", "b"]), false);
    assert_eq!(kind(t.end(false)), ErrorKind::ActorDown, "two silent nodes");
}

#[test]
fn a_cached_node_without_the_name_sends_the_call_to_all() {
    let mut t = Tally::new("counter", nodes(&["a"]), true);
    t.not_here("a");
    assert_eq!(t.end(false), Verdict::AskAll);
}

#[test]
fn losing_the_one_node_asked_fails_the_call_at_once() {
    let t = Tally::new("counter", nodes(&["a"]), true);
    assert!(t.node_lost("a"));
    assert!(!t.node_lost("b"), "a node the call did not go to");
    assert_eq!(t.lost_error("a").kind, ErrorKind::ActorDown);
    let all = Tally::new("counter", nodes(&["a", "b"]), false);
    assert!(!all.node_lost("a"), "asked of all, the call waits for the others");
    let mut done = Tally::new("counter", nodes(&["a"]), true);
    done.not_here("a");
    assert!(!done.node_lost("a"), "a node that answered is owed nothing");
}

#[test]
fn past_its_timeout_a_call_times_out() {
    let t = Tally::new("counter", nodes(&["a"]), true);
    assert_eq!(kind(t.end(true)), ErrorKind::Timeout);
}

#[test]
fn a_pid_of_a_node_not_up_is_no_process_naming_the_node() {
    let t = Tally::new(&rebeam_proto::remote::pid_name(7, "gone"), BTreeSet::new(), false);
    match t.end(false) {
        Verdict::Fail(info) => {
            assert_eq!(info.kind, ErrorKind::NoProcess);
            assert!(info.message.contains("<7>") && info.message.contains("node gone"), "{}", info.message);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_pid_s_node_lost_mid_call_fails_it_at_once() {
    let t = Tally::new(&rebeam_proto::remote::pid_name(7, "a"), nodes(&["a"]), false);
    assert!(t.node_lost("a"), "asked of its node alone, as a cached name is");
    assert!(!t.node_lost("b"));
    assert_eq!(kind(t.end(false)), ErrorKind::ActorDown, "its node said nothing: lost with the call");
}
