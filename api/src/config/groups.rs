//! The settings, in groups by concern: each subcommand flattens the groups it uses.

use std::{net::SocketAddr, path::PathBuf};

use clap::Args;
use ipnet::IpNet;
use persql_metering::{Money, Prices};

use super::values::{MigrationPolicy, Switch, SynchronousMode, operator_token, price};
use crate::{admission::Bounds, client_ip::parse_proxy, tokens::Secret};

/// Where the control plane, the event log and the tenant files are (every subcommand).
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Connections")]
pub struct Connections {
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
}

/// The HTTP API: address, operator token, token lifetimes, request and answer limits,
/// browsers and sign-in (`serve`, `api`).
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "HTTP API")]
pub struct HttpSettings {
    /// Address the HTTP API listens on.
    #[arg(long, env = "PERSQL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Operator token (`psql_admin_…`). Unset: one is generated on first start, printed
    /// once and stored hashed.
    #[arg(long, env = "PERSQL_ADMIN_TOKEN", hide_env_values = true, value_parser = operator_token)]
    pub admin_token: Option<Secret>,

    /// Lifetime of tokens minted by provision, in seconds.
    #[arg(long, env = "PERSQL_TOKEN_TTL", default_value_t = 3600)]
    pub token_ttl_secs: u64,

    /// Longest lifetime `POST /v1/tokens` accepts, in seconds (default 30 days).
    #[arg(long, env = "PERSQL_MAX_TOKEN_TTL", default_value_t = 30 * 24 * 3600)]
    pub max_token_ttl_secs: u64,

    /// How long provision waits for the database to become query-ready, in milliseconds.
    #[arg(long, env = "PERSQL_PROVISION_TIMEOUT_MS", default_value_t = 30_000)]
    pub provision_timeout_ms: u64,

    /// Largest request body in bytes (413 `payload_too_large` past it).
    #[arg(long, env = "PERSQL_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,

    /// Most rows one query may return (413 `result_too_large` past it).
    #[arg(long, env = "PERSQL_MAX_RESULT_ROWS", default_value_t = 10_000)]
    pub max_result_rows: usize,

    /// Largest result one query may return, in bytes (413 `result_too_large` past it).
    #[arg(long, env = "PERSQL_MAX_RESULT_BYTES", default_value_t = 16 << 20)]
    pub max_result_bytes: usize,

    /// Largest result of one batch, all its statements together, in bytes (413
    /// `result_too_large` past it); unset = the per-query limit.
    #[arg(long, env = "PERSQL_MAX_BATCH_RESULT_BYTES")]
    pub max_batch_result_bytes: Option<usize>,

    /// Currency code balances are shown in (prices and top-ups are in its units).
    #[arg(long, env = "PERSQL_CURRENCY", default_value = "USD")]
    pub currency: String,

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

    /// Reverse proxies whose `X-Forwarded-For` names the client (for the sign-in and
    /// sign-up limits), comma-separated addresses or networks, e.g. `10.0.0.7,fd00::/8`.
    /// Unset: the header is ignored and the client is the socket's peer.
    #[arg(long, env = "PERSQL_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_proxy)]
    pub trusted_proxies: Vec<IpNet>,

    /// Queries and batches in flight (queued or running) on one database before 429
    /// `rate_limited`. A database runs one statement at a time; the rest wait their turn.
    #[arg(long, env = "PERSQL_MAX_IN_FLIGHT_PER_DATABASE", default_value_t = 32)]
    pub max_in_flight_per_database: usize,

    /// Queries and batches in flight billed to one namespace before 429 `rate_limited`.
    #[arg(
        long,
        env = "PERSQL_MAX_IN_FLIGHT_PER_NAMESPACE",
        default_value_t = 128
    )]
    pub max_in_flight_per_namespace: usize,

    /// Queries and batches in flight under one token before 429 `rate_limited`.
    #[arg(long, env = "PERSQL_MAX_IN_FLIGHT_PER_TOKEN", default_value_t = 64)]
    pub max_in_flight_per_token: usize,

    /// Exports in flight in this process before 429 `rate_limited`: each holds a copy of its
    /// database on disk until its download ends.
    #[arg(long, env = "PERSQL_MAX_EXPORTS", default_value_t = 4)]
    pub max_exports: usize,

    /// Exports in flight billed to one namespace before 429 `rate_limited`.
    #[arg(long, env = "PERSQL_MAX_EXPORTS_PER_NAMESPACE", default_value_t = 2)]
    pub max_exports_per_namespace: usize,
}

impl HttpSettings {
    /// The bounds on work in flight.
    pub fn admission_bounds(&self) -> Bounds {
        Bounds {
            per_database: self.max_in_flight_per_database,
            per_namespace: self.max_in_flight_per_namespace,
            per_token: self.max_in_flight_per_token,
            exports: self.max_exports,
            exports_per_namespace: self.max_exports_per_namespace,
        }
    }
}

/// Tenant database files: durability, open handles, statement time and size limits, and
/// how often their sizes are sampled for billing (`serve`, `api`, `provisioner`).
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Tenant storage")]
pub struct StorageSettings {
    /// Durability of tenant commits.
    #[arg(long, env = "PERSQL_SYNCHRONOUS", value_enum, default_value_t = SynchronousMode::Full)]
    pub synchronous: SynchronousMode,

    /// Open tenant database handles kept in the LRU cache.
    #[arg(long, env = "PERSQL_MAX_OPEN_DATABASES", default_value_t = 1024)]
    pub max_open_databases: u64,

    /// Per-query time limit in milliseconds (408 `query_timeout` past it). Each template
    /// migration script may run 12 times as long.
    #[arg(long, env = "PERSQL_QUERY_TIMEOUT_MS", default_value_t = 5_000)]
    pub query_timeout_ms: u64,

    /// Largest size of one tenant database, in bytes (507 `database_full` past it).
    #[arg(long, env = "PERSQL_MAX_DATABASE_BYTES", default_value_t = 1 << 30)]
    pub max_database_bytes: u64,

    /// Seconds between storage samples (each database's size, billed pro rata), taken
    /// while metering is on.
    #[arg(long, env = "PERSQL_STORAGE_SAMPLE_SECS", default_value_t = 3600)]
    pub storage_sample_secs: u64,
}

/// Whether usage is metered (`serve`, `api`, `provisioner`, `metering`).
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Metering")]
pub struct MeteringSettings {
    /// Meter usage: the metering consumer charges it, the provisioner samples storage and
    /// the API answers 402 to namespaces without funds. `off` does none of this.
    #[arg(
        id = "metering",
        long = "metering",
        value_name = "METERING",
        env = "PERSQL_METERING",
        value_enum,
        default_value_t = Switch::On
    )]
    pub enabled: Switch,
}

/// What each kind of usage costs, in currency units, ≥ 0 with at most 9 decimals (`serve`,
/// `api`, `metering`, `metering rebuild`).
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Prices (currency units, ≥ 0, at most 9 decimals)")]
pub struct PriceSettings {
    /// Price of one query (each statement of a batch counts).
    #[arg(long, env = "PERSQL_PRICE_QUERY", default_value = "0.000001", value_parser = price)]
    pub price_query: Money,

    /// Price of one row read.
    #[arg(long, env = "PERSQL_PRICE_ROW_READ", default_value = "0.000000001", value_parser = price)]
    pub price_row_read: Money,

    /// Price of one row written.
    #[arg(long, env = "PERSQL_PRICE_ROW_WRITTEN", default_value = "0.000001", value_parser = price)]
    pub price_row_written: Money,

    /// Price of storing one GB (10^9 bytes) for a 30-day month, charged pro rata.
    #[arg(long, env = "PERSQL_PRICE_STORAGE_GB_MONTH", default_value = "0.20", value_parser = price)]
    pub price_storage_gb_month: Money,

    /// Price of provisioning one database.
    #[arg(long, env = "PERSQL_PRICE_DATABASE", default_value = "0.00001", value_parser = price)]
    pub price_database: Money,
}

impl PriceSettings {
    /// The prices, as metering charges them.
    pub fn prices(&self) -> Prices {
        Prices {
            query: self.price_query,
            row_read: self.price_row_read,
            row_written: self.price_row_written,
            storage_gb_month: self.price_storage_gb_month,
            database: self.price_database,
        }
    }
}

/// Template migration rollouts and the background threads they run on (`serve`, `api`,
/// `provisioner`).
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Template migration rollout")]
pub struct RolloutSettings {
    /// Roll template migrations out to every database (`on`), or only bring databases up to
    /// date lazily, before their next request (`off`: idle databases stay behind).
    #[arg(long, env = "PERSQL_MIGRATION_ROLLOUT", value_enum, default_value_t = Switch::On)]
    pub migration_rollout: Switch,

    /// Databases a template migration rollout migrates at once (provisioner), each on a
    /// background thread scheduled as `PERSQL_MIGRATION_POLICY` says; also the number of
    /// threads migration dry runs share.
    #[arg(long, env = "PERSQL_MIGRATION_CONCURRENCY", default_value_t = 3)]
    pub migration_concurrency: usize,

    /// Nice value (0–19) of the threads a rollout migrates databases on, with
    /// `PERSQL_MIGRATION_POLICY=nice` (or where `idle` is refused). Above the query threads'
    /// (0), so queries get the CPU first and the rollout what they leave.
    #[arg(long, env = "PERSQL_MIGRATION_NICE", default_value_t = 10, value_parser = clap::value_parser!(i32).range(0..=19))]
    pub migration_nice: i32,

    /// Scheduling of the threads a rollout migrates databases on. Under `idle`, a machine
    /// saturated by queries all the time holds the rollout back until the load drops.
    #[arg(long, env = "PERSQL_MIGRATION_POLICY", value_enum, default_value_t = MigrationPolicy::Idle)]
    pub migration_policy: MigrationPolicy,

    /// Seconds between rollout passes when no migration event arrives (catches databases
    /// provisioned from an older template image while a rollout ran).
    #[arg(long, env = "PERSQL_MIGRATION_RESCAN_SECS", default_value_t = 60)]
    pub migration_rescan_secs: u64,
}
