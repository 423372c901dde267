//! `persql-bench`: PerSQL against baselines measured in the same process and run.
//!
//! Absolute figures drift on shared machines, so every figure is printed next to a
//! baseline measured moments apart, and the ratios are what to read. What each phase
//! measures and the current figures: `docs/benchmarks.md`.

mod baseline;
mod cli;
mod fleet;
mod load;
mod metering;
mod phases;
mod probe;
mod report;
mod target;
mod template_migrations;

pub use cli::main;

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use clap::{Args, ValueEnum};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use self::{
    load::{ClientRuntime, LoadSpec},
    phases::Endpoints,
    report::{Core, Memory, Report},
    target::{Api, PerSql},
};

/// A selectable part of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// HTTP SELECT/INSERT against the baseline, provision latency, many databases.
    Core,
    /// Metering consumer throughput, metering on vs off, charge lag.
    Metering,
    /// A template migration rolled out to many databases against a bare rusqlite loop,
    /// and query p99 on unrelated databases during it.
    TemplateMigrations,
}

/// Settings of `persql-bench`; the defaults are the full-size benchmark.
#[derive(Clone, Debug, Args, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BenchArgs {
    /// Measured seconds of each throughput run.
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Unmeasured seconds before each throughput run.
    #[arg(long, default_value_t = 2)]
    pub warmup_secs: u64,
    /// Concurrent keep-alive connections of each throughput run.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Per-user databases provisioned for the many-databases SELECT run.
    #[arg(long, default_value_t = 100_000)]
    pub databases: usize,
    /// Provisions in flight while creating those databases.
    #[arg(long, default_value_t = 32)]
    pub provision_concurrency: usize,
    /// Sequential first-time provisions timed for the provision-latency figure.
    #[arg(long, default_value_t = 200)]
    pub provisions: usize,
    /// Worker threads of the load generator's own runtime.
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
    /// Phases to run, comma-separated. Only `core` runs unless others are named.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Phase::Core])]
    pub phases: Vec<Phase>,
    /// `query.executed` events in the metering consumer-throughput runs.
    #[arg(long, default_value_t = 1_000_000)]
    pub metering_events: usize,
    /// Rounds of the metering on/off comparison: one instance with metering off and one
    /// with it on stay up and each takes one load window a round, off first in odd rounds
    /// and on first in even ones; the ratio is of the queries each served in all its
    /// windows (so drift on a shared machine falls on both sides alike).
    #[arg(long, default_value = "6")]
    pub metering_rounds: std::num::NonZeroUsize,
    /// NATS server with JetStream for the metering consumer run on NATS (skipped when unset).
    #[arg(long, env = "PERSQL_NATS_URL")]
    pub nats_url: Option<String>,
    /// Databases of the template the template-migrations phase rolls a migration out to.
    #[arg(long, default_value_t = 100_000)]
    pub migration_databases: usize,
    /// Rollout concurrency of the template-migrations phase (PerSQL's
    /// `--migration-concurrency`; the default is PerSQL's default).
    #[arg(long, default_value_t = 3)]
    pub migration_concurrency: usize,
    /// Connections of the template-migrations phase's probe on unrelated databases.
    #[arg(long, default_value_t = 4)]
    pub migration_probe_connections: usize,
    /// The probe's rate over all its connections, queries/s: a steady load the rollout
    /// shares the machine with. 0 runs it closed-loop (saturating the machine).
    #[arg(long, default_value_t = 1000.0, value_parser = probe_rate)]
    pub migration_probe_rate: f64,
    /// Directory for PerSQL's and the baseline's files (default: a temporary directory,
    /// removed afterwards).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Print the report as JSON instead of a table (progress still goes to stderr).
    #[arg(long)]
    pub json: bool,
}

/// Runs every phase and prints the report.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let tmp = match &args.data_dir {
        Some(_) => None,
        None => Some(tempfile::TempDir::new().context("creating a temporary directory")?),
    };
    let root = match (&args.data_dir, &tmp) {
        (Some(d), _) => d.clone(),
        (None, Some(t)) => t.path().to_path_buf(),
        (None, None) => unreachable!("a temporary directory exists when no data dir is given"),
    };
    let report = measure(&args, &root).await;
    if let Some(t) = tmp {
        eprintln!("bench: removing {}…", t.path().display());
        // Best effort: many thousands of files; a failure here must not hide the report.
        let _ = tokio::task::spawn_blocking(move || t.close()).await;
    }
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

async fn measure(args: &BenchArgs, root: &std::path::Path) -> anyhow::Result<Report> {
    let spec = LoadSpec {
        connections: args.connections,
        warmup: Duration::from_secs(args.warmup_secs),
        duration: Duration::from_secs(args.duration_secs),
    };
    let client = ClientRuntime::new(args.client_threads)?;

    let core = if args.phases.contains(&Phase::Core) {
        Some(core(args, root, spec, &client).await?)
    } else {
        None
    };
    let metering = if args.phases.contains(&Phase::Metering) {
        Some(
            metering::run(
                &client,
                spec,
                root,
                args.metering_events,
                args.metering_rounds,
                args.nats_url.as_deref(),
            )
            .await?,
        )
    } else {
        None
    };
    let template_migrations = if args.phases.contains(&Phase::TemplateMigrations) {
        Some(
            template_migrations::run(
                &client,
                root,
                args.migration_databases.max(1),
                args.migration_concurrency,
                probe::Pace {
                    connections: args.migration_probe_connections,
                    rate: args.migration_probe_rate,
                },
                spec.duration,
            )
            .await?,
        )
    } else {
        None
    };
    let memory = Memory::read();
    let mut report = Report {
        settings: serde_json::to_value(args)?,
        core,
        metering,
        template_migrations,
        memory,
        targets: Vec::new(),
    };
    report.targets = report.targets();
    Ok(report)
}

/// Phases 1–3: PerSQL against the baselines, provisioning, many databases.
async fn core(
    args: &BenchArgs,
    root: &std::path::Path,
    spec: LoadSpec,
    client: &ClientRuntime,
) -> anyhow::Result<Core> {
    // The baseline: same schema and rows, its own file and loopback port.
    let baseline_db = root.join("baseline").join("bench.db");
    std::fs::create_dir_all(root.join("baseline"))?;
    baseline::create_with_schema(&baseline_db, &baseline::TEMPLATE_DDL)?;
    baseline::open_wal_full(&baseline_db)?.execute_batch(&phases::fill_sql())?;
    let stop_baseline = CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let baseline_url = format!("http://{}/query", listener.local_addr()?);
    let baseline_server = baseline::serve(listener, &baseline_db, stop_baseline.clone()).await?;

    // PerSQL: a namespace, the template, and one hot per-user database with the same rows.
    eprintln!("bench: starting PerSQL in {}", root.display());
    let (persql, admin) = PerSql::start(root.join("persql")).await?;
    let api = Api::new(&persql.base);
    let ws = api.create_namespace(&admin, "bench").await?;
    let (hot, persql_url) = phases::hot_database(&api, &persql.base, &ws).await?;
    let ep = Endpoints {
        persql_url,
        hot,
        baseline_url,
    };

    let (select, insert) = phases::http_throughput(client, spec, &ep).await?;
    stop_baseline.cancel();
    let _ = baseline_server.await;

    let provision =
        phases::provision_latency(client, &api, &ws, args.provisions, root.join("direct")).await?;

    eprintln!(
        "bench: provisioning {} databases, {} in flight…",
        args.databases, args.provision_concurrency
    );
    let (fleet, provision_secs) = phases::provision_fleet(
        client,
        &api,
        &ws,
        args.databases.max(1),
        args.provision_concurrency,
    )
    .await?;
    let fleet = Arc::new(fleet);
    eprintln!("bench: SELECT over {} databases…", fleet.len());
    let spread = phases::spread_select(client, spec, &persql.base, fleet.clone()).await?;
    eprintln!("bench: SELECT on the hot database again…");
    let hot_again = client
        .load(
            spec,
            phases::fixed(ep.persql_url.clone(), Some(&ep.hot.token), false),
        )
        .await?;
    let scale = phases::scale(
        fleet.len(),
        provision_secs,
        spread,
        select.persql.rps,
        hot_again,
    );
    persql.stop().await;
    Ok(Core {
        select,
        insert,
        provision,
        scale,
    })
}

/// `--migration-probe-rate`: a finite number of queries per second, 0 or more.
fn probe_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(r),
        _ => Err(format!(
            "{s:?} is not a rate: queries per second, 0 (closed loop) or more"
        )),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    #[test]
    fn phases_are_named_template_migrations_not_migrations() {
        let phases = |v: &str| Cli::try_parse_from(["bench", "--phases", v]);
        assert_eq!(
            phases("core,template-migrations").unwrap().bench.phases,
            [Phase::Core, Phase::TemplateMigrations]
        );
        let err = phases("migrations")
            .err()
            .expect("`migrations` is no phase");
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
        assert_eq!(
            serde_json::to_value(Phase::TemplateMigrations).unwrap(),
            "templateMigrations"
        );
    }

    #[test]
    fn metering_rounds_must_be_at_least_one() {
        let rounds = |v: &str| Cli::try_parse_from(["bench", "--metering-rounds", v]);
        assert_eq!(rounds("2").unwrap().bench.metering_rounds.get(), 2);
        assert_eq!(
            Cli::try_parse_from(["bench"])
                .unwrap()
                .bench
                .metering_rounds
                .get(),
            6
        );
        let err = rounds("0").err().expect("0 rounds must be refused");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn the_probe_rate_is_a_finite_rate_of_zero_or_more() {
        // `=`: a value starting with `-` would otherwise be read as a flag.
        let rate = |v: &str| {
            Cli::try_parse_from(["bench".to_owned(), format!("--migration-probe-rate={v}")])
        };
        assert_eq!(rate("0").unwrap().bench.migration_probe_rate, 0.0);
        assert_eq!(rate("250.5").unwrap().bench.migration_probe_rate, 250.5);
        assert_eq!(
            Cli::try_parse_from(["bench"])
                .unwrap()
                .bench
                .migration_probe_rate,
            1000.0
        );
        for bad in ["-1", "NaN", "inf", "fast"] {
            let err = rate(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad} must be refused"));
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
        }
    }
}
