//! Operator tools over the event log: `persql events tail` and `persql metering rebuild`.

use std::io::Write;

use anyhow::Context;
use persql_events::{Bus, BusConfig, ControlPlane};
use persql_metering::rebuild::RebuildReport;
use tokio_util::sync::CancellationToken;

use crate::config::{Connections, RebuildArgs};

/// Filters for `persql events tail`.
#[derive(Debug, clap::Args)]
pub struct TailArgs {
    /// Only events of this namespace (slug).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Only events of this type (`query.executed`, `persql.balance.charged`, or a prefix
    /// ending in `.*` such as `balance.*`).
    #[arg(long = "type")]
    pub ty: Option<String>,
    #[command(flatten)]
    pub connections: Connections,
}

/// True when event type suffix `ty` matches the `--type` filter.
pub fn type_matches(filter: &str, ty: &str) -> bool {
    let filter = filter.strip_prefix("persql.").unwrap_or(filter);
    match filter.strip_suffix(".*") {
        Some(prefix) => ty
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.')),
        None => ty == filter,
    }
}

async fn connect(config: &Connections) -> anyhow::Result<(ControlPlane, Bus)> {
    std::fs::create_dir_all(&config.data_dir)?;
    let cp = ControlPlane::connect(config.database_url.as_deref(), &config.data_dir)
        .await
        .context("connecting to the control plane")?;
    let bus_config = BusConfig {
        nats_url: config.nats_url.clone(),
        prefix: config.nats_prefix.clone(),
    };
    let bus = Bus::connect(cp.clone(), &bus_config)
        .await
        .context("connecting to the event bus")?;
    Ok((cp, bus))
}

/// Prints live events matching the filters as JSON lines until `shutdown`.
pub async fn tail(args: TailArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (_cp, bus) = connect(&args.connections).await?;
    let mut rx = bus.tail(shutdown.clone()).await?;
    let stdout = std::io::stdout();
    while let Some(e) = rx.recv().await {
        if args
            .namespace
            .as_deref()
            .is_some_and(|ns| ns != e.namespace)
        {
            continue;
        }
        if args
            .ty
            .as_deref()
            .is_some_and(|t| !type_matches(t, e.type_suffix()))
        {
            continue;
        }
        let mut out = stdout.lock();
        serde_json::to_writer(&mut out, &e)?;
        out.write_all(b"\n")?;
        out.flush()?;
    }
    Ok(())
}

/// Rebuilds the metering projections from the log.
pub async fn rebuild(args: RebuildArgs) -> anyhow::Result<RebuildReport> {
    let (cp, _) = connect(&args.connections).await?;
    let report = persql_metering::rebuild(&cp, args.pricing.prices()).await?;
    cp.close().await;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::type_matches;

    #[test]
    fn type_filters_match_exactly_or_by_prefix() {
        assert!(type_matches("query.executed", "query.executed"));
        assert!(type_matches("persql.query.executed", "query.executed"));
        assert!(type_matches("balance.*", "balance.charged"));
        assert!(!type_matches("balance.*", "balances.x"));
        assert!(!type_matches("query", "query.executed"));
    }
}
