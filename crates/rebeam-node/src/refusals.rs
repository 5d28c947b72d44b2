//! The log line of a link refused for its cookie, on the node that refused it.
//!
//! Zenoh's handshake says why it refused a link only at debug level, in its own words, and
//! rebeam keeps Zenoh's logs off by default. This layer listens to that one module of Zenoh's
//! (whatever the log filter) and turns a failed user/password check into one warning in
//! rebeam's words; it lets everything else pass unseen.

use tracing::field::{Field, Visit};
use tracing::{Level, Subscriber};
use tracing_subscriber::filter::{Filtered, Targets};
use tracing_subscriber::layer::{Context, Layer};

/// Where Zenoh logs the end of a handshake it accepted or refused.
const HANDSHAKE_TARGET: &str = "zenoh_transport::unicast::establishment::accept";

/// What the user/password check says when the other side's password (our cookie) is wrong.
const REFUSALS: [&str; 2] = ["Invalid password", "Invalid user"];

/// The layer: add it beside the log's own (`registry().with(fmt).with(refusals())`).
pub fn refusals<S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>>() -> Filtered<Refusals, Targets, S>
{
    Refusals.with_filter(Targets::new().with_target(HANDSHAKE_TARGET, Level::DEBUG))
}

pub struct Refusals;

impl<S: Subscriber> Layer<S> for Refusals {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut message = Message::default();
        event.record(&mut message);
        if is_refusal(&message.0) {
            tracing::warn!("refused a link from a node whose cookie is not this node's: it cannot call anything here");
        }
    }
}

/// Whether Zenoh's handshake message is a failed user/password check.
pub fn is_refusal(message: &str) -> bool {
    message.contains("UsrPwd") && REFUSALS.iter().any(|r| message.contains(r))
}

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_failed_cookie_check_is_a_refusal() {
        assert!(is_refusal("UsrPwd extension - Recv OpenSyn. Invalid password."));
        assert!(is_refusal("UsrPwd extension - Recv OpenSyn. Invalid user."));
        assert!(!is_refusal("New transport link accepted from a to b: tcp/127.0.0.1:7447"));
        assert!(!is_refusal("Invalid password"), "not the user/password check's words");
    }
}
