//! The `persql-bench` command line, for end-to-end tests that run the benchmark.

fn main() -> std::process::ExitCode {
    persql_bench::main()
}
