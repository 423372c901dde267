//! The closed-loop HTTP load generator shared, unchanged, by PerSQL and its baselines.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use rand::{SeedableRng, rngs::SmallRng};
use serde::Serialize;
use tokio::runtime::Runtime;

/// One request: `POST url` with a JSON `body` and, when set, `authorization: auth`.
#[derive(Debug)]
pub struct Request {
    pub url: String,
    pub auth: Option<String>,
    pub body: String,
}

/// Builds the next request of a worker (called once per request, on the client runtime).
pub type MakeRequest = Arc<dyn Fn(&mut SmallRng) -> Request + Send + Sync>;

/// How hard and how long to drive a target.
#[derive(Clone, Copy, Debug)]
pub struct LoadSpec {
    /// Concurrent keep-alive connections, one closed-loop worker each.
    pub connections: usize,
    /// Run before measuring (connections opened, caches warm); not counted.
    pub warmup: Duration,
    /// Measured window.
    pub duration: Duration,
}

/// Throughput and latency of one measured window.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadResult {
    /// Successful (2xx) requests started in the window.
    pub requests: u64,
    /// Failed requests (transport error or non-2xx) in the whole run.
    pub errors: u64,
    /// `requests` per second of the window.
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Latency percentiles of a set of samples.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// p99.9 and the slowest sample: where a window's p99 comes from one stall, these tell.
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `samples` (microseconds); zeros when empty.
    pub fn of_micros(mut samples: Vec<u32>) -> Self {
        samples.sort_unstable();
        Self::of_sorted(&samples)
    }

    /// The same of samples already sorted.
    pub fn of_sorted(samples: &[u32]) -> Self {
        debug_assert!(samples.is_sorted());
        let at = |q: f64| -> f64 {
            if samples.is_empty() {
                return 0.0;
            }
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            f64::from(samples[rank - 1]) / 1000.0
        };
        Self {
            count: samples.len(),
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: at(1.0),
        }
    }
}

/// Elapsed time as whole microseconds (saturating), for latency samples.
pub fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// The client side of every measurement: its own tokio runtime with a fixed number of
/// worker threads, separate from the runtime serving PerSQL and the baseline.
///
/// Why this design: on a 2-core machine the load generator competes with the server for
/// CPU, so no figure here is "the server alone". What makes the comparison fair is that
/// the client is *identical* for both targets: same runtime and thread count, same reqwest
/// (hyper 1) HTTP/1.1 client, one client per connection so each worker owns exactly one
/// keep-alive connection, same closed loop (send, read the whole body, repeat), same
/// request bodies. A separate runtime keeps client and server tasks from sharing an
/// executor queue (which would let one starve the other unevenly); a small, fixed thread
/// count (default 1) leaves most of the CPU to the server, as `wrk -t1` would.
/// Ratios, not absolutes, are the result.
pub struct ClientRuntime {
    rt: Option<Runtime>,
}

impl std::fmt::Debug for ClientRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRuntime").finish_non_exhaustive()
    }
}

impl ClientRuntime {
    /// A client runtime with `threads` worker threads.
    pub fn new(threads: usize) -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("bench-client")
            .enable_all()
            .build()
            .context("building the client runtime")?;
        Ok(Self { rt: Some(rt) })
    }

    /// Runs `fut` on the client runtime and waits for it from the caller's runtime.
    pub async fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let rt = self.rt.as_ref().context("client runtime gone")?;
        rt.spawn(fut).await.context("client task panicked")
    }

    /// Starts `fut` on the client runtime now; await the handle for its output.
    pub fn spawn<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> anyhow::Result<tokio::task::JoinHandle<T>> {
        Ok(self.rt.as_ref().context("client runtime gone")?.spawn(fut))
    }

    /// Drives `make`'s requests over `spec.connections` connections and measures them.
    pub async fn load(&self, spec: LoadSpec, make: MakeRequest) -> anyhow::Result<LoadResult> {
        self.run(drive(spec, make)).await?
    }
}

impl Drop for ClientRuntime {
    fn drop(&mut self) {
        // Dropping a runtime inside another runtime's task panics; let it wind down alone.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

struct WorkerOutcome {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    latencies: Vec<u32>,
}

async fn drive(spec: LoadSpec, make: MakeRequest) -> anyhow::Result<LoadResult> {
    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let end = measure_from + spec.duration;
    let mut workers = Vec::with_capacity(spec.connections);
    for i in 0..spec.connections {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .build()
            .context("building the HTTP client")?;
        let make = make.clone();
        let rng = SmallRng::seed_from_u64(0x5eed ^ i as u64);
        workers.push(tokio::spawn(worker(client, make, rng, measure_from, end)));
    }
    let (mut ok, mut errors, mut first_error, mut latencies) = (0, 0, None, Vec::new());
    for w in workers {
        let o = w.await.context("load worker panicked")?;
        ok += o.ok;
        errors += o.errors;
        first_error = first_error.or(o.first_error);
        latencies.extend(o.latencies);
    }
    if let Some(e) = first_error {
        eprintln!("bench: {errors} failed requests, first: {e}");
    }
    let p = Percentiles::of_micros(latencies);
    Ok(LoadResult {
        requests: ok,
        errors,
        rps: ok as f64 / spec.duration.as_secs_f64(),
        p50_ms: p.p50_ms,
        p99_ms: p.p99_ms,
    })
}

async fn worker(
    client: reqwest::Client,
    make: MakeRequest,
    mut rng: SmallRng,
    measure_from: Instant,
    end: Instant,
) -> WorkerOutcome {
    let mut out = WorkerOutcome {
        ok: 0,
        errors: 0,
        first_error: None,
        latencies: Vec::with_capacity(1 << 16),
    };
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            return out;
        }
        let req = make(&mut rng);
        let mut builder = client
            .post(req.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(req.body);
        if let Some(auth) = req.auth {
            builder = builder.header(http::header::AUTHORIZATION, auth);
        }
        let outcome = match builder.send().await {
            Ok(resp) => {
                let status = resp.status();
                match resp.bytes().await {
                    Ok(_) if status.is_success() => Ok(()),
                    Ok(body) => Err(format!("{status}: {}", String::from_utf8_lossy(&body))),
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) if t0 >= measure_from => {
                out.ok += 1;
                out.latencies.push(micros(t0.elapsed()));
            }
            Ok(()) => {}
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert(e);
            }
        }
    }
}

/// `a / b`, 0 when `b` is 0.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}
