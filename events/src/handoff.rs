//! Log rows this process committed, kept in memory for its own embedded consumers: a
//! consumer that handles query events takes the query-event batcher's committed batches from
//! here instead of reading each ~600-byte body back from the log and decoding it again. The
//! log stays the source of truth: a batch is held only when its `seq`s are known exactly, and
//! whatever lies between a consumer's offset and the batches held (other writers' events,
//! other processes', the consumer's own) is read from the log.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use parking_lot::Mutex;

use crate::envelope::Envelope;

/// Events held at most (oldest batches go first). At tens of thousands of queries a second
/// this is a fraction of a second of the log: enough for consumers that keep up, and a
/// consumer that falls behind reads the log as before. Batches every reader has committed
/// are let go sooner ([`Handoff::release`]).
const KEEP_EVENTS: usize = 10_000;

/// Events committed together whose `seq`s are `first`, `first + 1`, ….
#[derive(Clone, Debug)]
pub(crate) struct Committed {
    pub(crate) first: i64,
    pub(crate) events: Arc<[Envelope]>,
}

impl Committed {
    /// The `seq` of the batch's last event.
    pub(crate) fn last(&self) -> i64 {
        self.first + self.events.len() as i64 - 1
    }
}

/// The batches held, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Handoff {
    held: Mutex<Held>,
    /// Set once a consumer in this process takes batches from here: until then (NATS mode,
    /// a `persql api` process without consumers) nothing is numbered or held.
    wanted: AtomicBool,
}

#[derive(Debug, Default)]
struct Held {
    batches: VecDeque<Committed>,
    events: usize,
    /// Each reader's committed offset, by the index `want` gave it.
    readers: Vec<i64>,
}

impl Held {
    fn pop_oldest(&mut self) {
        if let Some(old) = self.batches.pop_front() {
            self.events -= old.events.len();
        }
    }
}

/// A consumer that takes batches from the [`Handoff`] (see [`Handoff::want`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader(usize);

impl Handoff {
    /// Registers a consumer of this process that reads batches from here, at offset 0 until
    /// it first calls [`release`](Self::release).
    pub(crate) fn want(&self) -> Reader {
        let mut held = self.held.lock();
        held.readers.push(0);
        self.wanted.store(true, Ordering::Relaxed);
        Reader(held.readers.len() - 1)
    }

    /// Records that `reader` committed everything up to `offset`, and lets go of the batches
    /// every reader has: held past that, each would only keep ~1 KB of allocations alive (at
    /// 20,000 queries a second, 10,000 events held were half a second of the log, whose
    /// memory the query path then allocated afresh instead of reusing it warm).
    pub(crate) fn release(&self, reader: Reader, offset: i64) {
        let mut held = self.held.lock();
        let Some(at) = held.readers.get_mut(reader.0) else {
            return;
        };
        *at = (*at).max(offset);
        let done = held.readers.iter().copied().min().unwrap_or(0);
        while held.batches.front().is_some_and(|b| b.last() <= done) {
            held.pop_oldest();
        }
    }

    /// Whether committed batches are worth numbering and holding.
    pub(crate) fn wanted(&self) -> bool {
        self.wanted.load(Ordering::Relaxed)
    }

    /// Holds a committed batch (`events` at `seq`s from `first`), dropping the oldest beyond
    /// [`KEEP_EVENTS`].
    pub(crate) fn push(&self, first: i64, events: Arc<[Envelope]>) {
        if events.is_empty() {
            return;
        }
        let mut held = self.held.lock();
        // Commits are serialized, so batches arrive in `seq` order; a stale one would break
        // the order `after` relies on, so it is not held.
        if held.batches.back().is_some_and(|b| b.last() >= first) {
            return;
        }
        held.events += events.len();
        held.batches.push_back(Committed { first, events });
        while held.events > KEEP_EVENTS && held.batches.len() > 1 {
            held.pop_oldest();
        }
    }

    /// The held batches wholly after `offset`, oldest first: the first of them, then those
    /// that follow it without a gap, while their events add up to at most `limit` (the
    /// first is always taken).
    pub(crate) fn after(&self, offset: i64, limit: usize) -> Vec<Committed> {
        let held = self.held.lock();
        let start = held.batches.partition_point(|b| b.first <= offset);
        let mut out: Vec<Committed> = Vec::new();
        let mut events = 0;
        for b in held.batches.range(start..) {
            if let Some(prev) = out.last()
                && (prev.last() + 1 != b.first || events + b.events.len() > limit)
            {
                break;
            }
            events += b.events.len();
            out.push(b.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TokensRevoked;

    fn events(n: usize) -> Arc<[Envelope]> {
        (0..n)
            .map(|_| {
                Envelope::new(
                    "/t",
                    "acme",
                    "tokens",
                    &TokensRevoked {
                        token_ids: vec![],
                        reason: "test".into(),
                    },
                )
            })
            .collect()
    }

    fn firsts(batches: &[Committed]) -> Vec<i64> {
        batches.iter().map(|b| b.first).collect()
    }

    #[test]
    fn batches_after_an_offset_stop_at_the_first_gap_and_the_limit() {
        let h = Handoff::default();
        h.push(1, events(3)); // 1..=3
        h.push(4, events(2)); // 4..=5
        h.push(8, events(2)); // 8..=9, after a gap (6, 7: another writer's)
        h.push(10, events(4)); // 10..=13
        assert_eq!(firsts(&h.after(0, 100)), [1, 4]);
        // A batch the offset reaches into is not taken: its rest comes from the log.
        assert_eq!(firsts(&h.after(2, 100)), [4]);
        assert_eq!(firsts(&h.after(5, 100)), [8, 10]);
        assert_eq!(firsts(&h.after(6, 100)), [8, 10]);
        assert_eq!(firsts(&h.after(5, 5)), [8]);
        // The first batch is taken whatever the limit.
        assert_eq!(firsts(&h.after(9, 1)), [10]);
        assert!(h.after(13, 100).is_empty());
    }

    #[test]
    fn batches_go_once_every_reader_committed_them() {
        let h = Handoff::default();
        let (a, b) = (h.want(), h.want());
        h.push(1, events(3)); // 1..=3
        h.push(4, events(2)); // 4..=5
        h.push(6, events(2)); // 6..=7
        h.release(a, 5);
        // `b` has committed nothing yet: all stay.
        assert_eq!(firsts(&h.after(0, 100)), [1, 4, 6]);
        h.release(b, 3);
        assert_eq!(firsts(&h.after(0, 100)), [4, 6]);
        // An offset within a batch keeps it.
        h.release(b, 6);
        assert_eq!(firsts(&h.after(0, 100)), [6]);
        // Offsets never move back.
        h.release(a, 2);
        h.release(b, 7);
        assert_eq!(firsts(&h.after(0, 100)), [6]);
        h.release(a, 7);
        assert!(h.after(0, 100).is_empty());
        assert_eq!(h.held.lock().events, 0);
    }

    #[test]
    fn the_oldest_batches_go_beyond_the_limit_and_stale_ones_are_not_held() {
        let h = Handoff::default();
        h.push(1, events(KEEP_EVENTS - 1));
        let next = KEEP_EVENTS as i64;
        h.push(next, events(2));
        assert_eq!(firsts(&h.after(0, usize::MAX)), [next]);
        // Overlapping what is held: not held.
        h.push(next + 1, events(1));
        h.push(next + 2, events(0));
        assert_eq!(firsts(&h.after(0, usize::MAX)), [next]);
        h.push(next + 2, events(1));
        assert_eq!(firsts(&h.after(0, usize::MAX)), [next, next + 2]);
    }
}
