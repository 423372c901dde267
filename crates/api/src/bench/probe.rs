//! A light closed-loop probe: point SELECTs on random databases of a set, with latency
//! percentiles, until stopped (the migrations phase runs it idle and during a rollout).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use rand::{Rng, SeedableRng, rngs::SmallRng};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{
    load::{ClientRuntime, Percentiles, micros},
    report::ratio,
};

/// A probe window's figures.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub latency: Percentiles,
    pub rps: f64,
    pub errors: u64,
}

/// The probe for `window`, or until cancelled.
pub async fn probe(
    client: &ClientRuntime,
    targets: Arc<Vec<(String, String)>>,
    connections: usize,
    window: Option<Duration>,
) -> anyhow::Result<Probe> {
    let stop = CancellationToken::new();
    if let Some(w) = window {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(w).await;
            stop.cancel();
        });
    }
    client.run(run_probe(targets, connections, stop)).await?
}

/// `connections` closed-loop workers sending point SELECTs to random targets until `stop`.
pub async fn run_probe(
    targets: Arc<Vec<(String, String)>>,
    connections: usize,
    stop: CancellationToken,
) -> anyhow::Result<Probe> {
    let t0 = Instant::now();
    let mut workers = Vec::new();
    for w in 0..connections.max(1) {
        let (targets, stop) = (targets.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .tcp_nodelay(true)
                .build()?;
            let mut rng = SmallRng::seed_from_u64(0xbee5 ^ w as u64);
            let (mut lat, mut errors) = (Vec::new(), 0u64);
            while !stop.is_cancelled() {
                let (url, auth) = &targets[rng.random_range(0..targets.len())];
                let id = rng.random_range(1..=super::phases::HOT_ROWS);
                let body = format!(
                    r#"{{"sql":"SELECT id, body FROM items WHERE id = ?","params":[{id}]}}"#
                );
                let start = Instant::now();
                let ok = match client
                    .post(url)
                    .header("authorization", auth)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    lat.push(micros(start.elapsed()));
                } else {
                    errors += 1;
                }
            }
            anyhow::Ok((lat, errors))
        }));
    }
    let (mut all, mut errors) = (Vec::new(), 0);
    for w in workers {
        let (lat, e) = w.await??;
        all.extend(lat);
        errors += e;
    }
    let secs = t0.elapsed().as_secs_f64();
    Ok(Probe {
        rps: ratio(all.len() as f64, secs),
        latency: Percentiles::of_micros(all),
        errors,
    })
}
