//! A failure too large for a ring record, cut to fit with a note saying so.
//!
//! A direct call's failure (an exception whose message or traceback is huge) has no governor's
//! way to go: the governor routes only replies' payloads, and a failure is a few strings. So
//! it is cut, never dropped (a dropped answer leaves its caller waiting out its timeout).
//! The rules:
//! - Its kind is kept whole; its words are cut so the record fits: every string to the same
//!   limit, the largest that fits.
//! - A message and an exception type keep their start (what the error is); a traceback keeps
//!   its start and its end (the frames, and where it was raised with the exception's line),
//!   and loses its middle.
//! - Each cut string says where it was cut and how many bytes went ([`note`]).

use rebeam_proto::ErrorInfo;

/// The failure `info`, its strings cut to the largest equal limit for which `fits` holds;
/// `info` itself if it fits as it is. None only if even the notes alone do not fit.
pub(crate) fn fit(info: &ErrorInfo, fits: impl Fn(&ErrorInfo) -> bool) -> Option<ErrorInfo> {
    if fits(info) {
        return Some(info.clone());
    }
    let longest = [Some(&info.message), info.exc_type.as_ref(), info.traceback.as_ref()]
        .into_iter()
        .flatten()
        .map(String::len)
        .max()
        .unwrap_or(0);
    // The largest limit that fits, by bisection: `lo` fits (or is 0), `hi` does not.
    let (mut lo, mut hi) = (0, longest);
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        if fits(&cut_to(info, mid)) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let cut = cut_to(info, lo);
    fits(&cut).then_some(cut)
}

/// `info` with each string at most `limit` bytes of its own (plus the note where cut).
fn cut_to(info: &ErrorInfo, limit: usize) -> ErrorInfo {
    ErrorInfo {
        kind: info.kind,
        message: head(&info.message, limit),
        exc_type: info.exc_type.as_deref().map(|t| head(t, limit)),
        traceback: info.traceback.as_deref().map(|t| ends(t, limit)),
    }
}

/// What a cut string says in place of what it lost.
pub(crate) fn note(cut: usize) -> String {
    format!(" [... {cut} bytes cut: the error was too large for the channel ...] ")
}

/// The first `limit` bytes of `s` (at a char boundary), then the note.
fn head(s: &str, limit: usize) -> String {
    if s.len() <= limit {
        return s.to_string();
    }
    let end = floor_boundary(s, limit);
    format!("{}{}", &s[..end], note(s.len() - end))
}

/// The first and last `limit / 2` bytes of `s` (at char boundaries), the note between.
fn ends(s: &str, limit: usize) -> String {
    if s.len() <= limit {
        return s.to_string();
    }
    let start = floor_boundary(s, limit / 2);
    let mut tail = s.len() - (limit - limit / 2);
    while !s.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}{}{}", &s[..start], note(tail - start), &s[tail..])
}

fn floor_boundary(s: &str, mut at: usize) -> usize {
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebeam_proto::ErrorKind;

    fn size(info: &ErrorInfo) -> usize {
        info.message.len()
            + info.exc_type.as_ref().map_or(0, String::len)
            + info.traceback.as_ref().map_or(0, String::len)
    }

    fn huge() -> ErrorInfo {
        ErrorInfo {
            kind: ErrorKind::Crashed,
            message: "é".repeat(50_000),
            exc_type: Some("ValueError".into()),
            traceback: Some(format!("Traceback (most recent call last):\n{}\nValueError: end", "x".repeat(80_000))),
        }
    }

    #[test]
    fn a_failure_that_fits_is_kept_as_it_is() {
        let info = huge();
        assert_eq!(fit(&info, |_| true), Some(info));
    }

    #[test]
    fn a_failure_too_large_is_cut_to_the_largest_that_fits_and_says_so() {
        let room = 4000;
        let cut = fit(&huge(), |i| size(i) <= room).expect("fits");
        assert!(size(&cut) <= room, "{}", size(&cut));
        assert!(size(&cut) > room - 200, "the largest limit that fits, not much less: {}", size(&cut));
        assert_eq!((cut.kind, cut.exc_type.as_deref()), (ErrorKind::Crashed, Some("ValueError")));
        assert!(cut.message.starts_with("éé") && cut.message.contains("bytes cut"), "{}", cut.message);
        let tb = cut.traceback.expect("kept");
        assert!(tb.starts_with("Traceback (most recent call last):"), "its start");
        assert!(tb.ends_with("ValueError: end"), "its end, where it was raised");
        assert!(tb.contains("bytes cut: the error was too large"));
    }

    #[test]
    fn the_note_counts_the_bytes_cut() {
        let s = "a".repeat(100);
        assert_eq!(head(&s, 10), format!("{}{}", "a".repeat(10), note(90)));
        assert_eq!(ends(&s, 10), format!("{}{}{}", "a".repeat(5), note(90), "a".repeat(5)));
        assert_eq!(head("ab", 10), "ab", "not cut: no note");
    }

    #[test]
    fn nothing_fits_is_none() {
        assert_eq!(fit(&huge(), |_| false), None);
    }
}
