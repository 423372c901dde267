//! The consumer-throughput runs: a log pre-filled with synthetic query events, charged by
//! the metering consumer through the embedded log, NATS JetStream or direct batches.

use super::*;

/// The synthetic `query.executed` events `from..to`: `NAMESPACES` namespaces with 2
/// databases and 3 tokens each, one statement, a few rows read, sometimes one written,
/// and every tenth call billed to another namespace's caller (as real traffic is).
pub(super) fn synthetic_events(from: usize, to: usize) -> Vec<Envelope> {
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
pub(super) async fn consumer_run(
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
pub(super) enum Mode<'a> {
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
pub(super) async fn drive_batched(
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
pub(super) async fn wait_until<F, Fut>(what: &str, mut done: F) -> anyhow::Result<()>
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
