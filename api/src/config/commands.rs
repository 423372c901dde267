//! The settings of the subcommands that run one part: each flattens only the groups that
//! part reads and becomes a [`Config`] with defaults for the rest.

use clap::{Args, FromArgMatches};

use super::{
    Config, Connections, MeteringSettings, PriceSettings, RolloutSettings, StorageSettings,
};

/// `persql provisioner`: the provisioner consumer, the template migration rollout and the
/// storage sampler.
#[derive(Clone, Debug, Args)]
pub struct ProvisionerArgs {
    #[command(flatten)]
    pub connections: Connections,
    #[command(flatten)]
    pub storage: StorageSettings,
    #[command(flatten)]
    pub metering: MeteringSettings,
    #[command(flatten)]
    pub rollout: RolloutSettings,
}

impl From<ProvisionerArgs> for Config {
    fn from(a: ProvisionerArgs) -> Self {
        Self {
            connections: a.connections,
            http: defaults(),
            storage: a.storage,
            metering: a.metering,
            pricing: defaults(),
            rollout: a.rollout,
        }
    }
}

/// `persql metering`: the metering consumer.
#[derive(Clone, Debug, Args)]
pub struct MeteringArgs {
    #[command(flatten)]
    pub connections: Connections,
    #[command(flatten)]
    pub metering: MeteringSettings,
    #[command(flatten)]
    pub pricing: PriceSettings,
}

impl From<MeteringArgs> for Config {
    fn from(a: MeteringArgs) -> Self {
        Self {
            connections: a.connections,
            http: defaults(),
            storage: defaults(),
            metering: a.metering,
            pricing: a.pricing,
            rollout: defaults(),
        }
    }
}

/// `persql metering rebuild`: replays the event log at the configured prices.
#[derive(Clone, Debug, Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub connections: Connections,
    #[command(flatten)]
    pub pricing: PriceSettings,
}

/// A group's defaults: its attributes applied to an empty command line, with no
/// environment variable read (the process does not use the group).
fn defaults<T: Args + FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("defaults")).mut_args(|a| a.env(None));
    let matches = command
        .try_get_matches_from(["defaults"])
        .expect("every setting has a default or is optional");
    T::from_arg_matches(&matches).expect("defaults parse")
}
