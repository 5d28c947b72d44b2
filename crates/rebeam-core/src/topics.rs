//! Topics: the pure parts of the topic bus (names, patterns, who may publish, delivery).
//!
//! The governor routes publications to subscribers; this module says which subscriptions a
//! topic reaches, whether Python may publish on it, and when each subscriber gets what.
//! Nothing here reads a clock: time comes in as [`Instant`]s.
//!
//! # Topics
//!
//! A topic is a concrete dotted name: one or more non-empty segments separated by `.`, with
//! no `*` ([`validate_topic`]): `sensors.imu`, `safety.estop`.
//!
//! # Patterns ([`Pattern`])
//!
//! A subscription names a pattern: segments like a topic's, where a segment may also be a
//! wildcard. A wildcard is a whole segment; `a*` or `**b` mixes it with text and is refused.
//!
//! - `*` matches exactly one segment.
//! - `**` matches zero or more segments, anywhere in the pattern, any number of times.
//! - Any other segment matches itself only.
//!
//! | pattern    | matches                     | does not match      |
//! |------------|-----------------------------|---------------------|
//! | `a.*.c`    | `a.b.c`                     | `a.c`, `a.b.b.c`    |
//! | `*`        | `x`                         | `x.y`               |
//! | `a.**`     | `a`, `a.b`, `a.b.c`         | `b`, `ab`           |
//! | `a.**.d`   | `a.d`, `a.b.c.d`            | `a.b.c`             |
//! | `**`       | every topic                 |                     |
//!
//! # Reserved prefixes ([`RESERVED_PREFIXES`], [`PublishPolicy`])
//!
//! Topics whose first segment is `safety`, `actuator`, `param` or `rebeam` (the bare word
//! included) belong to the host: Python may not publish on them, except on topics matching
//! a pattern the host opened (`rebeam --allow-publish PATTERN`). A prefix is a whole first
//! segment: `safetyvalve.x` is not reserved.
//!
//! # Delivery ([`Mailbox`])
//!
//! Each subscription has a mailbox: a bounded queue with an optional throttle.
//!
//! - When the queue is full, a new publication drops the oldest one. For sensor topics the
//!   latest value is what matters, so the newest is always kept. Drops are counted, so the
//!   subscriber can see that it missed publications.
//! - A throttled subscriber gets at most one item per `min_interval`, measured from the
//!   last delivery; the first delivery is never delayed. A zero interval is no throttle.
//!   Each delivery is the newest item waiting: the older ones are dropped (and counted),
//!   so a slow subscriber never works through a backlog of stale values.
//! - A queue holds at most [`MAX_QUEUE`] items, and grows as items arrive, never allocating
//!   its bound up front: a subscriber that asks for a big queue costs nothing until it falls
//!   behind. Subscriptions ask for a throttle of at most [`MAX_THROTTLE`].

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Separates the segments of topics and patterns.
const SEPARATOR: char = '.';
/// The wildcard character; a segment containing it must be one of the two wildcards.
const WILDCARD: char = '*';
const ONE_SEGMENT: &str = "*";
const ANY_SEGMENTS: &str = "**";

/// Prefixes closed to Python publishers unless the host opens a topic: "safety.", "actuator.", "param.", "rebeam."
pub const RESERVED_PREFIXES: [&str; 4] = ["safety", "actuator", "param", "rebeam"];

/// What a name is meant to be, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Topic,
    Pattern,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Topic => "topic",
            NameKind::Pattern => "pattern",
        })
    }
}

/// A topic or pattern that is malformed, a topic Python may not publish on, or a subscription
/// asking for more than its bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("empty {kind}: a {kind} is one or more segments separated by '.', e.g. 'sensors.imu'")]
    Empty { kind: NameKind },
    #[error(
        "{kind} '{name}' has an empty segment: segments are separated by single dots, \
         with none at the start or the end"
    )]
    EmptySegment { kind: NameKind, name: String },
    #[error(
        "pattern '{pattern}' has the segment '{segment}', which mixes '*' with other \
         characters: a wildcard is a whole segment, '*' (one segment) or '**' (any number)"
    )]
    MixedWildcard { pattern: String, segment: String },
    #[error(
        "topic '{topic}' contains '*': publications go to a concrete topic; \
         wildcards belong in subscription patterns"
    )]
    WildcardInTopic { topic: String },
    #[error(
        "topic '{topic}' is reserved: the '{prefix}.' prefix is for the host; only the host \
         may publish there (or open it with `rebeam --allow-publish PATTERN`)"
    )]
    Reserved { topic: String, prefix: &'static str },
    #[error(
        "subscription to '{pattern}' asks for queue={queue} and throttle={throttle:?}; \
         the bounds are 1 ≤ queue ≤ {max_queue} and throttle ≤ {max_throttle:?}: pass values within them",
        max_queue = MAX_QUEUE,
        max_throttle = MAX_THROTTLE
    )]
    OutOfBounds { pattern: String, queue: u32, throttle: Duration },
}

/// The non-empty segments of a topic or pattern.
fn segments(kind: NameKind, name: &str) -> Result<Vec<&str>, TopicError> {
    if name.is_empty() {
        return Err(TopicError::Empty { kind });
    }
    let segments: Vec<&str> = name.split(SEPARATOR).collect();
    if segments.iter().any(|s| s.is_empty()) {
        let name = name.to_owned();
        return Err(TopicError::EmptySegment { kind, name });
    }
    Ok(segments)
}

/// Checks a concrete topic: non-empty segments, no '*'.
pub fn validate_topic(topic: &str) -> Result<(), TopicError> {
    segments(NameKind::Topic, topic)?;
    if topic.contains(WILDCARD) {
        let topic = topic.to_owned();
        return Err(TopicError::WildcardInTopic { topic });
    }
    Ok(())
}

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    /// Matches this segment only.
    Literal(String),
    /// `*`: exactly one segment.
    One,
    /// `**`: zero or more segments.
    Any,
}

/// A subscription pattern over dotted topic names: segments separated by '.', `*` matches exactly one segment, `**` matches zero or more segments (anywhere in the pattern, any number of times).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    text: String,
    segments: Vec<Segment>,
}

impl Pattern {
    /// Rejects an empty pattern, empty segments (`a..b`, `.a`, `a.`) and segments mixing
    /// wildcards with text (`a*`, `**b`, `***`).
    pub fn parse(s: &str) -> Result<Pattern, TopicError> {
        let segments = segments(NameKind::Pattern, s)?
            .into_iter()
            .map(|segment| match segment {
                ONE_SEGMENT => Ok(Segment::One),
                ANY_SEGMENTS => Ok(Segment::Any),
                text if text.contains(WILDCARD) => {
                    Err(TopicError::MixedWildcard { pattern: s.to_owned(), segment: text.to_owned() })
                }
                text => Ok(Segment::Literal(text.to_owned())),
            })
            .collect::<Result<_, _>>()?;
        Ok(Pattern { text: s.to_owned(), segments })
    }

    /// Whether `topic`, a concrete name, matches. An invalid topic matches nothing.
    pub fn matches(&self, topic: &str) -> bool {
        if validate_topic(topic).is_err() {
            return false;
        }
        let topic: Vec<&str> = topic.split(SEPARATOR).collect();
        matches_segments(&self.segments, &topic)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Glob matching over segments, `*` as one and `**` as any number: a walk that, on a
/// mismatch, lets the latest `**` seen swallow one more topic segment and tries again.
fn matches_segments(pattern: &[Segment], topic: &[&str]) -> bool {
    let (mut p, mut t) = (0, 0);
    // The latest `**` seen: its index in the pattern, and the topic index it swallows up to.
    let mut latest_any: Option<(usize, usize)> = None;
    while t < topic.len() {
        match pattern.get(p) {
            Some(Segment::Any) => {
                latest_any = Some((p, t));
                p += 1;
            }
            Some(Segment::One) => (p, t) = (p + 1, t + 1),
            Some(Segment::Literal(text)) if text == topic[t] => (p, t) = (p + 1, t + 1),
            Some(Segment::Literal(_)) | None => match latest_any {
                Some((any, swallowed)) => {
                    latest_any = Some((any, swallowed + 1));
                    (p, t) = (any + 1, swallowed + 1);
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|s| *s == Segment::Any)
}

impl FromStr for Pattern {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, TopicError> {
        Pattern::parse(s)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Which topics Python may publish on: reserved prefixes are closed except topics matching a pattern the host opened.
#[derive(Debug, Clone)]
pub struct PublishPolicy {
    opened: Vec<Pattern>,
}

impl PublishPolicy {
    pub fn new(opened: Vec<Pattern>) -> Self {
        PublishPolicy { opened }
    }

    /// Ok if Python may publish on `topic`: a valid topic that is not reserved, or that a
    /// pattern the host opened matches.
    pub fn check(&self, topic: &str) -> Result<(), TopicError> {
        validate_topic(topic)?;
        let first = topic.split(SEPARATOR).next().unwrap_or(topic);
        let reserved = RESERVED_PREFIXES.into_iter().find(|&p| p == first);
        match reserved {
            None => Ok(()),
            Some(_) if self.opened.iter().any(|p| p.matches(topic)) => Ok(()),
            Some(prefix) => Err(TopicError::Reserved { topic: topic.to_owned(), prefix }),
        }
    }
}

/// How many undelivered publications a subscription keeps when it names no bound
/// (`rebeam.on(queue=...)`); when full, the oldest is dropped.
pub const DEFAULT_QUEUE: usize = 64;
/// The most undelivered publications one subscription keeps (`rebeam.on(queue=...)`).
pub const MAX_QUEUE: usize = 65_536;
/// The longest throttle a subscription may ask for (`rebeam.on(throttle=...)`).
pub const MAX_THROTTLE: Duration = Duration::from_secs(3600);

/// Per-subscription delivery control: a minimum interval between deliveries (throttle) and a bounded queue that drops the oldest when full, counting drops.
#[derive(Debug, Clone)]
pub struct Mailbox<T> {
    queue: VecDeque<T>,
    capacity: usize,
    min_interval: Duration,
    last_delivery: Option<Instant>,
    dropped: u64,
}

impl<T> Mailbox<T> {
    /// A capacity of 0 is taken as 1: a subscriber always holds at least the latest item.
    /// Past [`MAX_QUEUE`] it is taken as `MAX_QUEUE` (callers validate first; this keeps a
    /// mistake from costing memory). [`MAX_THROTTLE`] is for callers to check: an interval too
    /// long for an `Instant` is valid here and never opens.
    pub fn new(capacity: usize, min_interval: Duration) -> Self {
        let capacity = capacity.clamp(1, MAX_QUEUE);
        Mailbox { queue: VecDeque::new(), capacity, min_interval, last_delivery: None, dropped: 0 }
    }

    /// A publication arrives at `now`: queue it (dropping the oldest if full).
    ///
    /// Arrival time does not affect queueing; the throttle counts from deliveries.
    pub fn push(&mut self, item: T, _now: Instant) {
        if self.queue.len() == self.capacity {
            self.queue.pop_front();
            self.dropped = self.dropped.saturating_add(1);
        }
        self.queue.push_back(item);
    }

    /// The next item to deliver at `now`, if the throttle allows (at most one per min_interval since the last delivery; zero interval = no throttle).
    ///
    /// Unthrottled, items come out oldest first. Throttled, the newest waiting item comes out
    /// and the older ones are dropped (counted in [`Mailbox::dropped`]).
    pub fn pop_ready(&mut self, now: Instant) -> Option<T> {
        if self.queue.is_empty() || self.throttle_opens_at(now)? > now {
            return None;
        }
        self.last_delivery = Some(now);
        if !self.min_interval.is_zero() {
            let stale = self.queue.len() - 1;
            self.queue.drain(..stale);
            self.dropped = self.dropped.saturating_add(stale as u64);
        }
        self.queue.pop_front()
    }

    /// When the next item becomes deliverable (None if empty) — for the governor's timer.
    ///
    /// `now` itself if it is deliverable already. Also None if the throttle never opens (an
    /// interval too long to represent as an [`Instant`]).
    pub fn next_ready_at(&self, now: Instant) -> Option<Instant> {
        if self.queue.is_empty() {
            return None;
        }
        self.throttle_opens_at(now)
    }

    /// Counts `n` items lost after they left the mailbox (the subscriber could not take them).
    pub fn count_dropped(&mut self, n: u64) {
        self.dropped = self.dropped.saturating_add(n);
    }

    /// Publications dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// The most items it holds (its capacity after clamping).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The earliest instant, not before `now`, at which the throttle lets a delivery
    /// through; None if it never does.
    fn throttle_opens_at(&self, now: Instant) -> Option<Instant> {
        match self.last_delivery {
            None => Some(now),
            Some(_) if self.min_interval.is_zero() => Some(now),
            Some(last) => last.checked_add(self.min_interval).map(|at| at.max(now)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop, prop_assert, prop_assert_eq, proptest};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn pattern(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    /// Written out from the pattern rules: (pattern, topics it matches, topics it does not).
    const MATCHES: [(&str, &[&str], &[&str]); 11] = [
        ("a.*.c", &["a.b.c"], &["a.c", "a.b.b.c"]),
        ("*", &["x"], &["x.y"]),
        ("a.**", &["a", "a.b", "a.b.c"], &["b", "ab"]),
        ("**", &["a", "a.b.c.d"], &["a..b", ""]),
        ("**.**", &["a", "a.b"], &[]),
        ("a.**.d", &["a.d", "a.b.c.d"], &["a.b.c", "a.d.e"]),
        ("**.d", &["d", "a.d.d"], &["d.a"]),
        ("a.**.b.**.c", &["a.b.c", "a.x.b.y.z.c"], &["a.c.b"]),
        ("**.*", &["a", "a.b"], &[]),
        ("*.**.*", &["a.b", "a.b.c"], &["a"]),
        ("sensors.imu", &["sensors.imu"], &["sensors.imu.raw", "sensors", "sensors.*"]),
    ];

    #[test]
    fn pattern_matching_table() {
        for (p, yes, no) in MATCHES {
            yes.iter().for_each(|topic| assert!(pattern(p).matches(topic), "{p} ~ {topic}"));
            no.iter().for_each(|topic| assert!(!pattern(p).matches(topic), "{p} !~ {topic}"));
        }
    }

    #[test]
    fn bad_patterns_are_refused_with_a_reason() {
        use NameKind::Pattern as P;
        let empty_segment = |name: &str| TopicError::EmptySegment { kind: P, name: name.into() };
        let mixed = |pattern: &str, segment: &str| TopicError::MixedWildcard {
            pattern: pattern.into(),
            segment: segment.into(),
        };
        let cases = [
            ("", TopicError::Empty { kind: P }),
            ("a..b", empty_segment("a..b")),
            (".a", empty_segment(".a")),
            ("a.", empty_segment("a.")),
            (".", empty_segment(".")),
            ("a*", mixed("a*", "a*")),
            ("x.**b", mixed("x.**b", "**b")),
            ("***", mixed("***", "***")),
        ];
        for (text, expected) in cases {
            assert_eq!(Pattern::parse(text), Err(expected), "{text:?}");
        }
        let message = Pattern::parse("x.**b").unwrap_err().to_string();
        let expected = "pattern 'x.**b' has the segment '**b', which mixes '*' with other \
                        characters: a wildcard is a whole segment, '*' (one segment) or '**' \
                        (any number)";
        assert_eq!(message, expected);
        let message = Pattern::parse("a..b").unwrap_err().to_string();
        assert!(message.starts_with("pattern 'a..b' has an empty segment"), "{message}");
        assert_eq!(pattern("a.**").as_str(), "a.**");
        assert_eq!("a.*".parse::<Pattern>().unwrap().to_string(), "a.*");
    }

    #[test]
    fn topics_are_concrete() {
        assert_eq!(validate_topic("sensors.imu"), Ok(()));
        let empty = TopicError::Empty { kind: NameKind::Topic };
        assert_eq!(validate_topic(""), Err(empty));
        let err = validate_topic("a.").unwrap_err();
        assert!(err.to_string().starts_with("topic 'a.' has an empty segment"));
        let wildcard = TopicError::WildcardInTopic { topic: "a.*".into() };
        assert_eq!(validate_topic("a.*"), Err(wildcard));
        assert!(!pattern("a.*").matches("a.*.b"));
    }

    #[test]
    fn reserved_prefixes_are_closed_to_python() {
        let policy = PublishPolicy::new(vec![]);
        for prefix in RESERVED_PREFIXES {
            let topic = format!("{prefix}.x");
            let expected = TopicError::Reserved { topic: topic.clone(), prefix };
            assert_eq!(policy.check(&topic), Err(expected));
            assert!(policy.check(prefix).is_err(), "the bare word {prefix}");
        }
        let message = policy.check("safety.x").unwrap_err().to_string();
        let expected = "topic 'safety.x' is reserved: the 'safety.' prefix is for the host; \
                        only the host may publish there (or open it with \
                        `rebeam --allow-publish PATTERN`)";
        assert_eq!(message, expected);
        for open in ["safetyvalve.x", "sensors.safety", "x.rebeam.y", "params"] {
            assert_eq!(policy.check(open), Ok(()), "{open}");
        }
        assert!(matches!(policy.check("safety..x"), Err(TopicError::EmptySegment { .. })));
    }

    #[test]
    fn the_host_can_open_reserved_topics() {
        let opened = vec![pattern("safety.estop.ack"), pattern("actuator.**")];
        let policy = PublishPolicy::new(opened);
        assert_eq!(policy.check("safety.estop.ack"), Ok(()));
        assert_eq!(policy.check("actuator"), Ok(()));
        assert_eq!(policy.check("actuator.arm.joint3"), Ok(()));
        assert!(policy.check("safety.estop").is_err());
        assert!(policy.check("param.gain").is_err());
    }

    #[test]
    fn a_full_mailbox_drops_the_oldest_and_counts() {
        let now = Instant::now();
        let mut mailbox = Mailbox::new(2, Duration::ZERO);
        for item in 1..=5 {
            mailbox.push(item, now);
        }
        assert_eq!((mailbox.len(), mailbox.dropped()), (2, 3));
        assert_eq!(mailbox.pop_ready(now), Some(4));
        assert_eq!(mailbox.pop_ready(now), Some(5));
        assert_eq!(mailbox.pop_ready(now), None);
        assert!(mailbox.is_empty());
        assert_eq!(mailbox.next_ready_at(now), None);
        // Capacity 0 is taken as 1: the latest item is kept.
        let mut latest = Mailbox::new(0, Duration::ZERO);
        latest.push('a', now);
        latest.push('b', now);
        assert_eq!((latest.pop_ready(now), latest.dropped()), (Some('b'), 1));
    }

    #[test]
    fn a_huge_capacity_is_clamped_and_not_allocated_up_front() {
        let now = Instant::now();
        let mut mailbox = Mailbox::new(usize::MAX, Duration::ZERO);
        assert_eq!(mailbox.queue.capacity(), 0);
        for item in 0..MAX_QUEUE + 3 {
            mailbox.push(item, now);
        }
        assert_eq!((mailbox.len(), mailbox.dropped()), (MAX_QUEUE, 3));
    }

    #[test]
    fn a_throttled_mailbox_delivers_one_item_per_interval() {
        let t0 = Instant::now();
        let mut mailbox = Mailbox::new(1, ms(100));
        mailbox.push(1, t0);
        assert_eq!(mailbox.next_ready_at(t0), Some(t0));
        assert_eq!(mailbox.pop_ready(t0), Some(1));
        // Within the interval the newest is kept and waits.
        mailbox.push(2, t0 + ms(10));
        mailbox.push(3, t0 + ms(20));
        assert_eq!(mailbox.dropped(), 1);
        assert_eq!(mailbox.next_ready_at(t0 + ms(20)), Some(t0 + ms(100)));
        assert_eq!(mailbox.pop_ready(t0 + ms(99)), None);
        assert_eq!(mailbox.pop_ready(t0 + ms(100)), Some(3));
        // The interval counts from the last delivery, not from a fixed schedule.
        mailbox.push(4, t0 + ms(400));
        assert_eq!(mailbox.next_ready_at(t0 + ms(400)), Some(t0 + ms(400)));
        assert_eq!(mailbox.pop_ready(t0 + ms(450)), Some(4));
        mailbox.push(5, t0 + ms(460));
        assert_eq!(mailbox.next_ready_at(t0 + ms(460)), Some(t0 + ms(550)));
        assert_eq!(mailbox.pop_ready(t0 + ms(549)), None);
        assert_eq!(mailbox.pop_ready(t0 + ms(550)), Some(5));
    }

    #[test]
    fn a_throttled_mailbox_delivers_the_newest_and_drops_the_backlog() {
        let t0 = Instant::now();
        let mut mailbox = Mailbox::new(64, ms(200));
        mailbox.push(0, t0);
        assert_eq!(mailbox.pop_ready(t0), Some(0)); // the first delivery is not delayed
        for item in 1..50 {
            mailbox.push(item, t0 + ms(item));
        }
        assert_eq!((mailbox.len(), mailbox.dropped()), (49, 0));
        assert_eq!(mailbox.pop_ready(t0 + ms(199)), None);
        assert_eq!(mailbox.pop_ready(t0 + ms(200)), Some(49));
        assert_eq!((mailbox.len(), mailbox.dropped()), (0, 48));
        assert_eq!(mailbox.next_ready_at(t0 + ms(200)), None);
        // Unthrottled, nothing is skipped: oldest first.
        let mut fifo = Mailbox::new(64, Duration::ZERO);
        (0..3).for_each(|item| fifo.push(item, t0));
        let out: Vec<_> = std::iter::from_fn(|| fifo.pop_ready(t0)).collect();
        assert_eq!((out, fifo.dropped()), (vec![0, 1, 2], 0));
    }

    #[test]
    fn an_unrepresentable_interval_never_opens() {
        let t0 = Instant::now();
        let mut mailbox = Mailbox::new(1, Duration::MAX);
        mailbox.push(1, t0);
        assert_eq!(mailbox.pop_ready(t0), Some(1));
        mailbox.push(2, t0);
        assert_eq!(mailbox.next_ready_at(t0 + ms(1)), None);
        assert_eq!(mailbox.pop_ready(t0 + ms(1)), None);
        assert_eq!(mailbox.len(), 1);
    }

    /// Reference matcher, recursive straight from the rules.
    fn reference(pattern: &[&str], topic: &[&str]) -> bool {
        match pattern.split_first() {
            None => topic.is_empty(),
            Some((&"**", rest)) => (0..=topic.len()).any(|k| reference(rest, &topic[k..])),
            Some((&"*", rest)) => !topic.is_empty() && reference(rest, &topic[1..]),
            Some((literal, rest)) => topic.first() == Some(literal) && reference(rest, &topic[1..]),
        }
    }

    const WORDS: [&str; 4] = ["a", "b", "c", "safety"];

    proptest! {
        #[test]
        fn matching_agrees_with_the_reference(
            topic in prop::collection::vec(prop::sample::select(WORDS.to_vec()), 1..7),
            picks in prop::collection::vec((0usize..3, 0usize..8), 1..8),
        ) {
            // Pattern segments: a wildcard, or a word of the topic (or any word).
            let segments: Vec<&str> = picks
                .iter()
                .map(|&(kind, i)| match kind {
                    0 => "*",
                    1 => "**",
                    _ => topic.get(i).copied().unwrap_or(WORDS[i % WORDS.len()]),
                })
                .collect();
            let text = topic.join(".");
            let p = Pattern::parse(&segments.join(".")).unwrap();
            prop_assert_eq!(p.matches(&text), reference(&segments, &topic));
            prop_assert!(pattern("**").matches(&text));
            prop_assert!(pattern(&text).matches(&text));
        }

        #[test]
        fn mailbox_accounts_for_every_item(
            capacity in 0usize..4,
            interval_ms in 0u64..50,
            steps in prop::collection::vec((prop::bool::ANY, 0u64..30), 1..60),
        ) {
            let mut mailbox = Mailbox::new(capacity, ms(interval_ms));
            let mut now = Instant::now();
            let (mut pushed, mut delivered) = (0u64, Vec::new());
            for (push, advance) in steps {
                now += ms(advance);
                if push {
                    mailbox.push(pushed, now);
                    pushed += 1;
                } else {
                    let ready_now = mailbox.next_ready_at(now) == Some(now);
                    let item = mailbox.pop_ready(now);
                    prop_assert_eq!(item.is_some(), ready_now);
                    delivered.extend(item.map(|item| (item, now)));
                }
                prop_assert!(mailbox.len() <= capacity.max(1));
                let ready = mailbox.next_ready_at(now);
                prop_assert!(ready.iter().all(|&at| at >= now));
                prop_assert_eq!(ready.is_none(), mailbox.is_empty());
            }
            let queued = mailbox.len() as u64;
            prop_assert_eq!(pushed, delivered.len() as u64 + mailbox.dropped() + queued);
            prop_assert!(delivered.windows(2).all(|w| w[0].0 < w[1].0));
            prop_assert!(delivered.windows(2).all(|w| w[1].1 - w[0].1 >= ms(interval_ms)));
        }
    }
}
