//! The template-migrations phase: roll `ALTER TABLE … ADD COLUMN` + `CREATE INDEX` out to many
//! databases of one template, against a bare rusqlite loop applying the same SQL to as many
//! copies of the same file, while a steady probe load queries unrelated databases (its p99
//! during the rollout against the same probe with nothing else running).
//!
//! Set-up bypasses HTTP provisioning (it would take most of the run at full size): every
//! database is a copy of one seed file with the template's schema, registered in bulk in the
//! control plane as a ready database of the template, exactly as the provisioner leaves one.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};
use persql_storage::DbLocation;
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::{
    baseline::{self, TEMPLATE_DDL},
    load::ClientRuntime,
    load::ratio,
    probe::{Pace, Probe, SLOW_MS, STOLEN_PCT, probe, run_probe},
    target::{Api, PerSql},
};

/// The migration rolled out (and applied by the bare loop).
mod bare;

use self::bare::{bare, copies, db_id, probe_during_bare_loop};

pub const MIGRATION_SQL: &str = "ALTER TABLE tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0; \
     CREATE INDEX tasks_priority ON tasks (priority)";

/// Unrelated databases the probe queries.
const PROBE_DATABASES: usize = 32;

/// What the phase measured.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMigrationsReport {
    pub databases: usize,
    /// Rollout concurrency (`PERSQL_MIGRATION_CONCURRENCY`).
    pub concurrency: usize,
    /// The probe's connections and its rate in queries/s (0: closed loop).
    pub probe_connections: usize,
    pub probe_rate: f64,
    /// From `POST …/migrations` to every database recorded at the new version.
    pub rollout_secs: f64,
    pub rollout_per_sec: f64,
    /// The bare loop: open, `BEGIN IMMEDIATE`, the SQL, `user_version`, `COMMIT`, close,
    /// one file after another; the mean of a run before and one after the rollout.
    pub bare_secs: f64,
    pub bare_before_secs: f64,
    pub bare_after_secs: f64,
    pub bare_per_sec: f64,
    /// `rollout_per_sec / bare_per_sec`.
    pub ratio: f64,
    /// Probe queries (point SELECTs over unrelated databases) with nothing else running,
    /// before the rollout (`--duration-secs`) and after it (as long as the rollout took,
    /// at least `--duration-secs`): the machine's own noise drifts over a run.
    pub idle: Probe,
    pub idle_after: Probe,
    /// The p99 of both idle windows' answers together: what the rollout's p99 is compared
    /// with. Idle is sampled at least as long as the rollout, because on these machines a
    /// window's p99 is often one stall of the host: a 10-second idle window against a
    /// 4-minute rollout compared a window that may have missed the host's stalls with one
    /// that cannot have.
    pub idle_p99_ms: f64,
    /// The mean of the two idle windows' own p99s (a second way to read "idle").
    pub idle_p99_mean_ms: f64,
    /// The same probe while the rollout runs.
    pub during: Probe,
    /// `during.p99 / idle_p99_ms`: the target.
    pub p99_ratio: f64,
    /// `during.p99 / idle_p99_mean_ms`.
    pub p99_ratio_to_mean: f64,
    /// The reference: the same probe while the bare loop runs over `reference_databases`
    /// files, split over as many threads as the rollout has (`concurrency`), each lowered as
    /// the rollout's are (PerSQL still up, nothing else of it working). What the file work
    /// alone, at the rollout's concurrency, does to query latency on this machine.
    pub reference_databases: usize,
    pub during_bare: Probe,
    /// `during_bare.p99 / idle_p99_ms`.
    pub bare_p99_ratio: f64,
}

/// Files of the reference window (the bare loop under the probe): enough for a p99 over
/// tens of seconds without a third full-size loop.
const REFERENCE_DATABASES: usize = 20_000;

/// Runs the phase under `root`.
pub async fn run(
    client: &ClientRuntime,
    root: &Path,
    databases: usize,
    concurrency: usize,
    pace: Pace,
    idle_window: Duration,
) -> anyhow::Result<TemplateMigrationsReport> {
    let root = root.join("template-migrations");
    std::fs::create_dir_all(&root)?;
    let seed = root.join("seed.db");
    baseline::create_with_schema(&seed, &TEMPLATE_DDL)?;

    // The bare loop runs before and after the rollout (the disk is shared and its speed
    // drifts); the figure is the mean of the two.
    let bare_before = bare(&root, &seed, databases).await?;
    let mut lane = None;
    let (persql, admin) = PerSql::start_with(root.join("persql"), |c| {
        c.rollout.migration_concurrency = concurrency;
        lane = Some(c.storage_config());
    })
    .await?;
    let lane = lane.context("the storage configuration")?;
    let api = Api::new(&persql.base);
    let ws = api.create_namespace(&admin, "mig").await?;
    api.create_template(&ws, "mig", "app-template", &TEMPLATE_DDL)
        .await?;
    api.create_template(&ws, "mig", "other", &TEMPLATE_DDL)
        .await?;
    let mut probe_targets = Vec::with_capacity(PROBE_DATABASES);
    for i in 0..PROBE_DATABASES {
        let p = api.provision(&ws, &format!("probe-{i}"), "other").await?;
        api.post(
            &format!("/v1/databases/mig/{}/query", p.slug),
            &p.token,
            json!({ "sql": super::phases::fill_sql() }),
        )
        .await?;
        probe_targets.push((
            format!("{}/v1/databases/mig/{}/query", persql.base, p.slug),
            format!("Bearer {}", p.token),
        ));
    }
    let probe_targets = Arc::new(probe_targets);

    eprintln!("bench: template migrations: registering {databases} databases of the template…");
    let state = persql.state()?.clone();
    let ns_id: String = sqlx::query("SELECT id FROM namespaces WHERE slug = 'mig'")
        .fetch_one(state.cp.pool())
        .await?
        .try_get(0)?;
    let template = state
        .registry
        .find(&ns_id, "app-template")
        .await?
        .context("the template")?;
    let storage = state.storage.clone();
    let ns = ns_id.clone();
    copies(&seed, databases, move |i| {
        storage.path(&DbLocation::new(&ns, &db_id(i)).expect("valid ids"))
    })
    .await?;
    register(&state.cp, &ns_id, &template.id, databases).await?;
    // The copies leave gigabytes of dirty pages at full size; their write-back would land in
    // the idle window and inflate the idle p99 the rollout's is compared with.
    tokio::task::spawn_blocking(rustix::fs::sync).await?;

    eprintln!("bench: template migrations: probe load, idle…");
    let idle = probe(client, probe_targets.clone(), pace, Some(idle_window)).await?;

    eprintln!("bench: template migrations: rolling out to {databases} databases…");
    let stop = CancellationToken::new();
    let during = {
        let (targets, stop) = (probe_targets.clone(), stop.clone());
        client.spawn(run_probe(targets, pace, stop))?
    };
    let t0 = Instant::now();
    api.post(
        "/v1/databases/mig/app-template/migrations",
        &ws,
        json!({ "version": 1, "name": "priority", "sql": MIGRATION_SQL }),
    )
    .await?;
    rolled_out(
        state.cp.pool(),
        &template.id,
        &db_id(databases - 1),
        databases,
    )
    .await?;
    let rollout_secs = t0.elapsed().as_secs_f64();
    stop.cancel();
    let during = during.await.context("probe task panicked")??;
    // What the rollout left for write-back is the rollout's, not idle.
    tokio::task::spawn_blocking(rustix::fs::sync).await?;
    let after_window = idle_window.max(Duration::from_secs_f64(rollout_secs));
    eprintln!(
        "bench: template migrations: probe load, idle again for {:.0} s…",
        after_window.as_secs_f64()
    );
    let idle_after = probe(client, probe_targets.clone(), pace, Some(after_window)).await?;
    for i in [0, databases - 1] {
        let loc = DbLocation::new(&ns_id, &db_id(i))?;
        ensure!(
            state.storage.user_version(&loc).await? == 1,
            "database {i} not migrated"
        );
    }
    let reference_databases = databases.min(REFERENCE_DATABASES);
    let during_bare = probe_during_bare_loop(
        client,
        probe_targets.clone(),
        pace,
        (&root, &seed),
        reference_databases,
        &lane,
    )
    .await?;
    persql.stop().await;
    let bare_after = bare(&root, &seed, databases).await?;
    let bare_secs = (bare_before + bare_after) / 2.0;

    let idle_p99_ms = Probe::pooled(&[&idle, &idle_after]).p99_ms;
    let idle_p99_mean_ms = (idle.latency.p99_ms + idle_after.latency.p99_ms) / 2.0;
    let rollout_per_sec = ratio(databases as f64, rollout_secs);
    let bare_per_sec = ratio(databases as f64, bare_secs);
    Ok(TemplateMigrationsReport {
        databases,
        concurrency,
        probe_connections: pace.connections,
        probe_rate: pace.rate,
        rollout_secs,
        rollout_per_sec,
        bare_secs,
        bare_before_secs: bare_before,
        bare_after_secs: bare_after,
        bare_per_sec,
        ratio: ratio(rollout_per_sec, bare_per_sec),
        p99_ratio: ratio(during.latency.p99_ms, idle_p99_ms),
        p99_ratio_to_mean: ratio(during.latency.p99_ms, idle_p99_mean_ms),
        bare_p99_ratio: ratio(during_bare.latency.p99_ms, idle_p99_ms),
        idle_p99_ms,
        idle_p99_mean_ms,
        idle,
        idle_after,
        during,
        reference_databases,
        during_bare,
    })
}

/// Waits until all `n` databases of the template are recorded at version 1.
///
/// Counting them scans `n` rows (~20 ms at 100,000 here), so counting every 20 ms would keep
/// a normal-priority thread busy half the time on the machine the probe measures. The rollout walks databases by id and records its pages in order, so
/// this polls only the last database's row (one key lookup) and counts once that one is
/// recorded (again every 500 ms while a database is still missing).
async fn rolled_out(
    pool: &sqlx::AnyPool,
    template_id: &str,
    last_id: &str,
    n: usize,
) -> anyhow::Result<()> {
    loop {
        let last: i64 = sqlx::query("SELECT schema_version FROM databases WHERE id = $1")
            .bind(last_id)
            .fetch_one(pool)
            .await?
            .try_get(0)?;
        if last >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    loop {
        let done: i64 = sqlx::query(
            "SELECT COUNT(*) FROM databases WHERE template_id = $1 AND schema_version >= 1",
        )
        .bind(template_id)
        .fetch_one(pool)
        .await?
        .try_get(0)?;
        if done as usize >= n {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Registers `n` ready databases of the template, as the provisioner would have.
async fn register(
    cp: &persql_events::ControlPlane,
    ns_id: &str,
    template_id: &str,
    n: usize,
) -> anyhow::Result<()> {
    const CHUNK: usize = 500;
    let now = persql_events::now_ms();
    let mut tx = cp.begin().await?;
    for start in (0..n).step_by(CHUNK) {
        let rows = CHUNK.min(n - start);
        let sql = format!(
            "INSERT INTO databases (id, namespace_id, slug, template_id, state, created_at, \
             ready_at, schema_version) VALUES {}",
            cp.backend().rows(1, rows, 8)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for i in start..start + rows {
            q = q
                .bind(db_id(i))
                .bind(ns_id.to_owned())
                .bind(format!("bench-{i}"))
                .bind(template_id.to_owned())
                .bind("ready")
                .bind(now)
                .bind(now)
                .bind(0i64);
        }
        q.execute(&mut *tx).await?;
    }
    cp.commit(tx).await?;
    Ok(())
}

impl TemplateMigrationsReport {
    /// The phase as table rows.
    pub fn table(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "migration rollout, {} dbs (concurrency {}): {:.0}/s ({:.1} s) vs bare rusqlite loop {:.0}/s (mean of {:.1} s before, {:.1} s after): ratio {:.2}\n",
            self.databases, self.concurrency, self.rollout_per_sec, self.rollout_secs, self.bare_per_sec, self.bare_before_secs, self.bare_after_secs, self.ratio
        ));
        let pace = if self.probe_rate > 0.0 {
            format!(
                "{} connections at {:.0}/s",
                self.probe_connections, self.probe_rate
            )
        } else {
            format!("{} closed-loop connections", self.probe_connections)
        };
        s.push_str(&format!(
            "  probe ({pace}) on unrelated dbs, p50/p99/p99.9/max ms (answers > {SLOW_MS} ms):\n"
        ));
        for (name, w) in [
            ("idle before", &self.idle),
            ("during rollout", &self.during),
            ("idle after", &self.idle_after),
            ("during bare loop", &self.during_bare),
        ] {
            let l = &w.latency;
            let steal = w
                .steal_pct
                .map_or_else(|| "steal unknown".into(), |p| format!("steal {p:.1} %"));
            s.push_str(&format!(
                "    {name:<16} {:.2}/{:.2}/{:.2}/{:.2} ({} slow of {}, {:.0}/s, {} errors, {steal})\n",
                l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms, w.slow, l.count, w.rps, w.errors
            ));
            if !w.worst_seconds.is_empty() {
                let worst: Vec<String> = w
                    .worst_seconds
                    .iter()
                    .take(3)
                    .map(|s| {
                        let steal = s
                            .steal_pct
                            .map_or_else(String::new, |p| format!(", steal {p:.0} %"));
                        format!(
                            "{} slow (max {:.1} ms{steal}) at {}",
                            s.slow, s.max_ms, s.at
                        )
                    })
                    .collect();
                let stolen = w.slow_while_stolen.map_or_else(String::new, |n| {
                    format!("{n} slow in seconds with steal ≥ {STOLEN_PCT:.0} %; ")
                });
                s.push_str(&format!(
                    "      {stolen}worst seconds: {}\n",
                    worst.join(", ")
                ));
            }
        }
        s.push_str(&format!(
            "  p99 idle (both windows pooled) {:.2} ms: rollout {:.2} (to the mean of the windows' p99s, {:.2} ms: {:.2}); reference: the bare loop over {} files on {} threads lowered as the rollout's: {:.2}\n",
            self.idle_p99_ms, self.p99_ratio, self.idle_p99_mean_ms, self.p99_ratio_to_mean,
            self.reference_databases, self.concurrency, self.bare_p99_ratio
        ));
        s
    }
}
