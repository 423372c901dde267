use clap::Parser;
use persql_storage::{BackgroundPolicy, Synchronous};

use super::*;
use crate::tokens::Secret;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

fn parse(args: &[&str]) -> Result<Config, clap::Error> {
    Cli::try_parse_from(std::iter::once("persql").chain(args.iter().copied())).map(|c| c.config)
}

#[test]
fn synchronous_accepts_full_and_normal_only() {
    let c = parse(&["--synchronous", "full"]).unwrap();
    assert_eq!(c.storage_config().synchronous, Synchronous::Full);
    let c = parse(&["--synchronous", "normal"]).unwrap();
    assert_eq!(c.storage_config().synchronous, Synchronous::Normal);
    for bad in ["off", "FULL", ""] {
        let e = parse(&["--synchronous", bad]).unwrap_err();
        assert!(e.to_string().contains("--synchronous"), "{e}");
    }
}

#[test]
fn metering_and_rollout_switches_accept_on_and_off_only() {
    let c = parse(&["--metering", "off", "--migration-rollout", "off"]).unwrap();
    assert!(!c.metering_enabled());
    assert_eq!(c.rollout.migration_rollout, Switch::Off);
    let c = parse(&["--metering", "on", "--migration-rollout", "on"]).unwrap();
    assert!(c.metering_enabled());
    assert_eq!(c.rollout.migration_rollout, Switch::On);
    for flag in ["--metering", "--migration-rollout"] {
        for bad in ["yes", "true", "1", "On"] {
            let e = parse(&[flag, bad]).unwrap_err();
            assert!(e.to_string().contains(flag), "{e}");
        }
    }
}

#[test]
fn migration_policy_accepts_idle_and_nice_only() {
    let c = parse(&["--migration-policy", "idle"]).unwrap();
    assert_eq!(c.storage_config().background_policy, BackgroundPolicy::Idle);
    let c = parse(&["--migration-policy", "nice"]).unwrap();
    assert_eq!(c.storage_config().background_policy, BackgroundPolicy::Nice);
    let e = parse(&["--migration-policy", "fifo"]).unwrap_err();
    assert!(e.to_string().contains("--migration-policy"), "{e}");
}

#[test]
fn prices_are_money_parsed_at_start() {
    let c = parse(&["--price-query", "0.000002", "--price-database", "0.5"]).unwrap();
    let p = c.prices();
    assert_eq!(p.query.nanos(), 2_000);
    assert_eq!(p.database.nanos(), 500_000_000);
    assert_eq!(p.row_read.nanos(), 1, "the default 0.000000001");
}

#[test]
fn a_bad_price_is_refused_at_parsing_naming_its_flag() {
    for (flag, bad, why) in [
        ("--price-query", "abc", "not a decimal number"),
        ("--price-row-read", "-1", "must not be negative"),
        (
            "--price-storage-gb-month",
            "0.0000000001",
            "9 decimal places",
        ),
    ] {
        // `--flag=value`: a separate `-1` would be read as a flag.
        let e = parse(&[&format!("{flag}={bad}")]).unwrap_err();
        let msg = e.to_string();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{msg}");
        assert!(msg.contains(flag) && msg.contains(why), "{msg}");
    }
}

#[test]
fn debug_does_not_print_the_operator_token() {
    let token = "psql_admin_0123456789abcdef0123456789abcdef";
    let c = parse(&["--admin-token", token]).unwrap();
    assert_eq!(c.http.admin_token.as_ref().map(Secret::expose), Some(token));
    let debug = format!("{c:?}");
    assert!(!debug.contains(token), "{debug}");
    assert!(debug.contains("admin_token: Some(Secret(***))"), "{debug}");
}

#[test]
fn a_subcommand_gets_defaults_for_the_groups_it_does_not_list() {
    #[derive(Parser)]
    struct Provisioner {
        #[command(flatten)]
        args: ProvisionerArgs,
    }
    let args = Provisioner::try_parse_from([
        "persql",
        "--data-dir",
        "/tmp/x",
        "--migration-concurrency",
        "7",
        "--metering",
        "off",
    ])
    .unwrap()
    .args;
    let c = Config::from(args);
    assert_eq!(c.connections.data_dir, std::path::Path::new("/tmp/x"));
    assert_eq!(c.rollout.migration_concurrency, 7);
    assert!(!c.metering_enabled());
    assert_eq!(c.http.token_ttl_secs, 3600);
    assert_eq!(c.prices(), persql_metering::Prices::default());
}
