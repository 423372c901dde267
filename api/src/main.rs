//! The `persql` binary: parse the command line and run it.

// mimalloc: under glibc's allocator a profile of the metering consumer spent much of its CPU in
// `malloc_consolidate` and `unlink_chunk`; mimalloc removed that, and the HTTP benchmarks
// (docs/benchmarks.md) run with it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    persql_api::cli::main()
}
