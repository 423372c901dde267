//! NATS JetStream bus: one stream captures `<prefix>.events.>`; a relay publishes outbox
//! rows with `Nats-Msg-Id` = event id (JetStream drops duplicates inside its window), and
//! durable pull consumers ack only after their effect committed.

use std::{sync::Arc, time::Duration};

use async_nats::jetstream::{
    self, AckKind,
    consumer::{AckPolicy, DeliverPolicy, pull},
    message::PublishMessage,
    stream,
};
use futures::{StreamExt, future::try_join_all};
use sqlx::Row;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Handler, backoff, embedded::sleep_or_shutdown};
use crate::{
    envelope::Envelope,
    store::{ControlPlane, StoreError, now_ms},
};

const RELAY_BATCH: i64 = 1000;
const FETCH_BATCH: usize = 2000;
/// How long a consumer waits for more messages before applying a partial chunk.
const LINGER: Duration = Duration::from_millis(10);

#[derive(Clone)]
pub(super) struct NatsBus {
    js: jetstream::Context,
    prefix: String,
    stream: String,
}

fn nats_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Nats(e.to_string())
}

impl NatsBus {
    pub(super) async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(nats_err)?;
        let js = jetstream::new(client);
        let stream = format!("{}_EVENTS", prefix.to_uppercase().replace(['.', '-'], "_"));
        js.get_or_create_stream(stream::Config {
            name: stream.clone(),
            subjects: vec![format!("{prefix}.events.>")],
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .map_err(nats_err)?;
        Ok(Self {
            js,
            prefix: prefix.to_owned(),
            stream,
        })
    }

    /// Publishes unpublished outbox rows, oldest first, then marks them published.
    pub(super) async fn relay(&self, cp: ControlPlane, shutdown: CancellationToken) {
        let mut appended = cp.appended();
        let mut attempt = 0;
        while !shutdown.is_cancelled() {
            match self.relay_once(&cp).await {
                Ok(0) => {
                    attempt = 0;
                    tokio::select! {
                        _ = appended.changed() => {}
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
                Ok(_) => attempt = 0,
                Err(e) => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "outbox relay failed; retrying");
                    if sleep_or_shutdown(backoff(attempt), &shutdown).await {
                        return;
                    }
                }
            }
        }
    }

    async fn relay_once(&self, cp: &ControlPlane) -> Result<usize, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, body FROM events WHERE published_at IS NULL ORDER BY seq LIMIT $1",
        )
        .bind(RELAY_BATCH)
        .fetch_all(cp.pool())
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut seqs = Vec::with_capacity(rows.len());
        let mut acks = Vec::with_capacity(rows.len());
        for r in &rows {
            let seq: i64 = r.try_get(0)?;
            let body: String = r.try_get(1)?;
            seqs.push(seq);
            let Ok(e) = serde_json::from_str::<Envelope>(&body) else {
                tracing::error!(
                    seq,
                    "undecodable event in the outbox; marked published without sending"
                );
                continue;
            };
            // Pipelined: send everything, then await the acks together.
            let ack = self
                .js
                .send_publish(
                    e.nats_subject(&self.prefix),
                    PublishMessage::build()
                        .payload(body.into())
                        .message_id(&e.id),
                )
                .await
                .map_err(nats_err)?;
            acks.push(ack);
        }
        try_join_all(acks.into_iter().map(|a| a.into_future()))
            .await
            .map_err(nats_err)?;
        let published = now_ms();
        for chunk in crate::sql::shaped_chunks(&seqs) {
            let sql = format!(
                "UPDATE events SET published_at = {} WHERE seq IN ({})",
                cp.backend().param(1),
                cp.backend().list(2, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(published);
            for s in chunk {
                query = query.bind(*s);
            }
            query.execute(cp.pool()).await?;
        }
        Ok(seqs.len())
    }

    fn filter(&self, handler: &dyn Handler) -> String {
        match handler.types() {
            [one] => format!("{}.events.*.{one}", self.prefix),
            _ => format!("{}.events.>", self.prefix),
        }
    }

    pub(super) async fn consume(
        &self,
        cp: ControlPlane,
        handler: Arc<dyn Handler>,
        shutdown: CancellationToken,
    ) {
        let mut attempt = 0;
        while !shutdown.is_cancelled() {
            match self
                .consume_until_error(&cp, handler.as_ref(), &shutdown)
                .await
            {
                Ok(()) => return,
                Err(e) => {
                    attempt += 1;
                    tracing::warn!(consumer = handler.name(), error = %e, attempt, "consumer failed; resuming");
                    if sleep_or_shutdown(backoff(attempt), &shutdown).await {
                        return;
                    }
                }
            }
        }
    }

    async fn consume_until_error(
        &self,
        cp: &ControlPlane,
        handler: &dyn Handler,
        shutdown: &CancellationToken,
    ) -> Result<(), StoreError> {
        let stream = self.js.get_stream(&self.stream).await.map_err(nats_err)?;
        let consumer = stream
            .get_or_create_consumer(
                handler.name(),
                pull::Config {
                    durable_name: Some(handler.name().to_owned()),
                    filter_subject: self.filter(handler),
                    ack_policy: AckPolicy::Explicit,
                    // Short, so messages a crashed consumer had fetched come back quickly;
                    // a redelivery while a batch is still being applied is deduplicated.
                    ack_wait: Duration::from_secs(5),
                    max_ack_pending: 20_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(nats_err)?;
        // A continuous pull: messages are handled as they arrive, in chunks of whatever is
        // ready plus what comes within LINGER (up to FETCH_BATCH), so a lone provision
        // request waits at most LINGER and a busy stream gets large transactions.
        let mut chunks = consumer
            .stream()
            .max_messages_per_batch(FETCH_BATCH)
            .messages()
            .await
            .map_err(nats_err)?
            .ready_chunks(FETCH_BATCH);
        loop {
            let chunk = tokio::select! {
                c = chunks.next() => c,
                _ = shutdown.cancelled() => return Ok(()),
            };
            let Some(chunk) = chunk else {
                return Err(StoreError::Nats("message stream ended".into()));
            };
            let mut chunk = chunk;
            // Under load, gather a little more so one transaction covers many events; a lone
            // event waits at most LINGER.
            let deadline = tokio::time::Instant::now() + LINGER;
            while chunk.len() < FETCH_BATCH {
                match tokio::time::timeout_at(deadline, chunks.next()).await {
                    Ok(Some(more)) => chunk.extend(more),
                    Ok(None) | Err(_) => break,
                }
            }
            let messages = chunk
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
                .map_err(nats_err)?;
            let mut wanted = Vec::new();
            for m in &messages {
                match serde_json::from_slice::<Envelope>(&m.payload) {
                    Ok(e) if handler.types().contains(&e.type_suffix()) => wanted.push(e),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(subject = %m.subject, error = %e, "undecodable event; acked and skipped")
                    }
                }
            }
            let applied = self.apply(cp, handler, &wanted).await;
            if let Err(e) = applied {
                // Leave the messages unacked: they are redelivered after a Nak.
                for m in &messages {
                    let _ = m
                        .ack_with(AckKind::Nak(Some(Duration::from_millis(500))))
                        .await;
                }
                return Err(StoreError::Nats(format!("handler: {e}")));
            }
            handler.committed(&wanted).await;
            futures::future::try_join_all(messages.iter().map(|m| m.ack()))
                .await
                .map_err(nats_err)?;
        }
    }

    /// Applies `events` in one transaction; each event's id is recorded in the same
    /// transaction, so a redelivered (or re-published) event is recognised and skipped.
    async fn apply(
        &self,
        cp: &ControlPlane,
        handler: &dyn Handler,
        events: &[Envelope],
    ) -> Result<(), String> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = cp.begin().await.map_err(|e| e.to_string())?;
        let mut fresh_ids = std::collections::HashSet::new();
        for chunk in crate::sql::shaped_chunks(events) {
            let sql = format!(
                "INSERT INTO processed_events (consumer, event_id) VALUES {} ON CONFLICT DO NOTHING RETURNING event_id",
                cp.backend().rows(1, chunk.len(), 2)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for e in chunk {
                query = query.bind(handler.name()).bind(&e.id);
            }
            for row in query.fetch_all(&mut *tx).await.map_err(|e| e.to_string())? {
                fresh_ids.insert(row.try_get::<String, _>(0).map_err(|e| e.to_string())?);
            }
        }
        // Keep log order; skip what an earlier delivery already applied.
        let fresh: Vec<Envelope> = events
            .iter()
            .filter(|e| fresh_ids.contains(&e.id))
            .cloned()
            .collect();
        if !fresh.is_empty() {
            handler
                .handle_batch(&mut tx, &fresh)
                .await
                .map_err(|e| e.to_string())?;
        }
        cp.commit(tx).await.map_err(|e| e.to_string())
    }

    pub(super) async fn tail(
        &self,
        out: mpsc::Sender<Envelope>,
        shutdown: CancellationToken,
        wanted: super::TypeFilter,
    ) -> Result<(), StoreError> {
        let subject_head = format!("{}.events.", self.prefix);
        let stream = self.js.get_stream(&self.stream).await.map_err(nats_err)?;
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: format!("{}.events.>", self.prefix),
                deliver_policy: DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(nats_err)?;
        let mut messages = consumer.messages().await.map_err(nats_err)?;
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    m = messages.next() => m,
                    _ = shutdown.cancelled() => return,
                };
                match next {
                    Some(Ok(m)) => {
                        // `<prefix>.events.<namespace>.<type…>`: filter before decoding.
                        let ty = m
                            .subject
                            .as_str()
                            .strip_prefix(subject_head.as_str())
                            .and_then(|rest| rest.split_once('.'))
                            .map(|(_, ty)| ty);
                        if !ty.is_some_and(wanted) {
                            continue;
                        }
                        if let Ok(e) = serde_json::from_slice::<Envelope>(&m.payload)
                            && out.send(e).await.is_err()
                        {
                            return;
                        }
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "tail of the event stream failed"),
                    None => return,
                }
            }
        });
        Ok(())
    }
}
