//! The control-plane database (sqlx `Any`: SQLite by default, Postgres by URL), its
//! migrations, and the "something was appended to the log" signal for in-process tailers.

use std::{path::Path, str::FromStr, sync::Arc, time::Duration};

use sqlx::{
    AnyPool, Executor,
    any::{AnyConnectOptions, AnyPoolOptions},
    migrate::Migrator,
    sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions},
};
use tokio::sync::watch;

use crate::{envelope::Envelope, handoff::Handoff};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// Rows one read of the embedded log may return (its consumers and tails read 5,000).
const LOG_READ_ROWS: usize = 5000;

/// A control-plane transaction.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Which SQL backend holds the control plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Errors from the control-plane store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("control-plane database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("control-plane migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported control-plane URL {0:?}: use sqlite://… or postgres://…")]
    UnsupportedUrl(String),
    #[error("event encoding: {0}")]
    Encoding(#[from] serde_json::Error),
    #[error("NATS: {0}")]
    Nats(String),
    #[error("applying events: {0}")]
    Apply(String),
    #[error("{0}")]
    Startup(String),
}

/// Handle on the control-plane database. Cheap to clone.
#[derive(Clone)]
pub struct ControlPlane {
    pool: AnyPool,
    /// SQLite only: connections that read the log for the embedded bus. sqlx's `Any` driver
    /// hands result rows from its worker thread through a 50-row channel, which costs thread
    /// wake-ups per row on reads of thousands of events; here the channel holds a whole read.
    log_reader: Option<SqlitePool>,
    backend: Backend,
    appended: Arc<watch::Sender<u64>>,
    /// Batches this process committed with known `seq`s, for its embedded consumers.
    handoff: Arc<Handoff>,
}

impl ControlPlane {
    /// Connects to `url` (`postgres://…`) or, when `None`, to `data_dir/control.db`, and
    /// runs the backend's migrations.
    pub async fn connect(url: Option<&str>, data_dir: &Path) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let url = match url {
            Some(u) => u.to_owned(),
            None => format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("control.db").display()
            ),
        };
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url));
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // Durable commits: the control plane holds tokens and money. The log is
                        // read right after it is written: a larger page cache and memory-mapped
                        // reads spare the consumers most read() copies.
                        conn.execute(
                            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; \
                             PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON; \
                             PRAGMA cache_size=-8192; PRAGMA mmap_size=268435456;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        match backend {
            Backend::Sqlite => {
                // Processes sharing one control.db (api, provisioner, metering) start together;
                // sqlx locks migrations on Postgres but not on SQLite, so take a file lock.
                let lock = std::fs::File::create(data_dir.join("control.migrate.lock"))
                    .map_err(|e| StoreError::Startup(format!("migration lock: {e}")))?;
                let lock = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
                    .await
                    .map_err(|e| StoreError::Startup(e.to_string()))?
                    .map_err(|e| StoreError::Startup(format!("migration lock: {e}")))?;
                let result = SQLITE_MIGRATIONS.run(&pool).await;
                drop(lock);
                result?
            }
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        let log_reader = match backend {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(&url)?
                    .row_buffer_size(LOG_READ_ROWS)
                    .busy_timeout(Duration::from_secs(10))
                    .pragma("cache_size", "-8192")
                    .pragma("mmap_size", "268435456");
                Some(
                    SqlitePoolOptions::new()
                        .max_connections(4)
                        .acquire_timeout(Duration::from_secs(30))
                        .connect_lazy_with(options),
                )
            }
            Backend::Postgres => None,
        };
        let (appended, _) = watch::channel(0);
        Ok(Self {
            pool,
            log_reader,
            backend,
            appended: Arc::new(appended),
            handoff: Arc::default(),
        })
    }

    /// The connection pool, for queries outside a transaction.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The SQLite log reader (see the field), `None` on Postgres.
    pub(crate) fn log_reader(&self) -> Option<&SqlitePool> {
        self.log_reader.as_ref()
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begins a write transaction. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`): deferred transactions that later upgrade can fail with
    /// SQLITE_BUSY without waiting, which would turn contention into errors.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Commits `tx` and wakes in-process log tailers.
    pub async fn commit(&self, tx: Tx) -> Result<(), StoreError> {
        tx.commit().await?;
        self.notify_appended();
        Ok(())
    }

    /// Commits `tx`, whose appended events are `events` at `seq`s from `first` (when known,
    /// see [`crate::outbox::append_numbered`]), hands them to this process's embedded
    /// consumers and wakes the log's tailers.
    pub async fn commit_handing_off(
        &self,
        tx: Tx,
        first: Option<i64>,
        events: Arc<[Envelope]>,
    ) -> Result<(), StoreError> {
        tx.commit().await?;
        if let Some(first) = first {
            self.handoff.push(first, events);
        }
        self.notify_appended();
        Ok(())
    }

    /// Batches committed by this process (see [`Handoff`]).
    pub(crate) fn handoff(&self) -> &Handoff {
        &self.handoff
    }

    /// Wakes in-process tailers of the embedded log (called after a commit that appended events).
    pub fn notify_appended(&self) {
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that changes whenever this process commits appended events.
    pub fn appended(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// Closes the pool.
    pub async fn close(&self) {
        if let Some(reader) = &self.log_reader {
            reader.close().await;
        }
        self.pool.close().await;
    }
}

/// Milliseconds since the Unix epoch: the control plane's time unit.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}
