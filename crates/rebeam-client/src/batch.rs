//! Frames held briefly, so that a burst of them goes to the governor in one write.
//!
//! A `@when` nobody waits for, or a behaviour's "done", costs a write (a system call, and a
//! read and a wake-up in the governor) when sent alone; a program schedules them in bursts.
//! The rules:
//! - Only frames whose sender waits for nothing are held (see [`Client::hold_request`] and
//!   [`Client::hold_event`]), and only small ones ([`HELD_FRAME_MAX_BYTES`]): a larger frame
//!   goes at once, after those held.
//! - Held frames go before anything else this process writes, to the governor or onto a direct
//!   channel: whatever one thread sends keeps its order, and a peer told something by a
//!   message has heard of every schedule made before it.
//! - They go when [`HELD_FRAMES`] are held, when anything else is written, or at
//!   [`Client::flush_held`]. Holding never waits on a timer: the binding decides when a burst is
//!   over (rebeam-py flushes once the thread that held them lets Python run elsewhere), and
//!   [`Client::wait_held`] is how its flusher learns that frames are held. A holder that flushes
//!   itself when its burst ends holds without waking the flusher
//!   ([`Client::hold_event_unwoken`]): no wake-up, and no other thread asking for the GIL.
//!
//! [`Client::hold_request`]: crate::Client::hold_request
//! [`Client::hold_event`]: crate::Client::hold_event
//! [`Client::hold_event_unwoken`]: crate::Client::hold_event_unwoken
//! [`Client::flush_held`]: crate::Client::flush_held
//! [`Client::wait_held`]: crate::Client::wait_held

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

use rebeam_proto::Encoded;

use crate::client::lock;

/// At most this many frames are held; the one that fills the batch sends it.
pub const HELD_FRAMES: usize = 64;

/// A frame larger than this is never held (a behaviour with a large capture): copying it into
/// the batch would cost more than the write it saves.
pub const HELD_FRAME_MAX_BYTES: usize = 4096;

#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    frames: usize,
    /// The flusher sleeps in [`Held::wait`] (so the first frame held must wake it).
    asleep: bool,
}

/// What is held, and the flusher's bell.
#[derive(Default)]
pub(crate) struct Held {
    batch: Mutex<Batch>,
    /// Whether any frame is held: read without the lock by every writer.
    any: AtomicBool,
    bell: Condvar,
}

/// What [`Held::push`] did with a frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Held; nothing to do now.
    Held,
    /// Held, and the batch is full: flush it.
    Full,
    /// Too large to hold: write it (after the held frames).
    Refused,
}

impl Held {
    /// Holds an encoded frame (see the module's rules). `wake`: the flusher, if asleep, is woken
    /// for it; without, the frame waits for the holder's own flush (or anything else written),
    /// and a later frame held with `wake` wakes the flusher for both.
    pub(crate) fn push(&self, frame: &Encoded, wake: bool) -> Pushed {
        if frame.len() > HELD_FRAME_MAX_BYTES {
            return Pushed::Refused;
        }
        let mut batch = lock(&self.batch);
        batch.bytes.extend_from_slice(&frame.to_vec());
        batch.frames += 1;
        if batch.frames == 1 {
            self.any.store(true, Ordering::SeqCst);
        }
        if wake && batch.asleep {
            batch.asleep = false;
            self.bell.notify_one();
        }
        if batch.frames >= HELD_FRAMES {
            Pushed::Full
        } else {
            Pushed::Held
        }
    }

    /// Whether any frame is held (a hint: a writer that sees none has nothing of its own
    /// thread's to send first, since its own pushes happened before).
    pub(crate) fn any(&self) -> bool {
        self.any.load(Ordering::SeqCst)
    }

    /// Writes what is held to `w`, which the caller holds the writer's lock on: held frames go
    /// before the caller's own. [`Held::any`] stays true until they are written, so a writer
    /// that saw it takes the writer's lock, and waits for this write, before it sends anything
    /// elsewhere (a direct channel).
    pub(crate) fn write_to(&self, w: &mut impl Write) -> std::io::Result<()> {
        if !self.any() {
            return Ok(());
        }
        let bytes = {
            let mut batch = lock(&self.batch);
            batch.frames = 0;
            std::mem::take(&mut batch.bytes)
        };
        let written = w.write_all(&bytes);
        let batch = lock(&self.batch);
        self.any.store(batch.frames > 0, Ordering::SeqCst);
        written
    }

    /// Waits until a frame is held (true), or `over()` says to stop (false): a closed
    /// connection, or the binding's own stop, which [`Held::wake`] makes it look at.
    pub(crate) fn wait(&self, over: impl Fn() -> bool) -> bool {
        let mut batch = lock(&self.batch);
        loop {
            if over() {
                return false;
            }
            if batch.frames > 0 {
                return true;
            }
            batch.asleep = true;
            batch = self.bell.wait(batch).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Wakes a thread in [`Held::wait`] to look at its `over()` again.
    pub(crate) fn wake(&self) {
        let _guard = lock(&self.batch);
        self.bell.notify_all();
    }
}
