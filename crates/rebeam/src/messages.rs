//! Units and the message envelope of the robotics seed, as plain dicts in Python.
//!
//! - [`Quantity`] ↔ `{"value": float, "unit": str}`.
//! - [`Envelope`] ↔ `{"monotonic_ns", "wall_ns", "node", "frame_id", "payload"}`: when the
//!   message was made on the sender's monotonic clock (comparable within one machine) and on
//!   the wall clock (nanoseconds since the Unix epoch), who sent it, in which frame of
//!   reference, and what it carries.
//!
//! ```
//! use rebeam::messages::{Envelope, Quantity};
//! let speed = Envelope::now("base", "odom", Quantity::new(0.4, "m/s"));
//! let v = rebeam::to_value(&speed).unwrap();
//! let back: Envelope<Quantity> = rebeam::from_value(v).unwrap();
//! assert_eq!(back.payload.unit, "m/s");
//! ```

use serde::{Deserialize, Serialize};

/// A number with its unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantity {
    /// The magnitude.
    pub value: f64,
    /// Its unit, as the two sides agree to spell it (`"m"`, `"rad/s"`).
    pub unit: String,
}

impl Quantity {
    /// `value` in `unit`.
    pub fn new(value: f64, unit: impl Into<String>) -> Quantity {
        Quantity { value, unit: unit.into() }
    }
}

/// A message with its times, origin and frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// The sender's monotonic clock when the message was made, in nanoseconds.
    pub monotonic_ns: u64,
    /// The wall clock then, in nanoseconds since the Unix epoch.
    pub wall_ns: u64,
    /// The node (program or robot part) that sent it.
    pub node: String,
    /// The frame of reference its geometry is in.
    pub frame_id: String,
    /// What it carries.
    pub payload: T,
}

impl<T> Envelope<T> {
    /// `payload` stamped with both clocks now.
    pub fn now(node: impl Into<String>, frame_id: impl Into<String>, payload: T) -> Envelope<T> {
        let (monotonic_ns, wall_ns) = clocks_now();
        Envelope { monotonic_ns, wall_ns, node: node.into(), frame_id: frame_id.into(), payload }
    }
}

/// This machine's monotonic clock (Python's `time.monotonic_ns`) and the wall clock, in ns.
pub(crate) fn clocks_now() -> (u64, u64) {
    let mono = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let monotonic_ns = (mono.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(mono.tv_nsec as u64);
    let wall_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    (monotonic_ns, wall_ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{from_value, to_value, Value};

    #[test]
    fn a_quantity_is_a_dict_of_value_and_unit() {
        let v = to_value(&Quantity::new(1.5, "m")).unwrap();
        assert_eq!(v, Value::Map(vec![("value".into(), Value::Float(1.5)), ("unit".into(), Value::Str("m".into()))]));
    }

    #[test]
    fn an_envelope_carries_both_clocks_and_round_trips() {
        let a = Envelope::now("arm", "base_link", 7u8);
        let b = Envelope::now("arm", "base_link", 8u8);
        assert!(b.monotonic_ns >= a.monotonic_ns, "the monotonic clock does not go back");
        assert!(a.wall_ns > 1_600_000_000_000_000_000, "nanoseconds since the epoch");
        let Value::Map(items) = to_value(&a).unwrap() else { panic!() };
        let keys: Vec<&str> = items.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["monotonic_ns", "wall_ns", "node", "frame_id", "payload"]);
        assert_eq!(from_value::<Envelope<u8>>(to_value(&a).unwrap()).unwrap(), a);
    }
}
