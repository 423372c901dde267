//! The CloudEvents 1.0 JSON envelope every PerSQL event travels in.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use uuid::Uuid;

/// A typed event payload: knows its CloudEvents `type` suffix (e.g. `database.provisioned`).
pub trait EventPayload: Serialize + DeserializeOwned {
    /// The type suffix, appended to `persql.` for the envelope's `type` and to the NATS subject.
    const TYPE: &'static str;
}

/// CloudEvents 1.0 envelope. `namespace` is a PerSQL extension attribute: the slug of the
/// namespace the event belongs to (the one billed, for usage events).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Envelope {
    pub specversion: String,
    /// UUIDv7: unique, and sortable by creation time.
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub subject: String,
    pub namespace: String,
    pub datacontenttype: String,
    /// The payload's JSON text, kept unparsed: consumers decode only the events they act
    /// on, straight into the payload type (`decode`), with no intermediate JSON tree.
    pub data: Box<RawValue>,
}

impl Envelope {
    /// Wraps `payload` in a fresh envelope.
    pub fn new<P: EventPayload>(source: &str, namespace: &str, subject: &str, payload: &P) -> Self {
        Self {
            specversion: "1.0".into(),
            id: Uuid::now_v7().to_string(),
            source: source.into(),
            ty: format!("persql.{}", P::TYPE),
            time: OffsetDateTime::now_utc(),
            subject: subject.into(),
            namespace: namespace.into(),
            datacontenttype: "application/json".into(),
            data: raw(payload),
        }
    }

    /// Replaces the id with a deterministic one, for events that several processes may
    /// emit for the same fact (the log keeps one).
    pub fn with_id(mut self, id: String) -> Self {
        self.id = id;
        self
    }

    /// The event's creation time in unix milliseconds.
    pub fn time_ms(&self) -> i64 {
        (self.time.unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// The type without the `persql.` prefix.
    pub fn type_suffix(&self) -> &str {
        self.ty.strip_prefix("persql.").unwrap_or(&self.ty)
    }

    /// True when this envelope carries payload `P`.
    pub fn is<P: EventPayload>(&self) -> bool {
        self.type_suffix() == P::TYPE
    }

    /// Decodes the payload as `P`, or `None` when the type differs.
    pub fn decode<P: EventPayload>(&self) -> Option<Result<P, serde_json::Error>> {
        self.is::<P>()
            .then(|| serde_json::from_str(self.data.get()))
    }

    /// The NATS subject: `<prefix>.events.<namespace>.<type-suffix>`.
    pub fn nats_subject(&self, prefix: &str) -> String {
        format!("{prefix}.events.{}.{}", self.namespace, self.type_suffix())
    }
}

/// `payload` as raw JSON.
fn raw<P: Serialize>(payload: &P) -> Box<RawValue> {
    match serde_json::value::to_raw_value(payload) {
        Ok(raw) => raw,
        // Unreachable for our derive(Serialize) payloads; `null` keeps the envelope valid.
        Err(_) => RawValue::NULL.to_owned(),
    }
}
