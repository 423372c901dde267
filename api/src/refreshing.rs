//! A read-through cache whose entries reload in the background before they expire: a hit
//! never waits for a load, and no entry is served after its time to live.
//!
//! Why: token lookups are cached with a 60-second safety-net expiry (revocations invalidate
//! entries directly). With a plain expiry every busy token's next request after 60 s waited
//! for a control-plane read, and while the control plane is busy (a migration rollout
//! committing pages of events, a metering burst) that read can wait for a pooled connection.
//! That those waits showed in the p99 of the template-migrations bench's probe
//! (docs/benchmarks.md) is a likely cause, not a measured one. moka has no refresh-ahead of its own; this is the ~60
//! lines that add it.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use moka::future::Cache;

/// Values by string key, reloaded in the background once `refresh_after` old.
pub struct Refreshing<V> {
    cache: Cache<String, Arc<Slot<V>>>,
    refresh_after: Duration,
    /// Bumped before every invalidation: a load that began before one may not stay cached.
    generation: Arc<AtomicU64>,
}

impl<V> Clone for Refreshing<V> {
    fn clone(&self) -> Self {
        Self {
            cache: self.cache.clone(),
            refresh_after: self.refresh_after,
            generation: self.generation.clone(),
        }
    }
}

struct Slot<V> {
    value: Arc<V>,
    loaded: Instant,
    refreshing: AtomicBool,
}

impl<V: Send + Sync + 'static> Refreshing<V> {
    /// At most `capacity` entries, each dropped `ttl` after it was loaded and reloaded in the
    /// background by the first hit after `refresh_after` (less than `ttl`).
    pub fn new(capacity: u64, ttl: Duration, refresh_after: Duration) -> Self {
        debug_assert!(refresh_after < ttl);
        Self {
            cache: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .support_invalidation_closures()
                .build(),
            refresh_after,
            generation: Arc::default(),
        }
    }

    /// The cached value of `key`, or what `load` finds (`None`: no such key, nothing
    /// cached). A hit on an entry older than `refresh_after` returns it and runs `load` in
    /// a background task; a reload that finds nothing drops the entry.
    pub async fn get<F, Fut, E>(&self, key: &str, load: F) -> Result<Option<Arc<V>>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(slot) = self.cache.get(key).await {
            if slot.loaded.elapsed() >= self.refresh_after
                && !slot.refreshing.swap(true, Ordering::AcqRel)
            {
                let (this, key, reload) = (self.clone(), key.to_owned(), load());
                let held = slot.clone();
                tokio::spawn(async move {
                    match reload.await {
                        Ok(Some(v)) => {
                            this.store(key, v, generation).await;
                        }
                        Ok(None) => this.cache.invalidate(&key).await,
                        Err(e) => {
                            // The entry stays until its time to live; the next hit retries.
                            tracing::warn!(error = %e, "background reload of a cache entry failed");
                            held.refreshing.store(false, Ordering::Release);
                        }
                    }
                });
            }
            return Ok(Some(slot.value.clone()));
        }
        Ok(match load().await? {
            Some(v) => Some(self.store(key.to_owned(), v, generation).await),
            None => None,
        })
    }

    /// Caches `v` unless an invalidation began since `generation` was read.
    async fn store(&self, key: String, v: V, generation: u64) -> Arc<V> {
        let value = Arc::new(v);
        let slot = Slot {
            value: value.clone(),
            loaded: Instant::now(),
            refreshing: AtomicBool::new(false),
        };
        self.cache.insert(key.clone(), Arc::new(slot)).await;
        // An invalidation that bumped the generation after this check also runs its
        // predicate after the insert above, so one of the two removes the entry.
        if self.generation.load(Ordering::Acquire) != generation {
            self.cache.invalidate(&key).await;
        }
        value
    }

    /// Drops every entry whose value matches `pred`, and keeps loads already under way from
    /// caching what they read before.
    pub fn invalidate_if(&self, pred: impl Fn(&V) -> bool + Send + Sync + 'static) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = self
            .cache
            .invalidate_entries_if(move |_, slot| pred(&slot.value))
        {
            tracing::error!(error = %e, "cache invalidation failed; clearing it");
            self.cache.invalidate_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    type Loads = Arc<AtomicUsize>;
    type Loaded = std::future::Ready<Result<Option<&'static str>, String>>;

    /// A loader returning `value` and counting its calls.
    fn loader(loads: &Loads, value: Option<&'static str>) -> impl FnOnce() -> Loaded {
        let loads = loads.clone();
        move || {
            loads.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok(value))
        }
    }

    /// What `get` answers for `key` (a load error fails the test).
    async fn value(
        c: &Refreshing<&'static str>,
        key: &str,
        load: impl FnOnce() -> Loaded,
    ) -> Option<&'static str> {
        c.get(key, load).await.unwrap().map(|v| *v)
    }

    fn count(loads: &Loads) -> usize {
        loads.load(Ordering::SeqCst)
    }

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn hits_do_not_load_and_misses_of_nothing_are_not_cached() {
        let c = Refreshing::new(10, Duration::from_secs(60), Duration::from_secs(30));
        let loads = Loads::default();
        assert_eq!(value(&c, "k", loader(&loads, Some("v"))).await, Some("v"));
        assert_eq!(value(&c, "k", loader(&loads, Some("w"))).await, Some("v"));
        assert_eq!(count(&loads), 1);
        assert_eq!(value(&c, "gone", loader(&loads, None)).await, None);
        assert_eq!(value(&c, "gone", loader(&loads, None)).await, None);
        assert_eq!(count(&loads), 3);
    }

    #[tokio::test]
    async fn an_old_entry_is_served_while_it_reloads_once_in_the_background() {
        let c = Refreshing::new(10, Duration::from_secs(60), Duration::from_millis(20));
        let loads = Loads::default();
        value(&c, "k", loader(&loads, Some("old"))).await;
        settle().await;
        // Both hits answer at once with the old value; only the first starts a reload.
        assert_eq!(
            value(&c, "k", loader(&loads, Some("new"))).await,
            Some("old")
        );
        assert_eq!(
            value(&c, "k", loader(&loads, Some("new"))).await,
            Some("old")
        );
        settle().await;
        assert_eq!(count(&loads), 2);
        assert_eq!(value(&c, "k", loader(&loads, Some("x"))).await, Some("new"));
    }

    #[tokio::test]
    async fn a_reload_that_finds_nothing_drops_the_entry() {
        let c = Refreshing::new(10, Duration::from_secs(60), Duration::from_millis(20));
        let loads = Loads::default();
        value(&c, "k", loader(&loads, Some("v"))).await;
        settle().await;
        value(&c, "k", loader(&loads, None)).await;
        settle().await;
        assert_eq!(value(&c, "k", loader(&loads, None)).await, None);
    }

    #[tokio::test]
    async fn a_failed_reload_keeps_the_entry_and_the_next_hit_retries() {
        let c = Refreshing::new(10, Duration::from_secs(60), Duration::from_millis(20));
        let loads = Loads::default();
        value(&c, "k", loader(&loads, Some("v"))).await;
        settle().await;
        let failing = || std::future::ready(Err("down".to_owned()));
        assert_eq!(value(&c, "k", failing).await, Some("v"));
        settle().await;
        assert_eq!(value(&c, "k", loader(&loads, Some("w"))).await, Some("v"));
        settle().await;
        assert_eq!(value(&c, "k", loader(&loads, None)).await, Some("w"));
    }

    #[tokio::test]
    async fn entries_expire_at_their_time_to_live_whatever_the_hits() {
        let c = Refreshing::new(10, Duration::from_millis(100), Duration::from_millis(90));
        let loads = Loads::default();
        value(&c, "k", loader(&loads, Some("v"))).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(value(&c, "k", loader(&loads, Some("w"))).await, Some("w"));
        assert_eq!(count(&loads), 2);
    }

    #[tokio::test]
    async fn invalidation_drops_matching_entries_and_a_load_begun_before_it() {
        let c = Refreshing::new(10, Duration::from_secs(60), Duration::from_secs(30));
        let loads = Loads::default();
        value(&c, "a", loader(&loads, Some("revoked"))).await;
        value(&c, "b", loader(&loads, Some("kept"))).await;
        // A miss whose load reads the row, then sees the invalidation land before it caches.
        let racing = c.clone();
        let answer = value(&c, "c", move || {
            racing.invalidate_if(|v| *v == "revoked");
            std::future::ready(Ok(Some("revoked")))
        })
        .await;
        // The caller still gets what its own read found; nothing of it stays cached.
        assert_eq!(answer, Some("revoked"));
        c.cache.run_pending_tasks().await;
        assert!(c.cache.get("a").await.is_none());
        assert!(c.cache.get("c").await.is_none());
        assert!(c.cache.get("b").await.is_some());
    }
}
