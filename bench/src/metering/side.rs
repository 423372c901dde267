//! One side of the metering on/off comparison (a `persql serve` process with its hot
//! database and probe namespace) and the charge-lag probe it runs.

use super::*;

/// Creates namespace `slug` (funded when metering is on); returns its workspace token.
pub(super) async fn namespace(
    api: &Api,
    admin: &str,
    slug: &str,
    fund: bool,
) -> anyhow::Result<String> {
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
pub(super) struct Probe {
    /// Answer-to-charge lag of each probe answered in the measured window (µs).
    pub(super) lags: Vec<u32>,
    pub(super) uncharged: usize,
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
pub(super) struct Side {
    pub(super) metering: bool,
    pub(super) inst: PerSqlProcess,
    pub(super) api: Api,
    pub(super) load_url: String,
    pub(super) load_token: String,
    pub(super) probe_url: String,
    pub(super) probe_token: String,
    /// What one probe query is charged (nano-units; 0 with metering off).
    pub(super) probe_cost: i64,
}

impl Side {
    pub(super) async fn start(dir: PathBuf, metering: bool) -> anyhow::Result<Self> {
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
    pub(super) async fn calibrate(&self) -> anyhow::Result<i64> {
        let before = self.settled_probe_balance().await?;
        probe_query(&reqwest::Client::new(), &self.probe_url, &self.probe_token).await?;
        let after = self.settled_probe_balance().await?;
        if after >= before {
            bail!("the probe query was not charged (balance {before} then {after} nano-units)");
        }
        Ok(before - after)
    }

    /// The probe namespace's balance once it read the same for 500 ms (within 30 s).
    pub(super) async fn settled_probe_balance(&self) -> anyhow::Result<i64> {
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
    pub(super) async fn window(
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

    pub(super) async fn stop(self) {
        self.inst.stop().await;
    }
}

/// The `probe` namespace's balance, in nano-units.
pub(super) async fn probe_balance(api: &Api, token: &str) -> anyhow::Result<i64> {
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
pub(super) async fn poll_balance(
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
pub(super) struct ProbeQueries {
    /// Probe queries sent in the whole run (warm-up included), numbered from 0.
    pub(super) sent: usize,
    /// (number, answer instant) of those sent in the measured window.
    pub(super) answered: Vec<(usize, Instant)>,
}

/// Sequential probe queries for the load's whole run.
pub(super) async fn probe_queries(
    url: String,
    token: String,
    spec: LoadSpec,
) -> anyhow::Result<ProbeQueries> {
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
pub(super) async fn probe_query(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<()> {
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
