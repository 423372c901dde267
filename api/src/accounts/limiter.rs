//! Sign-in rate limit: failed attempts counted per (email, client IP) in a window; past the
//! limit, sign-in answers 429 until the window passes. A success clears the count. One
//! address also gets at most ten times the limit across all emails (password spraying).
//! Sign-ups are counted per IP in the same window (each costs an argon2 hash and a namespace).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use moka::sync::Cache;

/// Counters of failed sign-ins.
#[derive(Clone)]
pub struct SignInLimiter {
    failures: Cache<String, Arc<AtomicU32>>,
    max_failures: u32,
    max_sign_ups: u32,
}

impl SignInLimiter {
    /// At most `max_failures` failed attempts per (email, IP) and `max_sign_ups` new
    /// accounts per IP within `window`.
    pub fn new(max_failures: u32, max_sign_ups: u32, window: Duration) -> Self {
        Self {
            failures: Cache::builder()
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

    fn bump(&self, key: String) {
        self.failures
            .get_with(key, || Arc::new(AtomicU32::new(0)))
            .fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self, key: &str) -> u32 {
        self.failures
            .get(key)
            .map_or(0, |n| n.load(Ordering::Relaxed))
    }

    /// False when this (email, IP), or this IP overall, has used up its attempts.
    pub fn allowed(&self, email: &str, ip: &str) -> bool {
        self.count(&Self::key(email, ip)) < self.max_failures
            && self.count(&Self::key("", ip)) < self.max_failures.saturating_mul(10)
    }

    /// Counts a failed attempt.
    pub fn failed(&self, email: &str, ip: &str) {
        self.bump(Self::key(email, ip));
        self.bump(Self::key("", ip));
    }

    /// False when this IP has created `max_sign_ups` accounts within the window.
    pub fn sign_up_allowed(&self, ip: &str) -> bool {
        self.count(&Self::sign_up_key(ip)) < self.max_sign_ups
    }

    /// Counts an account created from `ip`.
    pub fn signed_up(&self, ip: &str) {
        self.bump(Self::sign_up_key(ip));
    }

    /// Clears the count after a successful sign-in.
    pub fn succeeded(&self, email: &str, ip: &str) {
        self.failures.invalidate(&Self::key(email, ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_past_the_limit_are_refused_per_email_and_ip() {
        let l = SignInLimiter::new(2, 10, Duration::from_secs(60));
        assert!(l.allowed("a@x", "1.1.1.1"));
        l.failed("a@x", "1.1.1.1");
        l.failed("a@x", "1.1.1.1");
        assert!(!l.allowed("a@x", "1.1.1.1"));
        assert!(l.allowed("a@x", "2.2.2.2"));
        assert!(l.allowed("b@x", "1.1.1.1"));
        l.succeeded("a@x", "1.1.1.1");
        assert!(l.allowed("a@x", "1.1.1.1"));
    }

    #[test]
    fn one_address_spraying_many_emails_is_refused_too() {
        let l = SignInLimiter::new(1, 10, Duration::from_secs(60));
        for i in 0..10 {
            assert!(l.allowed(&format!("u{i}@x"), "1.1.1.1"));
            l.failed(&format!("u{i}@x"), "1.1.1.1");
        }
        assert!(!l.allowed("fresh@x", "1.1.1.1"));
        assert!(l.allowed("fresh@x", "2.2.2.2"));
    }

    #[test]
    fn sign_ups_past_the_limit_are_refused_per_ip() {
        let l = SignInLimiter::new(1, 2, Duration::from_secs(60));
        for _ in 0..2 {
            assert!(l.sign_up_allowed("1.1.1.1"));
            l.signed_up("1.1.1.1");
        }
        assert!(!l.sign_up_allowed("1.1.1.1"));
        assert!(l.sign_up_allowed("2.2.2.2"));
        // Sign-ups and failed sign-ins do not share a count.
        assert!(l.allowed("a@x", "1.1.1.1"));
    }
}
