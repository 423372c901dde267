//! The `persql` command line, for end-to-end tests that need a separate process.

fn main() -> std::process::ExitCode {
    persql_api::cli::main()
}
