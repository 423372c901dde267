//! `persql-bench`, the benchmark binary (its own crate since PerSQL's binary has no `bench`
//! subcommand), end to end at small sizes.

use std::path::Path;

use serde_json::Value;

/// The `persql-bench` command line built by this package.
const PERSQL_BENCH_BIN: &str = env!("CARGO_BIN_EXE_persql-bench-e2e");

/// Runs `persql-bench <args…> --data-dir <dir> --json` with no `PERSQL_*` variable of the
/// test's environment, asserts it succeeded (stderr on failure) and returns its report.
async fn bench_report(args: &[&str], dir: &Path) -> Value {
    let mut cmd = tokio::process::Command::new(PERSQL_BENCH_BIN);
    cmd.args(args).arg("--data-dir").arg(dir).arg("--json");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PERSQL_") {
            cmd.env_remove(key);
        }
    }
    let output = cmd.output().await.expect("run persql-bench");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON report")
}

/// The template-migrations phase, end to end at a small size: every window runs and
/// reports samples, every database is migrated, and the ratios are computed from them.
#[tokio::test]
async fn template_migrations_phase_reports_every_window_at_a_small_size() {
    let dir = tempfile::TempDir::new().unwrap();
    let report = bench_report(
        &[
            "--phases",
            "template-migrations",
            "--migration-databases",
            "40",
            "--migration-probe-rate",
            "200",
            "--duration-secs",
            "1",
        ],
        dir.path(),
    )
    .await;
    assert_eq!(
        report["settings"]["phases"],
        serde_json::json!(["templateMigrations"])
    );
    assert!(report.get("migrations").is_none(), "{report}");
    let m = &report["templateMigrations"];
    assert_eq!(m["databases"], 40, "{m}");
    assert_eq!(m["referenceDatabases"], 40, "{m}");
    assert!(m["rolloutSecs"].as_f64().unwrap() > 0.0, "{m}");
    assert!(m["barePerSec"].as_f64().unwrap() > 0.0, "{m}");
    for window in ["idle", "idleAfter", "during", "duringBare"] {
        let w = &m[window];
        assert!(w["latency"]["count"].as_u64().unwrap() > 0, "{window}: {m}");
        assert_eq!(w["errors"], 0, "{window}: {m}");
    }
    let ms = |window: &str, key: &str| m[window]["latency"][key].as_f64().unwrap();
    let (before, after) = (ms("idle", "p99Ms"), ms("idleAfter", "p99Ms"));
    let mean = m["idleP99MeanMs"].as_f64().unwrap();
    assert!((mean - (before + after) / 2.0).abs() < 1e-9, "{m}");
    // The pooled p99 lies between the two windows' own.
    let idle = m["idleP99Ms"].as_f64().unwrap();
    assert!(
        before.min(after) <= idle && idle <= before.max(after),
        "{m}"
    );
    // The idle window after the rollout lasts at least as long as the rollout did.
    let rollout_answers = ms("during", "count");
    assert!(ms("idleAfter", "count") >= rollout_answers * 0.9, "{m}");
    for window in ["idle", "idleAfter", "during", "duringBare"] {
        assert!(ms(window, "p99Ms") <= ms(window, "p999Ms"), "{m}");
        assert!(ms(window, "p999Ms") <= ms(window, "maxMs"), "{m}");
        assert!(
            m[window]["slow"].as_f64().unwrap() <= ms(window, "count"),
            "{m}"
        );
        let steal = m[window]["stealPct"].as_f64();
        assert!(steal.is_some_and(|p| (0.0..=100.0).contains(&p)), "{m}");
        // The worst seconds hold only slow answers, no more of them than the window has,
        // none slower than its slowest.
        let worst = m[window]["worstSeconds"].as_array().expect("worstSeconds");
        assert!(worst.len() <= 10, "{m}");
        let in_worst: u64 = worst.iter().map(|s| s["slow"].as_u64().unwrap()).sum();
        assert!(
            in_worst as f64 <= m[window]["slow"].as_f64().unwrap(),
            "{m}"
        );
        assert_eq!(worst.is_empty(), m[window]["slow"] == 0, "{m}");
        for s in worst {
            assert!(s["slow"].as_u64().unwrap() >= 1, "{m}");
            assert!(s["maxMs"].as_f64().unwrap() > 10.0, "{m}");
            assert!(s["maxMs"].as_f64().unwrap() <= ms(window, "maxMs"), "{m}");
            assert!(s["at"].as_u64().unwrap() > 1_700_000_000, "{m}");
            let steal = s["stealPct"].as_f64();
            assert!(steal.is_none_or(|p| (0.0..=100.0).contains(&p)), "{m}");
        }
        // Steal is sampled through every window on Linux (the idle ones last a second or
        // more; the others may be shorter than one tick of `/proc/stat`).
        let stolen = m[window]["slowWhileStolen"].as_u64();
        assert!(
            stolen.is_none_or(|n| n as f64 <= m[window]["slow"].as_f64().unwrap()),
            "{m}"
        );
        if window.starts_with("idle") {
            assert!(stolen.is_some(), "{window}: {m}");
        }
    }
    let during = ms("during", "p99Ms");
    assert!(
        (m["p99Ratio"].as_f64().unwrap() - during / idle).abs() < 1e-9,
        "{m}"
    );
    assert!(
        (m["p99RatioToMean"].as_f64().unwrap() - during / mean).abs() < 1e-9,
        "{m}"
    );
    let target = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"].as_str().unwrap_or("").contains("probe p99"))
        .unwrap_or_else(|| panic!("a probe p99 target: {report}"));
    assert_eq!(target["value"], m["p99Ratio"], "{target}");
}

/// The core and metering phases at a small size: PerSQL and the baselines both answer, and
/// the metering phase's two PerSQL instances run as child processes of the bench binary
/// (`persql-bench serve …`), one with metering off and one with it on.
#[tokio::test]
async fn core_and_metering_phases_report_both_sides_at_a_small_size() {
    let dir = tempfile::TempDir::new().unwrap();
    let report = bench_report(
        &[
            "--phases",
            "core,metering",
            "--databases",
            "20",
            "--provisions",
            "5",
            "--connections",
            "4",
            "--duration-secs",
            "1",
            "--warmup-secs",
            "0",
            "--metering-events",
            "2000",
            "--metering-rounds",
            "2",
        ],
        dir.path(),
    )
    .await;
    for workload in ["select", "insert"] {
        for side in ["persql", "baseline"] {
            let r = &report[workload][side];
            assert!(
                r["requests"].as_u64().unwrap() > 0,
                "{workload} {side}: {report}"
            );
            assert_eq!(r["errors"], 0, "{workload} {side}: {report}");
        }
    }
    assert_eq!(report["provision"]["persql"]["count"], 5, "{report}");
    assert_eq!(report["scale"]["databases"], 20, "{report}");
    assert_eq!(report["scale"]["select"]["errors"], 0, "{report}");

    let m = &report["metering"];
    for run in ["embedded", "batched"] {
        assert_eq!(m[run]["events"], 2000, "{m}");
        assert_eq!(m[run]["ledgerRows"], 2000, "{run}: {m}");
    }
    assert!(m["nats"].is_null(), "{m}");
    assert!(m["natsSkipped"].is_string(), "{m}");
    for side in ["roundsOffRps", "roundsOnRps"] {
        let rounds = m[side].as_array().unwrap();
        assert_eq!(rounds.len(), 2, "{m}");
        assert!(rounds.iter().all(|r| r.as_f64().unwrap() > 0.0), "{m}");
    }
    assert_eq!(m["selectOff"]["errors"], 0, "{m}");
    assert_eq!(m["selectOn"]["errors"], 0, "{m}");
    assert!(m["ratio"].as_f64().unwrap() > 0.0, "{m}");
    assert!(m["lag"]["count"].as_u64().unwrap() > 0, "{m}");
    // Each side's process wrote its output to its own log in its own data dir.
    for side in ["metering-off", "metering-on"] {
        assert!(dir.path().join(side).join("server.log").is_file(), "{side}");
    }
}
