//! The `persql` command line.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    Components,
    config::{self, Config},
    start,
};

/// PerSQL: a SQLite database per user, over HTTP, with every action an event.
#[derive(Debug, Parser)]
#[command(name = "persql", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything in one process (API, provisioner) on embedded defaults.
    Serve(Config),
    /// Run only the HTTP API (provisioning by a separate `persql provisioner`).
    Api(Config),
    /// Run only the provisioner consumer, the template migration rollout and the storage sampler.
    Provisioner(config::ProvisionerArgs),
    /// Run only the metering consumer; `persql metering rebuild` replays the log instead.
    Metering(MeteringCommand),
    /// Work with the event stream (`persql events tail`).
    Events(EventsArgs),
    /// Apply a folder of `NNNN_name.sql` migrations to a template over HTTP.
    Migrate(crate::template_migrate::MigrateArgs),
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct MeteringCommand {
    #[command(subcommand)]
    action: Option<MeteringAction>,
    #[command(flatten)]
    args: config::MeteringArgs,
}

#[derive(Debug, Subcommand)]
enum MeteringAction {
    /// Drop the ledger, balances and usage, and rebuild them by replaying the event log.
    Rebuild(config::RebuildArgs),
}

#[derive(Debug, clap::Args)]
struct EventsArgs {
    #[command(subcommand)]
    action: EventsAction,
}

#[derive(Debug, Subcommand)]
enum EventsAction {
    /// Print live events as JSON lines until interrupted.
    Tail(crate::tail::TailArgs),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::telemetry::init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("persql: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("persql: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(config) => serve(config, Components::All).await,
        Command::Api(config) => serve(config, Components::Api).await,
        Command::Provisioner(args) => {
            let running = start(args.into(), Components::Provisioner).await?;
            tracing::info!("provisioner running");
            shutdown_signal(running.shutdown.clone()).await;
            running.stop().await;
            Ok(())
        }
        Command::Metering(MeteringCommand { action: None, args }) => {
            let running = start(args.into(), Components::Metering).await?;
            tracing::info!("metering running");
            shutdown_signal(running.shutdown.clone()).await;
            running.stop().await;
            Ok(())
        }
        Command::Metering(MeteringCommand {
            action: Some(MeteringAction::Rebuild(args)),
            ..
        }) => {
            let report = crate::tail::rebuild(args).await?;
            println!(
                "replayed {} events through log position {}",
                report.events, report.through_seq
            );
            Ok(())
        }
        Command::Events(EventsArgs {
            action: EventsAction::Tail(args),
        }) => {
            let shutdown = CancellationToken::new();
            tokio::spawn(shutdown_signal(shutdown.clone()));
            crate::tail::tail(args, shutdown).await
        }
        Command::Migrate(args) => crate::template_migrate::run(args).await,
    }
}

async fn serve(config: Config, components: Components) -> anyhow::Result<()> {
    let listen = config.http.listen;
    let running = start(config, components).await?;
    if let Some(token) = &running.generated_admin_token {
        // Printed once: only its hash is stored.
        println!("Generated operator token (shown once, store it now): {token}");
    }
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    tracing::info!(%listen, "PerSQL listening");
    let state = running.state.clone().context("no HTTP state")?;
    let shutdown = running.shutdown.clone();
    tokio::spawn(shutdown_signal(shutdown.clone()));
    crate::serve(listener, state, shutdown).await?;
    running.stop().await;
    Ok(())
}

/// Cancels `token` on SIGINT or SIGTERM.
async fn shutdown_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
        _ = token.cancelled() => {}
    }
    token.cancel();
}
