//! The `persql` binary: parse the command line and run it.

// glibc's allocator spent ~17 % of the metering consumer's CPU in `malloc_consolidate` and
// `unlink_chunk` (perf); with mimalloc the point SELECT over HTTP went from ~10,200/s to
// ~12,500/s on quiet runs (README, Benchmarks).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    persql_api::cli::main()
}
