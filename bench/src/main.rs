//! The `persql-bench` binary: parse the command line and run the benchmark.

// The allocator the `persql` binary ships with, so the PerSQL measured in this process
// allocates as it does in production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    persql_bench::main()
}
