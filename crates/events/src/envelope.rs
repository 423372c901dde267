//! The CloudEvents 1.0 JSON envelope every PerSQL event travels in.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use time::OffsetDateTime;
use uuid::Uuid;

/// A typed event payload: knows its CloudEvents `type` suffix (e.g. `database.provisioned`).
pub trait EventPayload: Serialize + DeserializeOwned {
    /// The type suffix, appended to `persql.` for the envelope's `type` and to the NATS subject.
    const TYPE: &'static str;
}

/// CloudEvents 1.0 envelope. `namespace` is a PerSQL extension attribute: the slug of the
/// namespace the event belongs to (the one billed, for usage events).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    pub data: serde_json::Value,
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
            // Serializing our own derive(Serialize) structs into a Value cannot fail.
            data: serde_json::to_value(payload).unwrap_or(serde_json::Value::Null),
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
        // Deserializes from the borrowed tree: no copy of the payload.
        self.is::<P>().then(|| P::deserialize(&self.data))
    }

    /// The NATS subject: `<prefix>.events.<namespace>.<type-suffix>`.
    pub fn nats_subject(&self, prefix: &str) -> String {
        format!("{prefix}.events.{}.{}", self.namespace, self.type_suffix())
    }
}
