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
mod consumer;
mod side;

use self::{
    consumer::{Mode, consumer_run},
    side::Side,
};

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
mod tests;
