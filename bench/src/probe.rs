//! A probe: point SELECTs on random databases of a set, with latency percentiles, until
//! stopped (the template-migrations phase runs it idle and during a rollout). At a fixed rate (the
//! default: a steady light load, the way a service's other tenants query it) or closed-loop
//! (each connection sends its next query as soon as the last is answered: the machine is
//! saturated, so whatever CPU a rollout takes comes out of the queries).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use rand::{Rng, SeedableRng, rngs::SmallRng};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::{
    load::ratio,
    load::{ClientRuntime, Percentiles, micros},
};

/// A probe window's figures.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub latency: Percentiles,
    pub rps: f64,
    pub errors: u64,
    /// Answers slower than [`SLOW_MS`].
    pub slow: usize,
    /// Share of the machine's CPU time the hypervisor gave to others during the window
    /// (`steal` in `/proc/stat`), in percent; `None` where that is not readable. On these
    /// shared machines it swings from 0 to 30 % within minutes, and a window with much
    /// steal has a p99 that says more about the host than about PerSQL.
    pub steal_pct: Option<f64>,
    /// The seconds with the most slow answers (at most [`WORST_SECONDS`], worst first), by
    /// Unix time: to line a window's stalls up with what else the machine did then (`vmstat`,
    /// per-thread CPU). A p99 made of a few long stalls and one made of many small delays
    /// have different causes.
    pub worst_seconds: Vec<SlowSecond>,
    /// Slow answers due in a second when the hypervisor stole at least [`STOLEN_PCT`] % of
    /// the machine's CPU (steal sampled every second): the share of [`Probe::slow`] the host,
    /// not PerSQL, most likely made. `None` where steal is not readable.
    pub slow_while_stolen: Option<usize>,
    /// The latencies (µs), sorted: windows are pooled by [`Probe::pooled`].
    #[serde(skip)]
    samples: Vec<u32>,
}

/// What counts as a slow answer (`Probe::slow`), in milliseconds.
pub const SLOW_MS: u32 = 10;

/// How many of a window's worst seconds it reports.
pub const WORST_SECONDS: usize = 10;

/// Steal (percent of a second's CPU time) from which a second counts as stolen.
pub const STOLEN_PCT: f64 = 10.0;

/// The hypervisor's steal by Unix second, in percent of that second's CPU time.
type StealBySecond = std::collections::BTreeMap<u64, f64>;

/// One second of a probe window with slow answers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlowSecond {
    /// Unix time (s) the slow queries were due in.
    pub at: u64,
    /// Slow answers due in that second.
    pub slow: usize,
    /// The slowest of them.
    pub max_ms: f64,
    /// The hypervisor's steal in that second, in percent (`None`: not sampled).
    pub steal_pct: Option<f64>,
}

/// The seconds with the most slow answers among `slow` (Unix time due in s, latency µs).
fn worst_seconds(slow: &[(u64, u32)], steal: &StealBySecond) -> Vec<SlowSecond> {
    let mut by_second = std::collections::BTreeMap::<u64, (usize, u32)>::new();
    for &(at, micros) in slow {
        let s = by_second.entry(at).or_default();
        s.0 += 1;
        s.1 = s.1.max(micros);
    }
    let mut seconds: Vec<SlowSecond> = by_second
        .into_iter()
        .map(|(at, (slow, max))| SlowSecond {
            at,
            slow,
            max_ms: f64::from(max) / 1000.0,
            steal_pct: steal.get(&at).copied(),
        })
        .collect();
    seconds.sort_by(|a, b| b.slow.cmp(&a.slow).then(a.at.cmp(&b.at)));
    seconds.truncate(WORST_SECONDS);
    seconds
}

impl Probe {
    /// A window's figures from its latencies (µs).
    fn of(
        mut samples: Vec<u32>,
        secs: f64,
        errors: u64,
        slow: &[(u64, u32)],
        steal: &StealBySecond,
    ) -> Self {
        samples.sort_unstable();
        let stolen = |at: &u64| steal.get(at).is_some_and(|&p| p >= STOLEN_PCT);
        Self {
            steal_pct: None,
            worst_seconds: worst_seconds(slow, steal),
            slow_while_stolen: (!steal.is_empty())
                .then(|| slow.iter().filter(|(at, _)| stolen(at)).count()),
            rps: ratio(samples.len() as f64, secs),
            latency: Percentiles::of_sorted(&samples),
            errors,
            slow: samples.len() - samples.partition_point(|&s| s <= SLOW_MS * 1000),
            samples,
        }
    }

    /// Percentiles over the samples of several windows together.
    pub fn pooled(windows: &[&Probe]) -> Percentiles {
        let all = windows.iter().flat_map(|w| w.samples.iter().copied());
        Percentiles::of_micros(all.collect())
    }
}

/// How hard the probe queries.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// Connections, each one request at a time.
    pub connections: usize,
    /// Queries per second over all connections; 0 = closed loop.
    pub rate: f64,
}

impl Pace {
    /// Time between two sends of one connection; `None` for a closed loop.
    fn interval(&self) -> Option<Duration> {
        (self.rate > 0.0)
            .then(|| Duration::from_secs_f64(self.connections.max(1) as f64 / self.rate))
    }
}

/// The probe for `window`, or until cancelled.
pub async fn probe(
    client: &ClientRuntime,
    targets: Arc<Vec<(String, String)>>,
    pace: Pace,
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
    client.run(run_probe(targets, pace, stop)).await?
}

/// `pace.connections` workers sending point SELECTs to random targets until `stop`.
///
/// At a fixed rate, each connection's sends are scheduled `interval` apart (staggered between
/// connections). A send that is due while the previous answer is still outstanding goes out
/// as soon as that answer arrives, and its latency counts from when it was due: a slow
/// server shows as latency, not as fewer samples (no coordinated omission). A send that
/// waited on the timer counts from when it went out, since the timer's own lateness (up to
/// a millisecond in tokio) is not the server's.
pub async fn run_probe(
    targets: Arc<Vec<(String, String)>>,
    pace: Pace,
    stop: CancellationToken,
) -> anyhow::Result<Probe> {
    let t0 = Instant::now();
    let cpu0 = cpu_times();
    let sampler = tokio::spawn(sample_steal(stop.clone()));
    let connections = pace.connections.max(1);
    let interval = pace.interval();
    let mut workers = Vec::new();
    for w in 0..connections {
        let (targets, stop) = (targets.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .tcp_nodelay(true)
                .build()?;
            let mut rng = SmallRng::seed_from_u64(0xbee5 ^ w as u64);
            let (mut lat, mut errors, mut slow) = (Vec::new(), 0u64, Vec::new());
            let mut due = interval.map(|i| t0 + i.mul_f64(w as f64 / connections as f64));
            while !stop.is_cancelled() {
                let (url, auth) = &targets[rng.random_range(0..targets.len())];
                let id = rng.random_range(1..=super::phases::HOT_ROWS);
                let body = format!(
                    r#"{{"sql":"SELECT id, body FROM items WHERE id = ?","params":[{id}]}}"#
                );
                let start = match (due, interval) {
                    (Some(at), Some(every)) => {
                        due = Some(at + every);
                        if Instant::now() >= at {
                            at
                        } else {
                            tokio::select! {
                                _ = tokio::time::sleep_until(at.into()) => {}
                                _ = stop.cancelled() => break,
                            }
                            Instant::now()
                        }
                    }
                    _ => Instant::now(),
                };
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
                    let took = micros(start.elapsed());
                    lat.push(took);
                    if took > SLOW_MS * 1000 {
                        slow.push((unix_secs(start), took));
                    }
                } else {
                    errors += 1;
                }
            }
            anyhow::Ok((lat, errors, slow))
        }));
    }
    let (mut all, mut errors, mut slow) = (Vec::new(), 0, Vec::new());
    for w in workers {
        let (lat, e, s) = w.await??;
        all.extend(lat);
        errors += e;
        slow.extend(s);
    }
    let steal = sampler.await.unwrap_or_default();
    let mut window = Probe::of(all, t0.elapsed().as_secs_f64(), errors, &slow, &steal);
    window.steal_pct = cpu0.zip(cpu_times()).map(|(a, b)| steal_pct(a, b));
    Ok(window)
}

/// The hypervisor's steal in each second until `stop` (empty where `/proc/stat` is not
/// readable), keyed by Unix second. Samples end on the wall clock's second boundaries, so
/// each covers (part of) one second and lines up with [`unix_secs`] of the queries; the
/// first and last cover what of their second the window had.
async fn sample_steal(stop: CancellationToken) -> StealBySecond {
    let mut out = StealBySecond::new();
    let Some(mut before) = cpu_times() else {
        return out;
    };
    let mut second = unix_now().as_secs();
    loop {
        let to_boundary = Duration::from_secs(1)
            .saturating_sub(Duration::from_nanos(unix_now().subsec_nanos().into()));
        let stopped = tokio::select! {
            _ = tokio::time::sleep(to_boundary) => false,
            _ = stop.cancelled() => true,
        };
        let Some(after) = cpu_times() else {
            return out;
        };
        if after.1 > before.1 {
            out.insert(second, steal_pct(before, after));
        }
        if stopped {
            return out;
        }
        (before, second) = (after, unix_now().as_secs());
    }
}

/// The time since the Unix epoch (zero on a clock set before it).
fn unix_now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// The Unix time (s) of `at`.
fn unix_secs(at: Instant) -> u64 {
    unix_now().saturating_sub(at.elapsed()).as_secs()
}

/// Steal between two readings of [`cpu_times`], in percent of all CPU time between them.
fn steal_pct((steal0, all0): (u64, u64), (steal1, all1): (u64, u64)) -> f64 {
    ratio(
        steal1.saturating_sub(steal0) as f64,
        all1.saturating_sub(all0) as f64,
    ) * 100.0
}

/// (steal, all) of the machine's CPU time so far, in ticks, from `/proc/stat`.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse_cpu_line(stat.lines().next()?)
}

/// The `cpu` line: user nice system idle iowait irq softirq steal [guest guest_nice], where
/// guest time is already counted in user.
fn parse_cpu_line(line: &str) -> Option<(u64, u64)> {
    let mut fields = line.split_whitespace();
    (fields.next()? == "cpu").then_some(())?;
    let ticks: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    (ticks.len() == 8).then(|| (ticks[7], ticks.iter().sum()))
}

#[cfg(test)]
mod tests;
