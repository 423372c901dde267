//! Storage configuration: where tenant files live and the limits they run under.

use std::path::PathBuf;
use std::time::Duration;

/// Configuration of the tenant storage.
#[derive(Clone, Debug)]
pub struct StorageConfig {
    /// Data directory; tenant files live under `root/tenants/<namespace_id>/<database_id>.db`.
    pub root: PathBuf,
    /// Upper bound of open connections kept in the LRU handle cache.
    pub max_open: u64,
    /// Durability of commits.
    pub synchronous: Synchronous,
    /// Limits applied to every tenant statement.
    pub limits: Limits,
    /// Threads of the background lane (template migration rollouts and dry runs).
    pub background_threads: usize,
    /// Nice value (0–19) of the background lane's threads: above the query threads' so a
    /// rollout takes the CPU queries leave idle.
    pub background_nice: i32,
    /// Scheduling policy of the background lane's threads.
    pub background_policy: BackgroundPolicy,
}

/// How the kernel schedules the background lane's threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackgroundPolicy {
    /// `SCHED_IDLE` (Linux): the threads run only on CPU time no other thread wants, and a
    /// query thread that wakes up takes their CPU at once. Where the call is refused (or on
    /// another OS) the threads fall back to `Nice`. The default.
    Idle,
    /// The normal policy at `background_nice`: the kernel shares the CPU by weight (nice 10
    /// has about a tenth of a query thread's), and a waking query thread may wait for the
    /// running background thread's slice.
    Nice,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            root: PathBuf::from("./data"),
            max_open: 1024,
            synchronous: Synchronous::Full,
            limits: Limits::default(),
            background_threads: 2,
            background_nice: 10,
            background_policy: BackgroundPolicy::Idle,
        }
    }
}

/// `PRAGMA synchronous` used for tenant connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Every commit is durable (fsync of the WAL per commit).
    #[default]
    Full,
    /// Commits may roll back on power loss; the database stays consistent.
    Normal,
}

impl Synchronous {
    /// The pragma value.
    pub(crate) fn as_pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

/// Per-statement and per-database limits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest accepted SQL text in bytes (`SqlTooLong` above).
    pub max_sql_bytes: usize,
    /// Most bound parameters per statement (`TooManyParams` above).
    pub max_params: usize,
    /// Most rows returned by one statement (`ResultTooLarge` above).
    pub max_result_rows: usize,
    /// Approximate JSON size of one statement's result (`ResultTooLarge` above). Also
    /// bounds each string, blob and row SQLite makes (`SQLITE_LIMIT_LENGTH`, at least the
    /// engine's SQL length limit): "string or blob too big" past it.
    pub max_result_bytes: usize,
    /// Approximate JSON size of all results of one batch together (`ResultTooLarge` above).
    pub max_batch_result_bytes: usize,
    /// Largest database file, enforced with `PRAGMA max_page_count` (`DatabaseFull` above).
    pub max_database_bytes: u64,
    /// Wall-clock budget of one request: a statement, every statement of a batch, a
    /// describe or an export (`Timeout` above).
    pub query_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_sql_bytes: 100_000,
            max_params: 999,
            max_result_rows: 10_000,
            max_result_bytes: 16 * 1024 * 1024,
            max_batch_result_bytes: 16 * 1024 * 1024,
            max_database_bytes: 1024 * 1024 * 1024,
            query_timeout: Duration::from_secs(5),
        }
    }
}
