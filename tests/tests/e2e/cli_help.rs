//! The `persql` command line: each subcommand lists only the settings it uses, and a bad
//! setting stops it at argument parsing.

use std::{
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use crate::support::PERSQL_BIN;

/// `persql <args…>` with no `PERSQL_*` variable inherited, plus `env`; killed if it runs
/// for more than 30 s (it is expected to exit at once).
fn persql(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(PERSQL_BIN);
    cmd.args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PERSQL_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("running persql");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("persql {args:?} did not exit within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("persql output")
}

/// The `--help` text of `persql <sub…>`.
fn help(sub: &[&str]) -> String {
    let args: Vec<&str> = sub.iter().copied().chain(["--help"]).collect();
    let out = persql(&args, &[]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn assert_lists(sub: &[&str], listed: &[&str], not_listed: &[&str]) {
    let text = help(sub);
    for flag in listed {
        assert!(
            text.contains(flag),
            "`{sub:?} --help` lacks {flag}:\n{text}"
        );
    }
    for flag in not_listed {
        assert!(
            !text.contains(flag),
            "`{sub:?} --help` lists {flag}:\n{text}"
        );
    }
}

#[test]
fn serve_and_api_list_every_setting() {
    for sub in ["serve", "api"] {
        assert_lists(
            &[sub],
            &[
                "--data-dir",
                "--listen",
                "--admin-token",
                "--signin-max-failures",
                "--cors-origins",
                "--synchronous",
                "--metering",
                "--price-query",
                "--migration-policy",
                "--storage-sample-secs",
            ],
            &["Benchmarks", "Measured"],
        );
    }
}

#[test]
fn events_tail_lists_only_connections_and_its_filters() {
    assert_lists(
        &["events", "tail"],
        &[
            "--data-dir",
            "--database-url",
            "--nats-url",
            "--namespace",
            "--type",
        ],
        &[
            "--price-",
            "--signin-",
            "--listen",
            "--admin-token",
            "--synchronous",
            "--metering",
            "--migration-",
        ],
    );
}

#[test]
fn provisioner_lists_no_http_or_price_settings() {
    assert_lists(
        &["provisioner"],
        &[
            "--data-dir",
            "--synchronous",
            "--query-timeout-ms",
            "--metering",
            "--storage-sample-secs",
            "--migration-rollout",
            "--migration-concurrency",
        ],
        &[
            "--signin-",
            "--signup-",
            "--trusted-proxies",
            "--cors-origins",
            "--listen",
            "--admin-token",
            "--price-",
            "--currency",
            "--max-result-rows",
        ],
    );
}

#[test]
fn metering_lists_its_switch_and_prices_and_no_http_settings() {
    assert_lists(
        &["metering"],
        &[
            "--data-dir",
            "--metering",
            "--price-query",
            "--price-database",
        ],
        &[
            "--listen",
            "--signin-",
            "--admin-token",
            "--currency",
            "--synchronous",
            "--migration-",
            "--storage-sample-secs",
        ],
    );
    assert_lists(
        &["metering", "rebuild"],
        &["--data-dir", "--price-query"],
        &[
            "--listen",
            "--signin-",
            "--metering",
            "--migration-",
            "--synchronous",
        ],
    );
}

#[test]
fn a_bad_price_or_switch_stops_the_process_naming_its_setting() {
    for (sub, var, value, flag) in [
        ("metering", "PERSQL_PRICE_QUERY", "abc", "--price-query"),
        ("serve", "PERSQL_PRICE_ROW_READ", "-1", "--price-row-read"),
        (
            "provisioner",
            "PERSQL_MIGRATION_ROLLOUT",
            "yes",
            "--migration-rollout",
        ),
        ("serve", "PERSQL_SYNCHRONOUS", "off", "--synchronous"),
    ] {
        let dir = tempfile::TempDir::new().unwrap();
        let dir = dir.path().to_str().unwrap();
        let out = persql(
            &[sub, "--data-dir", dir],
            &[(var, value), ("PERSQL_LISTEN", "127.0.0.1:0")],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{sub} with {var}={value}: {stderr}"
        );
        assert!(
            stderr.contains(flag) && stderr.contains(value),
            "{sub} with {var}={value}: {stderr}"
        );
    }
}
