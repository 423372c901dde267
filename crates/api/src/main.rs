//! The `persql` binary: parse the command line and run it.

fn main() -> std::process::ExitCode {
    persql_api::cli::main()
}
