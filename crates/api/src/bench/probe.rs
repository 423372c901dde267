//! A probe: point SELECTs on random databases of a set, with latency percentiles, until
//! stopped (the migrations phase runs it idle and during a rollout). At a fixed rate (the
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
    /// Answers slower than [`SLOW_MS`].
    pub slow: usize,
    /// Share of the machine's CPU time the hypervisor gave to others during the window
    /// (`steal` in `/proc/stat`), in percent; `None` where that is not readable. On these
    /// shared machines it swings from 0 to 30 % within minutes, and a window with much
    /// steal has a p99 that says more about the host than about PerSQL.
    pub steal_pct: Option<f64>,
    /// The latencies (µs), sorted: windows are pooled by [`Probe::pooled`].
    #[serde(skip)]
    samples: Vec<u32>,
}

/// What counts as a slow answer (`Probe::slow`), in milliseconds.
pub const SLOW_MS: u32 = 10;

impl Probe {
    /// A window's figures from its latencies (µs).
    fn of(mut samples: Vec<u32>, secs: f64, errors: u64) -> Self {
        samples.sort_unstable();
        Self {
            steal_pct: None,
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
            let (mut lat, mut errors) = (Vec::new(), 0u64);
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
    let mut window = Probe::of(all, t0.elapsed().as_secs_f64(), errors);
    window.steal_pct = cpu0.zip(cpu_times()).map(|((s0, t0), (s1, t1))| {
        ratio(s1.saturating_sub(s0) as f64, t1.saturating_sub(t0) as f64) * 100.0
    });
    Ok(window)
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
mod tests {
    use super::*;

    #[test]
    fn windows_pool_their_samples_and_count_slow_answers() {
        let a = Probe::of(vec![900, 100, 20_000], 1.0, 0);
        let b = Probe::of(vec![300, 10_000], 2.0, 1);
        assert_eq!((a.slow, b.slow), (1, 0), "10 ms itself is not slow");
        assert_eq!(a.latency.max_ms, 20.0);
        assert_eq!(b.rps, 1.0);
        let pooled = Probe::pooled(&[&a, &b]);
        assert_eq!(pooled.count, 5);
        assert_eq!(pooled.p50_ms, 0.9);
        assert_eq!(pooled.max_ms, 20.0);
    }

    #[test]
    fn steal_is_read_from_the_cpu_line_of_proc_stat() {
        let line = "cpu  100 5 50 800 10 1 2 32 7 0";
        assert_eq!(parse_cpu_line(line), Some((32, 1000)));
        assert_eq!(parse_cpu_line("cpu0 1 2 3 4 5 6 7 8"), None);
        assert_eq!(parse_cpu_line("cpu  1 2 3"), None);
        assert_eq!(parse_cpu_line("cpu  1 2 3 4 5 6 7 x"), None);
        #[cfg(target_os = "linux")]
        assert!(cpu_times().is_some_and(|(steal, all)| steal <= all && all > 0));
    }

    #[test]
    fn a_fixed_rate_spreads_over_the_connections_and_zero_is_a_closed_loop() {
        let paced = Pace {
            connections: 4,
            rate: 1000.0,
        };
        assert_eq!(paced.interval(), Some(Duration::from_millis(4)));
        let closed = Pace {
            connections: 4,
            rate: 0.0,
        };
        assert_eq!(closed.interval(), None);
    }
}
