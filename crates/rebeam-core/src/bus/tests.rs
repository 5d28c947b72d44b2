use super::*;

type TestBus = Bus<u32, &'static str>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn bus() -> TestBus {
    Bus::new(&["safety.estop.ack".to_owned()]).unwrap()
}

fn spec(pattern: &str, throttle_ms: u64, queue: u32) -> Spec {
    Spec::new(pattern, ms(throttle_ms), queue).unwrap()
}

fn owner(proc: u32, actor: Option<ActorId>) -> Owner<u32> {
    Owner { proc, actor }
}

/// The deliveries among `effects`, as (subscription, topic, payload, dropped).
fn delivered(effects: &[Effect<u32, &'static str>]) -> Vec<(SubscriptionId, String, &'static str, u64)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Deliver(p) => Some((p.subscription, p.topic.clone(), p.payload, p.dropped)),
            Effect::FlushAt { .. } => None,
        })
        .collect()
}

fn timers(effects: &[Effect<u32, &'static str>]) -> Vec<(SubscriptionId, Instant)> {
    effects
        .iter()
        .filter_map(|e| match *e {
            Effect::FlushAt { subscription, at } => Some((subscription, at)),
            Effect::Deliver(_) => None,
        })
        .collect()
}

#[test]
fn a_subscription_is_checked_when_made() {
    assert!(matches!(Spec::new("a..b", ms(0), 1), Err(TopicError::EmptySegment { .. })));
    // The pattern is checked before the bounds.
    assert!(matches!(Spec::new("a*", ms(0), 0), Err(TopicError::MixedWildcard { .. })));
    for (queue, throttle) in [(0, ms(0)), (MAX_QUEUE as u32 + 1, ms(0)), (1, MAX_THROTTLE + ms(1))] {
        let err = Spec::new("a.*", throttle, queue).unwrap_err();
        assert_eq!(err, TopicError::OutOfBounds { pattern: "a.*".into(), queue, throttle });
    }
    let message = Spec::new("a.*", ms(0), 0).unwrap_err().to_string();
    let expected = "subscription to 'a.*' asks for queue=0 and throttle=0ns; the bounds are \
                    1 ≤ queue ≤ 65536 and throttle ≤ 3600s: pass values within them";
    assert_eq!(message, expected);
    assert!(Spec::new("a.*", MAX_THROTTLE, MAX_QUEUE as u32).is_ok());
    assert!(matches!(TestBus::new(&["a**".to_owned()]), Err(TopicError::MixedWildcard { .. })));
}

#[test]
fn a_publication_fans_out_in_subscription_order() {
    let now = Instant::now();
    let mut bus = bus();
    bus.subscribe(7, owner(1, Some(10)), spec("sensors.*", 0, 4));
    bus.subscribe(3, owner(2, None), spec("**", 0, 4));
    bus.subscribe(5, owner(1, Some(11)), spec("other", 0, 4));
    let effects = bus.publish("sensors.imu", "x", now).unwrap();
    let to: Vec<_> = effects
        .iter()
        .map(|e| match e {
            Effect::Deliver(p) => (p.subscription, p.to),
            Effect::FlushAt { .. } => panic!("nothing is throttled"),
        })
        .collect();
    assert_eq!(to, vec![(3, owner(2, None)), (7, owner(1, Some(10)))]);
    assert_eq!(delivered(&effects)[0], (3, "sensors.imu".into(), "x", 0));
    let only_wildcard = delivered(&bus.publish("elsewhere", "y", now).unwrap());
    assert_eq!(only_wildcard, vec![(3, "elsewhere".into(), "y", 0)]);
}

#[test]
fn reserved_prefixes_are_refused_for_processes_and_open_to_the_host() {
    let now = Instant::now();
    let mut bus = bus();
    bus.subscribe(1, owner(1, None), spec("safety.**", 0, 8));
    let refused = bus.publish("safety.estop", "p", now).unwrap_err();
    assert_eq!(refused, TopicError::Reserved { topic: "safety.estop".into(), prefix: "safety" });
    assert!(matches!(bus.publish("a.*", "p", now), Err(TopicError::WildcardInTopic { .. })));
    assert!(matches!(bus.publish("", "p", now), Err(TopicError::Empty { .. })));
    // A refused publication reaches nobody: the next one is the first delivery.
    let opened = bus.publish("safety.estop.ack", "ack", now).unwrap();
    assert_eq!(delivered(&opened), vec![(1, "safety.estop.ack".into(), "ack", 0)]);
    let host = bus.publish_as_host("safety.transition", "t", now);
    assert_eq!(delivered(&host), vec![(1, "safety.transition".into(), "t", 0)]);
}

#[test]
fn a_throttled_subscriber_gets_the_newest_and_one_timer_per_instant() {
    let t0 = Instant::now();
    let mut bus = bus();
    bus.subscribe(1, owner(1, None), spec("s", 100, 8));
    assert_eq!(delivered(&bus.publish("s", "a", t0).unwrap()).len(), 1);
    // Inside the interval: nothing goes out, and one timer for the instant the throttle opens.
    let first = bus.publish("s", "b", t0 + ms(10)).unwrap();
    assert_eq!((delivered(&first).len(), timers(&first)), (0, vec![(1, t0 + ms(100))]));
    let second = bus.publish("s", "c", t0 + ms(20)).unwrap();
    assert!(second.is_empty(), "a timer for that instant was asked for already: {second:?}");
    // Too early a flush (a stale timer) delivers nothing and asks again.
    let early = bus.flush(1, t0 + ms(50));
    assert_eq!(early, vec![Effect::FlushAt { subscription: 1, at: t0 + ms(100) }]);
    let due = bus.flush(1, t0 + ms(100));
    assert_eq!(delivered(&due), vec![(1, "s".into(), "c", 1)]);
    assert!(timers(&due).is_empty());
    assert!(bus.flush(1, t0 + ms(300)).is_empty());
}

#[test]
fn a_full_queue_drops_the_oldest_and_the_count_travels_with_deliveries() {
    let t0 = Instant::now();
    let mut bus = bus();
    bus.subscribe(1, owner(1, None), spec("s", 1000, 2));
    bus.publish("s", "0", t0).unwrap();
    for (i, p) in ["1", "2", "3", "4"].into_iter().enumerate() {
        bus.publish("s", p, t0 + ms(i as u64 + 1)).unwrap();
    }
    // Two of the four waiting were pushed out of the queue of two; the throttle drops one more.
    let due = bus.flush(1, t0 + ms(1000));
    assert_eq!(delivered(&due), vec![(1, "s".into(), "4", 3)]);
    // Deliveries the subscriber could not take count as drops too.
    bus.undelivered(1, 2);
    let next = bus.publish("s", "5", t0 + ms(2000)).unwrap();
    assert_eq!(delivered(&next), vec![(1, "s".into(), "5", 5)]);
    bus.undelivered(99, 1);
}

#[test]
fn an_unthrottled_subscriber_gets_every_publication_in_order() {
    let now = Instant::now();
    let mut bus = bus();
    bus.subscribe(1, owner(1, None), spec("s.*", 0, 1));
    let got: Vec<_> =
        ["a", "b", "c"].into_iter().flat_map(|p| delivered(&bus.publish("s.x", p, now).unwrap())).collect();
    let payloads: Vec<_> = got.iter().map(|d| (d.2, d.3)).collect();
    assert_eq!(payloads, vec![("a", 0), ("b", 0), ("c", 0)]);
}

#[test]
fn subscriptions_end_with_their_actor_or_process() {
    let now = Instant::now();
    let mut bus = bus();
    bus.subscribe(1, owner(1, Some(10)), spec("**", 0, 1));
    bus.subscribe(2, owner(1, Some(11)), spec("**", 0, 1));
    bus.subscribe(3, owner(1, None), spec("**", 0, 1));
    bus.subscribe(4, owner(2, Some(20)), spec("**", 0, 1));
    bus.subscribe(5, owner(2, None), spec("**", 0, 1));
    bus.actor_gone(10);
    assert_eq!(bus.subscriptions().map(|(id, _)| id).collect::<Vec<_>>(), vec![2, 3, 4, 5]);
    bus.proc_gone(1);
    assert_eq!(bus.subscriptions().map(|(id, _)| id).collect::<Vec<_>>(), vec![4, 5]);
    assert!(bus.unsubscribe(5));
    assert!(!bus.unsubscribe(5));
    let left: Vec<_> = delivered(&bus.publish("t", "p", now).unwrap()).into_iter().map(|d| d.0).collect();
    assert_eq!(left, vec![4]);
    // A flush for a subscription that ended (a timer outliving it) does nothing.
    assert!(bus.flush(1, now).is_empty());
}

mod accounting {
    use super::*;
    use proptest::prelude::{prop, prop_assert, prop_assert_eq, proptest};
    use proptest::test_runner::TestCaseError;

    const TOPICS: [&str; 3] = ["a.x", "a.y", "b.x"];
    /// Each matches at least one of the topics.
    const PATTERNS: [&str; 4] = ["a.*", "*.x", "**", "b.x"];

    /// What each subscription has received so far, and the drop count its last delivery carried.
    #[derive(Default, Clone)]
    struct Seen {
        matched: u64,
        got: Vec<u64>,
        dropped: u64,
    }

    fn record(seen: &mut [Seen], effects: Vec<Effect<u32, u64>>, now: Instant) -> Result<(), TestCaseError> {
        for effect in effects {
            match effect {
                Effect::Deliver(p) => {
                    let s = &mut seen[p.subscription as usize];
                    s.got.push(p.payload);
                    s.dropped = p.dropped;
                }
                Effect::FlushAt { at, .. } if at <= now => return Err(TestCaseError::fail("a timer for now")),
                Effect::FlushAt { .. } => {}
            }
        }
        Ok(())
    }

    proptest! {
        /// Every publication a subscription matched is delivered once, in order, or counted as
        /// dropped: once every throttle has opened and been flushed, nothing is unaccounted for.
        #[test]
        fn every_matched_publication_is_delivered_or_counted(
            subs in prop::collection::vec((0usize..4, 0u64..3, 1u32..4), 1..5),
            steps in prop::collection::vec((0usize..4, 0u64..40), 1..80),
        ) {
            let mut bus: Bus<u32, u64> = Bus::new(&[]).unwrap();
            let patterns: Vec<Pattern> = subs.iter().map(|&(p, _, _)| Pattern::parse(PATTERNS[p]).unwrap()).collect();
            for (id, &(p, throttle, queue)) in subs.iter().enumerate() {
                bus.subscribe(id as u64, owner(1, None), spec(PATTERNS[p], throttle * 25, queue));
            }
            let mut seen = vec![Seen::default(); subs.len()];
            let (t0, mut elapsed, mut seq) = (Instant::now(), 0u64, 0u64);
            let mut publish = |bus: &mut Bus<u32, u64>, seen: &mut [Seen], topic: &str, now: Instant| {
                patterns.iter().zip(seen.iter_mut()).for_each(|(p, s)| s.matched += u64::from(p.matches(topic)));
                seq += 1;
                record(seen, bus.publish(topic, seq, now).unwrap(), now)
            };
            let flush_all = |bus: &mut Bus<u32, u64>, seen: &mut [Seen], now: Instant| {
                (0..seen.len() as u64).try_for_each(|id| record(seen, bus.flush(id, now), now))
            };
            for (what, advance) in steps {
                elapsed += advance;
                let now = t0 + ms(elapsed);
                match TOPICS.get(what) {
                    Some(topic) => publish(&mut bus, &mut seen, topic, now)?,
                    None => flush_all(&mut bus, &mut seen, now)?,
                }
            }
            // Past every throttle (at most 50 ms), a last publication on each topic carries the
            // final drop counts out.
            for topic in TOPICS {
                elapsed += 1000;
                flush_all(&mut bus, &mut seen, t0 + ms(elapsed))?;
                publish(&mut bus, &mut seen, topic, t0 + ms(elapsed))?;
                flush_all(&mut bus, &mut seen, t0 + ms(elapsed + 500))?;
            }
            for (id, s) in seen.iter().enumerate() {
                prop_assert!(s.got.windows(2).all(|w| w[0] < w[1]), "out of order: {:?}", s.got);
                prop_assert_eq!(s.matched, s.got.len() as u64 + s.dropped, "subscription {}", id);
            }
        }
    }
}

#[test]
fn stats_show_what_each_subscription_holds_and_lost() {
    let mut b = bus();
    let t0 = Instant::now();
    b.subscribe(1, owner(7, Some(3)), spec("a.*", 1000, 2));
    b.subscribe(2, owner(8, None), spec("b", 0, 4));
    // The first publication goes out at once; the throttle holds the next two, and a fourth
    // overflows the queue of two.
    for payload in ["p1", "p2", "p3", "p4"] {
        b.publish("a.x", payload, t0).unwrap();
    }
    b.undelivered(2, 5);
    let stats: Vec<_> = b.stats().collect();
    let first = SubscriptionStats {
        id: 1,
        owner: owner(7, Some(3)),
        pattern: "a.*".into(),
        queued: 2,
        capacity: 2,
        dropped: 1,
    };
    let second =
        SubscriptionStats { id: 2, owner: owner(8, None), pattern: "b".into(), queued: 0, capacity: 4, dropped: 5 };
    assert_eq!(stats, vec![first, second]);
}
