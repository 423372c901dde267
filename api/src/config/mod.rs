//! Configuration: every setting is a flag and a `PERSQL_*` environment variable, grouped by
//! concern; each subcommand lists only the groups it uses.

mod commands;
mod groups;
#[cfg(test)]
mod tests;
mod values;

use std::time::Duration;

use clap::Args;
use persql_metering::Prices;
use persql_storage::{Limits, StorageConfig};

pub use commands::{MeteringArgs, ProvisionerArgs, RebuildArgs};
pub use groups::{
    Connections, HttpSettings, MeteringSettings, PriceSettings, RolloutSettings, StorageSettings,
};
pub use values::{MigrationPolicy, Switch, SynchronousMode};

/// Every setting: what `persql serve` and `persql api` take.
#[derive(Clone, Debug, Args)]
pub struct Config {
    #[command(flatten)]
    pub connections: Connections,
    #[command(flatten)]
    pub http: HttpSettings,
    #[command(flatten)]
    pub storage: StorageSettings,
    #[command(flatten)]
    pub metering: MeteringSettings,
    #[command(flatten)]
    pub pricing: PriceSettings,
    #[command(flatten)]
    pub rollout: RolloutSettings,
}

impl Config {
    /// Defaults for `data_dir`, as `persql serve` with no flags would use.
    pub fn for_data_dir(data_dir: std::path::PathBuf) -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: Config,
        }
        // Parse an empty command line so defaults live in one place (the attributes of
        // the groups); environment variables still apply, as they would for the binary.
        let mut config = Wrapper::parse_from(["persql"]).config;
        config.connections.data_dir = data_dir;
        config
    }

    /// The public base URL without a trailing `/`.
    pub fn public_url(&self) -> String {
        match &self.http.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.http.listen),
        }
    }

    /// True when usage is charged and depleted namespaces get 402.
    pub fn metering_enabled(&self) -> bool {
        self.metering.enabled.is_on()
    }

    /// The configured prices.
    pub fn prices(&self) -> Prices {
        self.pricing.prices()
    }

    /// Tenant storage settings.
    pub fn storage_config(&self) -> StorageConfig {
        StorageConfig {
            root: self.connections.data_dir.clone(),
            max_open: self.storage.max_open_databases,
            synchronous: self.storage.synchronous.into(),
            limits: Limits {
                query_timeout: Duration::from_millis(self.storage.query_timeout_ms),
                max_result_rows: self.http.max_result_rows,
                max_result_bytes: self.http.max_result_bytes,
                max_batch_result_bytes: self
                    .http
                    .max_batch_result_bytes
                    .unwrap_or(self.http.max_result_bytes),
                max_database_bytes: self.storage.max_database_bytes,
                ..Limits::default()
            },
            background_threads: self.rollout.migration_concurrency.max(1),
            background_nice: self.rollout.migration_nice,
            background_policy: self.rollout.migration_policy.into(),
        }
    }
}
