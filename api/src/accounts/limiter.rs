//! Sign-in rate limit: attempts counted per (email, client IP) in a window; past the
//! limit, sign-in answers 429 until the window passes. An attempt is counted *before* its
//! password is hashed, so concurrent attempts cannot all slip past the check. A success
//! clears the (email, IP) count and gives the IP its attempt back. One address also gets at
//! most ten times the limit across all emails (password spraying). Sign-ups are counted per
//! IP in the same window, also before any work (each costs an argon2 hash and a namespace).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use moka::sync::Cache;

/// Counters of sign-in attempts and sign-ups.
#[derive(Clone)]
pub struct SignInLimiter {
    counts: Cache<String, Arc<AtomicU32>>,
    max_failures: u32,
    max_sign_ups: u32,
}

impl SignInLimiter {
    /// At most `max_failures` failed attempts per (email, IP) and `max_sign_ups` new
    /// accounts per IP within `window`.
    pub fn new(max_failures: u32, max_sign_ups: u32, window: Duration) -> Self {
        Self {
            counts: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(window)
                .build(),
            max_failures,
            max_sign_ups,
        }
    }

    fn key(email: &str, ip: &str) -> String {
        format!("{email}\u{0}{ip}")
    }

    fn sign_up_key(ip: &str) -> String {
        format!("\u{1}sign-up\u{0}{ip}")
    }

    fn counter(&self, key: String) -> Arc<AtomicU32> {
        self.counts.get_with(key, || Arc::new(AtomicU32::new(0)))
    }

    /// Takes one of the `max` slots of `key` in one atomic step; false when none is left.
    fn take(&self, key: String, max: u32) -> bool {
        self.counter(key)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    fn give_back(&self, key: &str) {
        if let Some(n) = self.counts.get(key) {
            let _ = n.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
    }

    /// Counts a sign-in attempt before it is checked; false (and nothing counted) when this
    /// IP overall, or this (email, IP), has used up its attempts.
    pub fn try_attempt(&self, email: &str, ip: &str) -> bool {
        let per_ip = Self::key("", ip);
        if !self.take(per_ip.clone(), self.max_failures.saturating_mul(10)) {
            return false;
        }
        if !self.take(Self::key(email, ip), self.max_failures) {
            self.give_back(&per_ip);
            return false;
        }
        true
    }

    /// After a successful sign-in: clears the (email, IP) count and returns the IP's
    /// attempt (only failures count against it).
    pub fn succeeded(&self, email: &str, ip: &str) {
        self.counts.invalidate(&Self::key(email, ip));
        self.give_back(&Self::key("", ip));
    }

    /// Counts a sign-up from `ip` before it is done; false when this IP has used up its
    /// sign-ups within the window.
    pub fn try_sign_up(&self, ip: &str) -> bool {
        self.take(Self::sign_up_key(ip), self.max_sign_ups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_past_the_limit_are_refused_per_email_and_ip() {
        let l = SignInLimiter::new(2, 10, Duration::from_secs(60));
        assert!(l.try_attempt("a@x", "1.1.1.1"));
        assert!(l.try_attempt("a@x", "1.1.1.1"));
        assert!(!l.try_attempt("a@x", "1.1.1.1"));
        assert!(l.try_attempt("a@x", "2.2.2.2"));
        assert!(l.try_attempt("b@x", "1.1.1.1"));
        l.succeeded("a@x", "1.1.1.1");
        assert!(l.try_attempt("a@x", "1.1.1.1"));
    }

    #[test]
    fn one_address_spraying_many_emails_is_refused_too() {
        let l = SignInLimiter::new(1, 10, Duration::from_secs(60));
        for i in 0..10 {
            assert!(l.try_attempt(&format!("u{i}@x"), "1.1.1.1"));
        }
        assert!(!l.try_attempt("fresh@x", "1.1.1.1"));
        assert!(l.try_attempt("fresh@x", "2.2.2.2"));
    }

    #[test]
    fn successes_do_not_use_up_the_addresss_attempts() {
        let l = SignInLimiter::new(1, 10, Duration::from_secs(60));
        for i in 0..30 {
            let email = format!("u{i}@x");
            assert!(l.try_attempt(&email, "1.1.1.1"));
            l.succeeded(&email, "1.1.1.1");
        }
        assert!(l.try_attempt("fresh@x", "1.1.1.1"));
    }

    #[test]
    fn concurrent_attempts_never_exceed_the_limit() {
        let l = SignInLimiter::new(10, 10, Duration::from_secs(60));
        let admitted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..40)
                .map(|_| s.spawn(|| usize::from(l.try_attempt("a@x", "1.1.1.1"))))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(admitted, 10);
    }

    #[test]
    fn sign_ups_past_the_limit_are_refused_per_ip() {
        let l = SignInLimiter::new(1, 2, Duration::from_secs(60));
        assert!(l.try_sign_up("1.1.1.1"));
        assert!(l.try_sign_up("1.1.1.1"));
        assert!(!l.try_sign_up("1.1.1.1"));
        assert!(l.try_sign_up("2.2.2.2"));
        // Sign-ups and sign-ins do not share a count.
        assert!(l.try_attempt("a@x", "1.1.1.1"));
    }
}
