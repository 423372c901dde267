//! Configuration: every setting is a flag and a `PERSQL_*` environment variable.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Args;
use persql_metering::Prices;
use persql_storage::{BackgroundPolicy, Limits, StorageConfig, Synchronous};

/// Settings shared by every process (`serve`, `api`, `provisioner`).
#[derive(Clone, Debug, Args)]
pub struct Config {
    /// Address the HTTP API listens on.
    #[arg(long, env = "PERSQL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory holding tenant databases (and `control.db` when no database URL is set).
    #[arg(long, env = "PERSQL_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Control-plane database: `postgres://…`; unset = SQLite file `<data-dir>/control.db`.
    #[arg(long, env = "PERSQL_DATABASE_URL")]
    pub database_url: Option<String>,

    /// NATS server with JetStream (`nats://127.0.0.1:4222`); unset = the embedded event log.
    #[arg(long, env = "PERSQL_NATS_URL")]
    pub nats_url: Option<String>,

    /// Prefix of NATS subjects and of the stream name (`<prefix>.events.<ns>.<type>`).
    #[arg(long, env = "PERSQL_NATS_PREFIX", default_value = "persql")]
    pub nats_prefix: String,

    /// Operator token (`psql_admin_…`). Unset: one is generated on first start, printed
    /// once and stored hashed.
    #[arg(long, env = "PERSQL_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Lifetime of tokens minted by provision, in seconds.
    #[arg(long, env = "PERSQL_TOKEN_TTL", default_value_t = 3600)]
    pub token_ttl_secs: u64,

    /// Longest lifetime `POST /v1/tokens` accepts, in seconds (default 30 days).
    #[arg(long, env = "PERSQL_MAX_TOKEN_TTL", default_value_t = 30 * 24 * 3600)]
    pub max_token_ttl_secs: u64,

    /// How long provision waits for the database to become query-ready, in milliseconds.
    #[arg(long, env = "PERSQL_PROVISION_TIMEOUT_MS", default_value_t = 30_000)]
    pub provision_timeout_ms: u64,

    /// Tenant commit durability: `full` (default; survives power loss) or `normal`.
    #[arg(long, env = "PERSQL_SYNCHRONOUS", default_value = "full", value_parser = ["full", "normal"])]
    pub synchronous: String,

    /// Open tenant database handles kept in the LRU cache.
    #[arg(long, env = "PERSQL_MAX_OPEN_DATABASES", default_value_t = 1024)]
    pub max_open_databases: u64,

    /// Per-query time limit in milliseconds (408 `query_timeout` past it).
    #[arg(long, env = "PERSQL_QUERY_TIMEOUT_MS", default_value_t = 5_000)]
    pub query_timeout_ms: u64,

    /// Largest request body in bytes (413 `payload_too_large` past it).
    #[arg(long, env = "PERSQL_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,

    /// Most rows one query may return (413 `result_too_large` past it).
    #[arg(long, env = "PERSQL_MAX_RESULT_ROWS", default_value_t = 10_000)]
    pub max_result_rows: usize,

    /// Largest result one query may return, in bytes (413 `result_too_large` past it).
    #[arg(long, env = "PERSQL_MAX_RESULT_BYTES", default_value_t = 16 << 20)]
    pub max_result_bytes: usize,

    /// Largest size of one tenant database, in bytes (507 `database_full` past it).
    #[arg(long, env = "PERSQL_MAX_DATABASE_BYTES", default_value_t = 1 << 30)]
    pub max_database_bytes: u64,

    /// Charge usage and answer 402 to namespaces without funds: `on` or `off`.
    #[arg(long, env = "PERSQL_METERING", default_value = "on", value_parser = ["on", "off"])]
    pub metering: String,

    /// Currency code balances are shown in (prices and top-ups are in its units).
    #[arg(long, env = "PERSQL_CURRENCY", default_value = "USD")]
    pub currency: String,

    /// Price of one query (each statement of a batch counts), in currency units.
    #[arg(long, env = "PERSQL_PRICE_QUERY", default_value = "0.000001")]
    pub price_query: String,

    /// Price of one row read, in currency units.
    #[arg(long, env = "PERSQL_PRICE_ROW_READ", default_value = "0.000000001")]
    pub price_row_read: String,

    /// Price of one row written, in currency units.
    #[arg(long, env = "PERSQL_PRICE_ROW_WRITTEN", default_value = "0.000001")]
    pub price_row_written: String,

    /// Price of storing one GB (10^9 bytes) for a 30-day month, charged pro rata.
    #[arg(long, env = "PERSQL_PRICE_STORAGE_GB_MONTH", default_value = "0.20")]
    pub price_storage_gb_month: String,

    /// Price of provisioning one database, in currency units.
    #[arg(long, env = "PERSQL_PRICE_DATABASE", default_value = "0.00001")]
    pub price_database: String,

    /// Browser origins allowed to call the API cross-origin (CORS), comma-separated, e.g.
    /// `https://app.example.com,http://localhost:3000`; `*` allows any. Cross-origin
    /// requests never carry credentials (cookies): browsers send a Bearer token.
    #[arg(
        long,
        env = "PERSQL_CORS_ORIGINS",
        default_value = "*",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,

    /// Seconds between storage samples (each database's size, billed pro rata).
    #[arg(long, env = "PERSQL_STORAGE_SAMPLE_SECS", default_value_t = 3600)]
    pub storage_sample_secs: u64,

    /// Public base URL of this service (the OAuth/OpenID issuer, e.g.
    /// `https://persql.example`); unset = `http://<listen>`. With `https://`, cookies are
    /// `Secure`.
    #[arg(long, env = "PERSQL_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Failed sign-ins allowed per (email, client IP) within the window before 429.
    #[arg(long, env = "PERSQL_SIGNIN_MAX_FAILURES", default_value_t = 10)]
    pub signin_max_failures: u32,

    /// Length of the sign-in rate-limit window, in seconds.
    #[arg(long, env = "PERSQL_SIGNIN_WINDOW_SECS", default_value_t = 900)]
    pub signin_window_secs: u64,

    /// Accounts one client IP may create within the sign-in window before sign-up answers 429.
    #[arg(long, env = "PERSQL_SIGNUP_MAX_PER_WINDOW", default_value_t = 20)]
    pub signup_max_per_window: u32,
    /// Roll template migrations out to every database (`on`), or only bring databases up to
    /// date lazily, before their next request (`off`: idle databases stay behind).
    #[arg(long, env = "PERSQL_MIGRATION_ROLLOUT", default_value = "on", value_parser = ["on", "off"])]
    pub migration_rollout: String,

    /// Databases a template migration rollout migrates at once (provisioner), each on a
    /// background thread scheduled as `PERSQL_MIGRATION_POLICY` says. Measured on 2 cores
    /// (README › Benchmarks › Migrations, 2026-12-01): over 100,000 databases, 3 under
    /// `SCHED_IDLE` ran at 0.65–0.79 × a bare rusqlite loop's pace.
    #[arg(long, env = "PERSQL_MIGRATION_CONCURRENCY", default_value_t = 3)]
    pub migration_concurrency: usize,

    /// Nice value (0–19) of the threads a rollout migrates databases on, with
    /// `PERSQL_MIGRATION_POLICY=nice` (or where `idle` is refused). Above the query threads'
    /// (0), so queries get the CPU first and the rollout what they leave.
    #[arg(long, env = "PERSQL_MIGRATION_NICE", default_value_t = 10, value_parser = clap::value_parser!(i32).range(0..=19))]
    pub migration_nice: i32,

    /// Scheduling of the threads a rollout migrates databases on: `idle` (Linux `SCHED_IDLE`:
    /// only CPU time queries leave, and a waking query thread preempts them) or `nice` (the
    /// normal policy at `PERSQL_MIGRATION_NICE`). Under `idle`, a machine saturated by
    /// queries all the time holds the rollout back until the load drops.
    #[arg(long, env = "PERSQL_MIGRATION_POLICY", default_value = "idle", value_parser = ["idle", "nice"])]
    pub migration_policy: String,

    /// Seconds between rollout passes when no migration event arrives (catches databases
    /// provisioned from an older template image while a rollout ran).
    #[arg(long, env = "PERSQL_MIGRATION_RESCAN_SECS", default_value_t = 60)]
    pub migration_rescan_secs: u64,
}

impl Config {
    /// Defaults for `data_dir`, as `persql serve` with no flags would use.
    pub fn for_data_dir(data_dir: PathBuf) -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: Config,
        }
        // Parse an empty command line so defaults live in one place (the attributes
        // above); environment variables still apply, as they would for the binary.
        let mut config = Wrapper::parse_from(["persql"]).config;
        config.data_dir = data_dir;
        config
    }

    /// The public base URL without a trailing `/`.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }

    /// True when usage is charged and depleted namespaces get 402.
    pub fn metering_enabled(&self) -> bool {
        self.metering != "off"
    }

    /// The configured prices.
    pub fn prices(&self) -> anyhow::Result<Prices> {
        Prices::parse(
            &self.price_query,
            &self.price_row_read,
            &self.price_row_written,
            &self.price_storage_gb_month,
            &self.price_database,
        )
        .map_err(|(which, e)| anyhow::anyhow!("invalid {which} price: {e}"))
    }

    /// Tenant storage settings.
    pub fn storage(&self) -> StorageConfig {
        StorageConfig {
            root: self.data_dir.clone(),
            max_open: self.max_open_databases,
            synchronous: if self.synchronous == "normal" {
                Synchronous::Normal
            } else {
                Synchronous::Full
            },
            limits: Limits {
                query_timeout: Duration::from_millis(self.query_timeout_ms),
                max_result_rows: self.max_result_rows,
                max_result_bytes: self.max_result_bytes,
                max_database_bytes: self.max_database_bytes,
                ..Limits::default()
            },
            background_threads: self.migration_concurrency.max(1),
            background_nice: self.migration_nice,
            background_policy: if self.migration_policy == "nice" {
                BackgroundPolicy::Nice
            } else {
                BackgroundPolicy::Idle
            },
        }
    }
}
