//! The three measurements: HTTP query throughput, provision latency, many databases.

use std::{path::PathBuf, sync::Arc, time::Instant};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use rand::Rng;

use serde::Serialize;

use crate::{
    baseline,
    baseline::TEMPLATE_DDL,
    fleet::Fleet,
    load::ratio,
    load::{ClientRuntime, LoadResult, LoadSpec, MakeRequest, Percentiles, Request, micros},
    target::{Api, Provisioned},
};

/// Rows preloaded into the hot database (and the baseline's), ids `1..=HOT_ROWS`.
pub const HOT_ROWS: u32 = 1000;

/// Fills `items` with `HOT_ROWS` rows in one statement.
pub fn fill_sql() -> String {
    format!(
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {HOT_ROWS}) \
         INSERT INTO items (id, body) SELECT x, 'row-' || x FROM n"
    )
}

const SELECT_SQL: &str = "SELECT id, body FROM items WHERE id = ?";
const INSERT_SQL: &str = "INSERT INTO items (body) VALUES (?)";

fn select_body(rng: &mut impl Rng) -> String {
    let id = rng.random_range(1..=HOT_ROWS);
    format!(r#"{{"sql":"{SELECT_SQL}","params":[{id}]}}"#)
}

fn insert_body(rng: &mut impl Rng) -> String {
    let n: u32 = rng.random();
    format!(r#"{{"sql":"{INSERT_SQL}","params":["body-{n}"]}}"#)
}

/// The bench's template (`app-template` in namespace `bench`, from [`TEMPLATE_DDL`]) and
/// user `hot-user` provisioned from it and filled with the bench rows; returns that database
/// and its query URL on the PerSQL at `base`.
pub async fn hot_database(
    api: &Api,
    base: &str,
    ws: &str,
) -> anyhow::Result<(Provisioned, String)> {
    api.create_template(ws, "bench", "app-template", &TEMPLATE_DDL)
        .await?;
    let hot = api.provision(ws, "hot-user", "app-template").await?;
    let path = format!("/v1/databases/{}/{}/query", hot.namespace, hot.slug);
    api.post(&path, &hot.token, serde_json::json!({ "sql": fill_sql() }))
        .await
        .context("filling the hot database")?;
    Ok((hot, format!("{base}{path}")))
}

/// One fixed endpoint (URL + optional bearer token), select or insert bodies.
pub fn fixed(url: String, token: Option<&str>, insert: bool) -> MakeRequest {
    let auth = token.map(|t| format!("Bearer {t}"));
    Arc::new(move |rng| Request {
        url: url.clone(),
        auth: auth.clone(),
        body: if insert {
            insert_body(rng)
        } else {
            select_body(rng)
        },
    })
}

/// Where the two servers of phase 1 live.
#[derive(Debug)]
pub struct Endpoints {
    /// PerSQL's query URL of the hot database.
    pub persql_url: String,
    pub hot: Provisioned,
    /// The baseline's `/query` URL.
    pub baseline_url: String,
}

/// Phase 1: point SELECT and INSERT, baseline then PerSQL, same load generator.
pub async fn http_throughput(
    client: &ClientRuntime,
    spec: LoadSpec,
    ep: &Endpoints,
) -> anyhow::Result<(Compared, Compared)> {
    let mut out = Vec::new();
    for insert in [false, true] {
        let what = if insert { "INSERT" } else { "SELECT" };
        eprintln!("bench: {what} baseline…");
        let base = client
            .load(spec, fixed(ep.baseline_url.clone(), None, insert))
            .await?;
        eprintln!("bench: {what} PerSQL…");
        let ours = client
            .load(
                spec,
                fixed(ep.persql_url.clone(), Some(&ep.hot.token), insert),
            )
            .await?;
        out.push(Compared::new(ours, base));
    }
    let insert = out.pop().context("no insert result")?;
    let select = out.pop().context("no select result")?;
    Ok((select, insert))
}

/// Phase 2: provision latency of new subjects (one at a time) against direct rusqlite.
pub async fn provision_latency(
    client: &ClientRuntime,
    api: &Api,
    ws: &str,
    count: usize,
    direct_dir: PathBuf,
) -> anyhow::Result<ProvisionLatency> {
    eprintln!("bench: provision latency, {count} direct creations…");
    let (direct, direct_one_tx) = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&direct_dir)?;
        let mut runs = [Vec::with_capacity(count), Vec::with_capacity(count)];
        for i in 0..count {
            for (k, samples) in runs.iter_mut().enumerate() {
                let path = direct_dir.join(format!("d{k}-{i}.db"));
                let t0 = Instant::now();
                if k == 0 {
                    baseline::create_with_schema(&path, &TEMPLATE_DDL)?;
                } else {
                    baseline::create_with_schema_in_one_tx(&path, &TEMPLATE_DDL)?;
                }
                samples.push(micros(t0.elapsed()));
            }
        }
        let [a, b] = runs;
        anyhow::Ok((Percentiles::of_micros(a), Percentiles::of_micros(b)))
    })
    .await??;
    eprintln!("bench: provision latency, {count} PerSQL provisions…");
    let (api, ws) = (api.clone(), ws.to_owned());
    let samples = client
        .run(async move {
            // Not measured: the first provision after template DDL builds the schema image.
            api.provision(&ws, "latency-warmup", "app-template").await?;
            let mut samples = Vec::with_capacity(count);
            for i in 0..count {
                let t0 = Instant::now();
                api.provision(&ws, &format!("latency-{i}"), "app-template")
                    .await?;
                samples.push(micros(t0.elapsed()));
            }
            anyhow::Ok(samples)
        })
        .await??;
    let persql = Percentiles::of_micros(samples);
    Ok(ProvisionLatency {
        ratio_p50: ratio(persql.p50_ms, direct.p50_ms),
        persql,
        direct,
        direct_one_tx,
    })
}

/// Provisions `count` new subjects, `in_flight` at a time; returns them and the seconds taken.
pub async fn provision_fleet(
    client: &ClientRuntime,
    api: &Api,
    ws: &str,
    count: usize,
    in_flight: usize,
) -> anyhow::Result<(Fleet, f64)> {
    let (api, ws) = (api.clone(), ws.to_owned());
    client
        .run(async move {
            let t0 = Instant::now();
            let first = api.provision(&ws, "scale-0", "app-template").await?;
            let mut fleet = Fleet::with_capacity(first.namespace, count);
            fleet.push(&first.slug, &first.token)?;
            let mut done = futures::stream::iter(1..count)
                .map(|i| {
                    let (api, ws) = (&api, &ws);
                    async move {
                        api.provision(ws, &format!("scale-{i}"), "app-template")
                            .await
                    }
                })
                .buffer_unordered(in_flight.max(1));
            while let Some(p) = done.try_next().await? {
                fleet.push(&p.slug, &p.token)?;
                if fleet.len().is_multiple_of(10_000) {
                    eprintln!(
                        "bench: provisioned {} databases in {:.0} s",
                        fleet.len(),
                        t0.elapsed().as_secs_f64()
                    );
                }
            }
            anyhow::Ok((fleet, t0.elapsed().as_secs_f64()))
        })
        .await?
}

/// Phase 3: point SELECTs uniformly at random over every database of `fleet`.
pub async fn spread_select(
    client: &ClientRuntime,
    spec: LoadSpec,
    base: &str,
    fleet: Arc<Fleet>,
) -> anyhow::Result<LoadResult> {
    anyhow::ensure!(!fleet.is_empty(), "no databases to query");
    let base = base.to_owned();
    let make: MakeRequest = Arc::new(move |rng| {
        let (url, auth) = fleet.query_target(&base, rng.random_range(0..fleet.len()));
        Request {
            url,
            auth: Some(auth),
            body: select_body(rng),
        }
    });
    client.load(spec, make).await
}

/// Assembles phase 3's figures.
pub fn scale(
    fleet_len: usize,
    provision_secs: f64,
    select: LoadResult,
    hot_rps: f64,
    hot_again: LoadResult,
) -> Scale {
    Scale {
        databases: fleet_len,
        provision_secs,
        provisions_per_sec: ratio(fleet_len as f64, provision_secs),
        ratio: ratio(select.rps, hot_rps),
        select,
        hot_rps,
        hot_again,
    }
}

/// One workload on PerSQL and on the baseline, measured in the same run.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Compared {
    pub persql: LoadResult,
    pub baseline: LoadResult,
    /// PerSQL throughput / baseline throughput.
    pub ratio: f64,
}

impl Compared {
    /// Pairs two results and computes their throughput ratio.
    pub fn new(persql: LoadResult, baseline: LoadResult) -> Self {
        let ratio = ratio(persql.rps, baseline.rps);
        Self {
            persql,
            baseline,
            ratio,
        }
    }
}

/// Provision latency against creating the same schema straight with rusqlite.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionLatency {
    /// `POST /v1/users/provision`, new subjects, one at a time.
    pub persql: Percentiles,
    /// New file, WAL, synchronous=FULL, each DDL statement autocommitted, close.
    pub direct: Percentiles,
    /// The same with all DDL in one transaction (for reference).
    pub direct_one_tx: Percentiles,
    /// PerSQL p50 / direct p50.
    pub ratio_p50: f64,
}

/// Point SELECTs spread over many databases against the single hot database.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Scale {
    pub databases: usize,
    /// Wall time to provision them, concurrently.
    pub provision_secs: f64,
    pub provisions_per_sec: f64,
    pub select: LoadResult,
    /// The hot-database SELECT figure from the first phase.
    pub hot_rps: f64,
    /// `select.rps / hot_rps`.
    pub ratio: f64,
    /// The hot-database SELECT measured again after this phase (drift check, not a target).
    pub hot_again: LoadResult,
}
