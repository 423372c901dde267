//! The metering phase: consumer throughput (embedded log and NATS JetStream), query
//! throughput with metering on against off, and the end-to-end charge lag under that load.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use persql_events::{Bus, BusConfig, ControlPlane, Envelope, Handler as _, QueryExecuted, outbox};
use persql_metering::{MeteringHandler, Prices};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::{
    load::ratio,
    load::{ClientRuntime, LoadResult, LoadSpec, Percentiles, micros},
    phases,
    target::{Api, PerSqlProcess},
};
use persql_api::Config;

/// Distinct billed namespaces of the synthetic stream (2 databases and 3 tokens each).
const NAMESPACES: usize = 300;
/// Events appended per control-plane transaction before the consumer starts.
const APPEND_TX: usize = 50_000;
/// Longest wait for a relay or consumer to finish before the run is declared stuck.
const TIMEOUT: Duration = Duration::from_secs(1800);
/// Rest after each on/off window before the other side's starts.
const SETTLE: Duration = Duration::from_millis(300);
/// Interval between two probe queries of the lag measurement.
const PROBE_EVERY: Duration = Duration::from_millis(10);

/// One consumer-throughput run over a pre-filled log.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerRun {
    pub events: usize,
    /// Appending the events to the log/outbox (not part of any throughput figure).
    pub append_secs: f64,
    /// NATS only: the relay publishing every outbox row to JetStream.
    pub relay_secs: Option<f64>,
    pub relay_per_sec: Option<f64>,
    /// The metering consumer, from its start until every event is charged.
    pub consume_secs: f64,
    pub consume_per_sec: f64,
    /// Ledger rows at the end (must equal `events`).
    pub ledger_rows: i64,
}

/// Everything the metering phase measured.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MeteringReport {
    pub embedded: ConsumerRun,
    /// The handler in 1000-event `handle_batch` calls without the bus ([`Mode::Direct`]).
    pub batched: ConsumerRun,
    pub nats: Option<ConsumerRun>,
    /// Why the NATS run did not happen, when it did not.
    pub nats_skipped: Option<String>,
    /// Point SELECT on the hot database, `metering = "off"`: the round with the median
    /// throughput.
    pub select_off: LoadResult,
    /// The same with `metering = "on"`.
    pub select_on: LoadResult,
    /// Every round's throughput, in the order run (off first in odd rounds, on first in
    /// even ones).
    pub rounds_off_rps: Vec<f64>,
    pub rounds_on_rps: Vec<f64>,
    /// Queries the metering-on side served over all its windows, over those the off side
    /// served in as many windows of the same length, interleaved.
    pub ratio: f64,
    /// CPU time of the side's server process per query served, over its measured windows
    /// (µs; `None` where `/proc` is missing). On a saturated machine throughput follows it,
    /// and unlike throughput it moves little when other tenants of the host take or give
    /// back CPU.
    pub cpu_us_per_query_off: Option<f64>,
    pub cpu_us_per_query_on: Option<f64>,
    /// Answer-to-charge lag of probe queries during the metering-on loads (all rounds).
    pub lag: Percentiles,
    /// Probe queries whose charge never became visible (within 10 s after the load).
    pub lag_uncharged: usize,
}

/// Runs the whole metering phase under `root`.
pub async fn run(
    client: &ClientRuntime,
    spec: LoadSpec,
    root: &Path,
    events: usize,
    rounds: std::num::NonZeroUsize,
    nats_url: Option<&str>,
) -> anyhow::Result<MeteringReport> {
    let prices = Config::for_data_dir(root.to_path_buf()).prices();
    let events = events.max(1);

    eprintln!("bench: metering consumer, embedded log, {events} events…");
    let embedded = consumer_run(
        &root.join("metering-embedded"),
        events,
        prices,
        Mode::Embedded,
    )
    .await?;
    eprintln!("bench: metering handler driven directly in batches of 1000, {events} events…");
    let batched =
        consumer_run(&root.join("metering-batched"), events, prices, Mode::Direct).await?;
    let (nats, nats_skipped) = match nats_url {
        Some(url) => {
            eprintln!("bench: metering consumer, NATS JetStream at {url}, {events} events…");
            let run =
                consumer_run(&root.join("metering-nats"), events, prices, Mode::Nats(url)).await?;
            (Some(run), None)
        }
        None => {
            let why = "no NATS URL (pass --nats-url or set PERSQL_NATS_URL)".to_owned();
            eprintln!("bench: metering consumer on NATS skipped: {why}");
            (None, Some(why))
        }
    };

    let rounds = rounds.get();
    eprintln!("bench: point SELECT, metering off and on: starting both instances…");
    let off_side = Side::start(root.join("metering-off"), false).await?;
    let on_side = Side::start(root.join("metering-on"), true).await?;
    let (mut offs, mut ons, mut lags, mut lag_uncharged) = (Vec::new(), Vec::new(), Vec::new(), 0);
    let (mut off_cpu, mut on_cpu) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        // Off then on in odd rounds, on then off in even ones (ABBA): a machine that speeds
        // up or slows down through the run favours neither side.
        for metering in order(round) {
            let (side, what) = if metering {
                (&on_side, "on, with charge-lag probe")
            } else {
                (&off_side, "off")
            };
            eprintln!("bench: point SELECT, metering {what} (round {round} of {rounds})…");
            let (load, probe, cpu) = side.window(client, spec).await?;
            if metering {
                lags.extend(probe.lags);
                lag_uncharged += probe.uncharged;
                ons.push(load);
                on_cpu.push(cpu);
            } else {
                offs.push(load);
                off_cpu.push(cpu);
            }
        }
    }
    off_side.stop().await;
    on_side.stop().await;
    let rounds_off_rps: Vec<f64> = offs.iter().map(|r| r.rps).collect();
    let rounds_on_rps: Vec<f64> = ons.iter().map(|r| r.rps).collect();
    let served = |rs: &[LoadResult]| rs.iter().map(|r| r.requests).sum::<u64>();
    let (served_off, served_on) = (served(&offs), served(&ons));
    let cpu_per_query = |cpu: &[Option<Duration>], n: u64| {
        let total: Option<Duration> = cpu.iter().copied().sum();
        total.map(|t| t.as_secs_f64() * 1e6 / n.max(1) as f64)
    };
    let (cpu_off, cpu_on) = (
        cpu_per_query(&off_cpu, served_off),
        cpu_per_query(&on_cpu, served_on),
    );
    let (select_off, select_on) = (median_round(offs), median_round(ons));
    Ok(MeteringReport {
        embedded,
        batched,
        nats,
        nats_skipped,
        ratio: ratio(served_on as f64, served_off as f64),
        cpu_us_per_query_off: cpu_off,
        cpu_us_per_query_on: cpu_on,
        select_off,
        select_on,
        rounds_off_rps,
        rounds_on_rps,
        lag: Percentiles::of_micros(lags),
        lag_uncharged,
    })
}

/// Which side goes first in `round` (from 1): off (`false`) in odd rounds, on in even ones.
fn order(round: usize) -> [bool; 2] {
    if round % 2 == 1 {
        [false, true]
    } else {
        [true, false]
    }
}

/// User plus system CPU time of process `pid` so far, from `/proc/<pid>/stat` (whose clock
/// ticks are `USER_HZ`, 100 a second on Linux whatever the kernel's own tick rate).
fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3, `state`;
    // `utime` and `stime` are fields 14 and 15.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// The round with the median throughput (the upper one of an even count).
fn median_round(mut rounds: Vec<LoadResult>) -> LoadResult {
    rounds.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    let mid = rounds.len() / 2;
    rounds.swap_remove(mid)
}

/// The synthetic `query.executed` events `from..to`: `NAMESPACES` namespaces with 2
/// databases and 3 tokens each, one statement, a few rows read, sometimes one written,
/// and every tenth call billed to another namespace's caller (as real traffic is).
fn synthetic_events(from: usize, to: usize) -> Vec<Envelope> {
    (from..to)
        .map(|i| {
            let h = (i as u64 ^ 0x5eed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let ns = (h >> 40) as usize % NAMESPACES;
            let db = ns * 2 + (h >> 20) as usize % 2;
            let billed = if i % 10 == 0 {
                (ns + 1 + (h >> 8) as usize % (NAMESPACES - 1)) % NAMESPACES
            } else {
                ns
            };
            let token = billed * 3 + (h >> 4) as usize % 3;
            let database_id = format!("{db:032x}");
            Envelope::new(
                "/persql/api",
                &format!("ns-{ns}"),
                &format!("databases/{database_id}"),
                &QueryExecuted {
                    database_id,
                    namespace_id: format!("n{ns:031x}"),
                    billed_namespace_id: format!("n{billed:031x}"),
                    token_id: format!("t{token:031x}"),
                    role: "write".into(),
                    statements: 1,
                    rows_read: 1 + h % 10,
                    rows_written: u64::from(h.is_multiple_of(5)),
                    bytes: 64 + h % 512,
                    duration_us: 50 + h % 200,
                    error: None,
                },
            )
        })
        .collect()
}

/// Fills a fresh control plane's log with `events` events, then times the metering
/// consumer (and, on NATS, first the relay) until every event is charged.
async fn consumer_run(
    dir: &Path,
    events: usize,
    prices: Prices,
    mode: Mode<'_>,
) -> anyhow::Result<ConsumerRun> {
    let nats_url = match mode {
        Mode::Nats(url) => Some(url),
        Mode::Embedded | Mode::Direct => None,
    };
    std::fs::create_dir_all(dir)?;
    let cp = ControlPlane::connect(None, dir)
        .await
        .context("opening the metering control plane")?;
    let backend = cp.backend();
    let t0 = Instant::now();
    let mut last_id = String::new();
    for from in (0..events).step_by(APPEND_TX) {
        let batch = synthetic_events(from, (from + APPEND_TX).min(events));
        last_id.clone_from(&batch.last().context("empty batch")?.id);
        let mut tx = cp.begin().await?;
        outbox::append(&mut tx, backend, &batch).await?;
        cp.commit(tx).await?;
    }
    let append_secs = t0.elapsed().as_secs_f64();
    let max_seq: i64 = sqlx::query("SELECT MAX(seq) FROM events")
        .fetch_one(cp.pool())
        .await?
        .try_get(0)?;
    eprintln!("bench:   appended {events} events in {append_secs:.1} s");

    let config = BusConfig {
        nats_url: nats_url.map(str::to_owned),
        prefix: format!("bench{}", hex::encode(rand::random::<[u8; 4]>())),
    };
    let bus = Bus::connect(cp.clone(), &config)
        .await
        .context("connecting the bus")?;
    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();

    let (relay_secs, relay_per_sec) = match bus.spawn_relay(shutdown.clone()) {
        Some(relay) => {
            tasks.push(relay);
            let t = Instant::now();
            // The relay publishes oldest first: the newest row published means all are.
            wait_until("relay", || async {
                let row = sqlx::query("SELECT published_at FROM events WHERE seq = $1")
                    .bind(max_seq)
                    .fetch_one(cp.pool())
                    .await?;
                let done = row.try_get::<Option<i64>, _>(0)?.is_some();
                anyhow::Ok(done)
            })
            .await?;
            let secs = t.elapsed().as_secs_f64();
            eprintln!("bench:   relay published {events} events in {secs:.1} s");
            (Some(secs), Some(events as f64 / secs))
        }
        None => (None, None),
    };

    let t = Instant::now();
    let handler = Arc::new(MeteringHandler::new(prices, backend));
    if mode == Mode::Direct {
        drive_batched(&cp, handler.as_ref(), max_seq).await?;
    } else if nats_url.is_some() {
        tasks.push(bus.spawn_consumer(handler, shutdown.clone()));
        // Delivered and applied in stream order: the last event charged means all are.
        wait_until("metering consumer", || async {
            let row = sqlx::query("SELECT COUNT(*) FROM ledger WHERE event_id = $1")
                .bind(&last_id)
                .fetch_one(cp.pool())
                .await?;
            anyhow::Ok(row.try_get::<i64, _>(0)? > 0)
        })
        .await?;
    } else {
        tasks.push(bus.spawn_consumer(handler, shutdown.clone()));
        wait_until("metering consumer", || async {
            let row = sqlx::query("SELECT seq FROM consumer_offsets WHERE consumer = 'metering'")
                .fetch_optional(cp.pool())
                .await?;
            let seq = match row {
                Some(r) => r.try_get::<i64, _>(0)?,
                None => 0,
            };
            anyhow::Ok(seq >= max_seq)
        })
        .await?;
    }
    let consume_secs = t.elapsed().as_secs_f64();
    shutdown.cancel();
    for task in tasks {
        let _ = task.await;
    }
    let ledger_rows: i64 = sqlx::query("SELECT COUNT(*) FROM ledger")
        .fetch_one(cp.pool())
        .await?
        .try_get(0)?;
    cp.close().await;
    eprintln!(
        "bench:   metering consumer charged {ledger_rows} events in {consume_secs:.1} s ({:.0}/s)",
        events as f64 / consume_secs
    );
    if ledger_rows != events as i64 {
        bail!("the metering consumer wrote {ledger_rows} ledger rows for {events} events");
    }
    Ok(ConsumerRun {
        events,
        append_secs,
        relay_secs,
        relay_per_sec,
        consume_secs,
        consume_per_sec: events as f64 / consume_secs,
        ledger_rows,
    })
}

/// Where the events of a consumer run travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode<'a> {
    /// `Bus::spawn_consumer` on the embedded log.
    Embedded,
    /// `Bus::spawn_relay` and `Bus::spawn_consumer` on NATS JetStream at this URL.
    Nats(&'a str),
    /// No bus: the embedded consumer's loop (read 1000 rows after the offset, one
    /// transaction with the effect and the new offset) calling `handle_batch` once per
    /// read instead of `handle` once per event — what the embedded bus would reach if its
    /// `apply` called `handle_batch`, as the NATS consumer does.
    Direct,
}

/// [`Mode::Direct`]: applies every event up to `max_seq` in batches of 1000.
async fn drive_batched(
    cp: &ControlPlane,
    handler: &MeteringHandler,
    max_seq: i64,
) -> anyhow::Result<()> {
    let mut offset = 0i64;
    while offset < max_seq {
        let rows =
            sqlx::query("SELECT seq, body FROM events WHERE seq > $1 ORDER BY seq LIMIT 1000")
                .bind(offset)
                .fetch_all(cp.pool())
                .await?;
        let mut events = Vec::with_capacity(rows.len());
        for r in &rows {
            offset = r.try_get(0)?;
            let e: Envelope = serde_json::from_str(&r.try_get::<String, _>(1)?)?;
            if persql_metering::consumer::TYPES.contains(&e.type_suffix()) {
                events.push(e);
            }
        }
        let mut tx = cp.begin().await?;
        handler
            .handle_batch(&mut tx, &events)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        sqlx::query(
            "INSERT INTO consumer_offsets (consumer, seq) VALUES ($1, $2) \
             ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq",
        )
        .bind("metering")
        .bind(offset)
        .execute(&mut *tx)
        .await?;
        cp.commit(tx).await?;
    }
    Ok(())
}

/// Polls `done` every 20 ms until it holds; fails after `TIMEOUT`.
async fn wait_until<F, Fut>(what: &str, mut done: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let start = Instant::now();
    let mut report = start + Duration::from_secs(15);
    loop {
        if done().await? {
            return Ok(());
        }
        let now = Instant::now();
        if now >= report {
            eprintln!(
                "bench:   waiting for the {what}… {:.0} s",
                start.elapsed().as_secs_f64()
            );
            report = now + Duration::from_secs(15);
        }
        if start.elapsed() > TIMEOUT {
            bail!("the {what} did not finish in {} s", TIMEOUT.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates namespace `slug` (funded when metering is on); returns its workspace token.
async fn namespace(api: &Api, admin: &str, slug: &str, fund: bool) -> anyhow::Result<String> {
    let v = api
        .post("/v1/admin/namespaces", admin, json!({ "slug": slug }))
        .await?;
    if fund {
        api.post(
            &format!("/v1/admin/namespaces/{slug}/topups"),
            admin,
            json!({ "amount": "1000000", "reference": "bench" }),
        )
        .await?;
    }
    v["token"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no token in {v}"))
}

/// What the probe saw.
struct Probe {
    /// Answer-to-charge lag of each probe answered in the measured window (µs).
    lags: Vec<u32>,
    uncharged: usize,
}

/// One side of the on/off comparison: a PerSQL process ([`PerSqlProcess`]) with metering
/// `on` or off, its hot database filled, and a probe namespace. Both sides stay up for the
/// whole comparison and take turns under load, so the machine's drift (on a shared machine
/// one instance's windows a minute apart can differ by a third) falls on both alike.
///
/// The lag probe: one extra connection queries its own database in its own namespace
/// (`probe`) every 10 ms, one request at a time, while the load runs, and another polls the
/// probe namespace's `GET …/balance` every 10 ms. The probe namespace has no other traffic
/// and each probe query costs the same (`probe_cost`), so the balance says how many probe
/// queries have been charged; query `i`'s lag is from its answer to the first poll whose
/// balance shows `i + 1` charged. It therefore spans the query-event batcher's linger, the
/// append, the metering consumer's wake-up and transaction, and up to one poll interval
/// plus a balance read. Both sides run the probe and the poll alike.
struct Side {
    metering: bool,
    inst: PerSqlProcess,
    api: Api,
    load_url: String,
    load_token: String,
    probe_url: String,
    probe_token: String,
    /// What one probe query is charged (nano-units; 0 with metering off).
    probe_cost: i64,
}

impl Side {
    async fn start(dir: PathBuf, metering: bool) -> anyhow::Result<Self> {
        let (inst, admin) = PerSqlProcess::start(
            dir,
            &[
                "--metering",
                if metering { "on" } else { "off" },
                // No storage charge lands in the probe's balance mid-run (sampling happens at
                // 30-day boundaries; one crossed would show as probes never charged).
                "--storage-sample-secs",
                "2592000",
            ],
        )
        .await?;
        let api = Api::new(&inst.base);
        let ws = namespace(&api, &admin, "bench", metering).await?;
        let (hot, load_url) = phases::hot_database(&api, &inst.base, &ws).await?;
        let probe_token = namespace(&api, &admin, "probe", metering).await?;
        api.post("/v1/databases", &probe_token, json!({ "slug": "probe" }))
            .await?;
        let probe_url = format!("{}/v1/databases/probe/probe/query", inst.base);
        let mut side = Self {
            metering,
            inst,
            api,
            load_url,
            load_token: hot.token,
            probe_url,
            probe_token,
            probe_cost: 0,
        };
        if metering {
            side.probe_cost = side.calibrate().await?;
        }
        Ok(side)
    }

    /// What one probe query is charged: the balance once settled (the probe database's own
    /// provisioning charge lands after it is created), then after one probe query.
    async fn calibrate(&self) -> anyhow::Result<i64> {
        let before = self.settled_probe_balance().await?;
        probe_query(&reqwest::Client::new(), &self.probe_url, &self.probe_token).await?;
        let after = self.settled_probe_balance().await?;
        if after >= before {
            bail!("the probe query was not charged (balance {before} then {after} nano-units)");
        }
        Ok(before - after)
    }

    /// The probe namespace's balance once it read the same for 500 ms (within 30 s).
    async fn settled_probe_balance(&self) -> anyhow::Result<i64> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = probe_balance(&self.api, &self.probe_token).await?;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = probe_balance(&self.api, &self.probe_token).await?;
            if now == last {
                return Ok(now);
            }
            if Instant::now() > deadline {
                bail!("the probe namespace's balance did not settle within 30 s");
            }
            last = now;
        }
    }

    /// Phase 1's point-SELECT load on the hot database for one window, with the probe and
    /// the balance poll, which (metering on) goes on until the last probe's charge shows, so
    /// the window's metering work is done before the other side's window starts. Returns
    /// the server's CPU time over the measured window too (timed from this call, so the
    /// window's edges are the load's to within the load's start-up).
    async fn window(
        &self,
        client: &ClientRuntime,
        spec: LoadSpec,
    ) -> anyhow::Result<(LoadResult, Probe, Option<Duration>)> {
        let start_balance = probe_balance(&self.api, &self.probe_token).await?;
        let pid = self.inst.pid();
        let cpu = tokio::spawn(async move {
            tokio::time::sleep(spec.warmup).await;
            let from = process_cpu(pid?);
            tokio::time::sleep(spec.duration).await;
            Some(process_cpu(pid?)?.saturating_sub(from?))
        });
        let load = client.load(
            spec,
            phases::fixed(self.load_url.clone(), Some(&self.load_token), false),
        );
        // Set once the probe is done: the balance at which the poll stops.
        let (stop_at, stop_rx) = tokio::sync::watch::channel(None);
        let poll = client.run(poll_balance(
            self.api.clone(),
            self.probe_token.clone(),
            stop_rx,
        ));
        let probe = async {
            let samples = client
                .run(probe_queries(
                    self.probe_url.clone(),
                    self.probe_token.clone(),
                    spec,
                ))
                .await
                .and_then(|s| s);
            // Metering on: until the last probe's charge shows; off (or a failed probe): now.
            let target = match (&samples, self.metering) {
                (Ok(s), true) => start_balance - self.probe_cost * s.sent as i64,
                _ => i64::MAX,
            };
            let _ = stop_at.send(Some(target));
            samples
        };
        let (load, samples, balances) = tokio::join!(load, probe, poll);
        let (load, samples, balances) = (load?, samples?, balances??);
        let cpu = cpu.await.ok().flatten();
        // Both sides rest alike between windows (the batcher's and consumer's last commits).
        tokio::time::sleep(SETTLE).await;

        let mut lags = Vec::with_capacity(samples.answered.len());
        let mut uncharged = 0;
        if self.metering {
            for &(i, answered) in &samples.answered {
                // The first poll with probes 0..=i charged.
                let through = start_balance - self.probe_cost * (i as i64 + 1);
                match balances.iter().find(|(_, b)| *b <= through) {
                    Some((seen, _)) => lags.push(micros(seen.saturating_duration_since(answered))),
                    None => uncharged += 1,
                }
            }
        }
        Ok((load, Probe { lags, uncharged }, cpu))
    }

    async fn stop(self) {
        self.inst.stop().await;
    }
}

/// The `probe` namespace's balance, in nano-units.
async fn probe_balance(api: &Api, token: &str) -> anyhow::Result<i64> {
    let v = api.get("/v1/namespaces/probe/balance", token).await?;
    let b = v["balance"]
        .as_str()
        .with_context(|| format!("no balance in {v}"))?;
    Ok(persql_metering::Money::parse(b)
        .map_err(|e| anyhow::anyhow!("balance {b:?}: {e}"))?
        .nanos())
}

/// `probe`'s balance every `PROBE_EVERY`: (when read, nano-units). Once `stop_at` holds a
/// balance, polling ends at the first read at or below it, or 10 s later.
async fn poll_balance(
    api: Api,
    token: String,
    mut stop_at: tokio::sync::watch::Receiver<Option<i64>>,
) -> anyhow::Result<Vec<(Instant, i64)>> {
    let mut tick = tokio::time::interval(PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut out = Vec::new();
    let mut deadline = None;
    loop {
        tick.tick().await;
        let nanos = probe_balance(&api, &token).await?;
        out.push((Instant::now(), nanos));
        if let Some(target) = *stop_at.borrow_and_update() {
            let deadline =
                *deadline.get_or_insert_with(|| Instant::now() + Duration::from_secs(10));
            if nanos <= target || Instant::now() >= deadline {
                return Ok(out);
            }
        }
    }
}

/// The probe queries of one window.
struct ProbeQueries {
    /// Probe queries sent in the whole run (warm-up included), numbered from 0.
    sent: usize,
    /// (number, answer instant) of those sent in the measured window.
    answered: Vec<(usize, Instant)>,
}

/// Sequential probe queries for the load's whole run.
async fn probe_queries(url: String, token: String, spec: LoadSpec) -> anyhow::Result<ProbeQueries> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .build()?;
    let start = Instant::now();
    let (measure_from, end) = (start + spec.warmup, start + spec.warmup + spec.duration);
    let mut tick = tokio::time::interval(PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut out = ProbeQueries {
        sent: 0,
        answered: Vec::new(),
    };
    loop {
        tick.tick().await;
        let t0 = Instant::now();
        if t0 >= end {
            return Ok(out);
        }
        probe_query(&client, &url, &token).await?;
        let answered = Instant::now();
        if t0 >= measure_from {
            out.answered.push((out.sent, answered));
        }
        out.sent += 1;
    }
}

/// One probe query (`SELECT 1`); fails unless it succeeded.
async fn probe_query(client: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<()> {
    let resp = client
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "sql": "SELECT 1" }))
        .send()
        .await?;
    let status = resp.status();
    let body = resp.bytes().await?;
    if !status.is_success() {
        bail!("probe query: {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}

impl MeteringReport {
    /// The metering phase as table rows.
    pub fn table(&self) -> String {
        let mut s = String::from("\nmetering\n");
        let mut run = |name: &str, r: &ConsumerRun| {
            s.push_str(&format!(
                "  consumer, {name:<8} {:>9.0} events/s  ({} events in {:.1} s; appended in {:.1} s)\n",
                r.consume_per_sec, r.events, r.consume_secs, r.append_secs
            ));
            if let (Some(rs), Some(rps)) = (r.relay_secs, r.relay_per_sec) {
                s.push_str(&format!(
                    "  relay to JetStream {rps:>9.0} events/s  ({} events in {rs:.1} s)\n",
                    r.events
                ));
            }
        };
        run("embedded", &self.embedded);
        run("batched*", &self.batched);
        match (&self.nats, &self.nats_skipped) {
            (Some(n), _) => run("NATS", n),
            (None, Some(why)) => s.push_str(&format!("  consumer, NATS: skipped ({why})\n")),
            (None, None) => {}
        }
        let lr = |r: &LoadResult| {
            format!(
                "{:.0}/s, p50/p99 {:.2}/{:.2} ms{}",
                r.rps,
                r.p50_ms,
                r.p99_ms,
                if r.errors > 0 {
                    format!(", {} errors", r.errors)
                } else {
                    String::new()
                }
            )
        };
        let rounds = |rps: &[f64]| {
            rps.iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        s.push_str(&format!(
            "  point SELECT, metering off      {}  (median round; rounds: {}/s)\n  point SELECT, metering on       {}  (median round; rounds: {}/s)\n  ratio on/off (queries served, ABBA-interleaved windows) {:.2}\n",
            lr(&self.select_off),
            rounds(&self.rounds_off_rps),
            lr(&self.select_on),
            rounds(&self.rounds_on_rps),
            self.ratio
        ));
        if let (Some(off), Some(on)) = (self.cpu_us_per_query_off, self.cpu_us_per_query_on) {
            s.push_str(&format!(
                "  server CPU per query            off {off:.1} µs, on {on:.1} µs (off/on {:.2})\n",
                off / on
            ));
        }
        s.push_str(&format!(
            "  charge lag (answer → charge shown by GET balance, polled every 10 ms), {} probes: p50/p99 {:.1}/{:.1} ms{}\n  * batched: the handler's handle_batch on the embedded log, 1000 events a call, no bus\n\n",
            self.lag.count,
            self.lag.p50_ms,
            self.lag.p99_ms,
            if self.lag_uncharged > 0 {
                format!(", {} never charged", self.lag_uncharged)
            } else {
                String::new()
            }
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(rps: f64) -> LoadResult {
        LoadResult {
            requests: rps as u64,
            errors: 0,
            rps,
            p50_ms: 1.0,
            p99_ms: 2.0,
        }
    }

    #[test]
    fn the_sides_take_turns_going_first() {
        assert_eq!(order(1), [false, true]);
        assert_eq!(order(2), [true, false]);
        assert_eq!(order(3), [false, true]);
    }

    #[test]
    fn the_process_cpu_time_is_read_and_grows_with_work() {
        let before =
            process_cpu(std::process::id()).expect("/proc/<pid>/stat is readable on Linux");
        // Spins until the reading moves (a tick is 10 ms of CPU); a parser that read a
        // field that does not count CPU would spin out the whole 10 s and fail.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        let mut after = before;
        while after <= before && start.elapsed() < Duration::from_secs(10) {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            after = process_cpu(std::process::id()).unwrap();
        }
        assert!(
            after > before,
            "{after:?} after spinning, {before:?} before"
        );
    }

    #[test]
    fn the_median_round_is_the_middle_throughput_whatever_the_order() {
        let pick = |rps: &[f64]| median_round(rps.iter().copied().map(round).collect()).rps;
        assert_eq!(pick(&[30.0, 10.0, 20.0]), 20.0);
        assert_eq!(pick(&[5.0]), 5.0);
        // An even count takes the upper of the two middle rounds.
        assert_eq!(pick(&[40.0, 10.0, 30.0, 20.0]), 30.0);
    }
}
