//! The `persql-bench` command line.

use std::process::ExitCode;

use clap::Parser;

use crate::BenchArgs;

/// The first argument that makes this binary PerSQL itself: `<bench> serve …` is
/// `persql serve …`. The metering phase starts its instances that way, so they run the same
/// build as the in-process ones, with the same allocator.
pub(crate) const SERVE: &str = "serve";

/// PerSQL against baselines measured in the same process and run: figures and their ratios.
#[derive(Debug, Parser)]
#[command(name = "persql-bench", version)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == SERVE) {
        return persql_api::cli::main();
    }
    let args = Cli::parse().bench;
    persql_api::telemetry::init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("persql-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(crate::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("persql-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
