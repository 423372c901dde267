//! The event spine: CloudEvents envelope, typed payloads, the control-plane store with its
//! outbox, and the `Bus` (embedded log or NATS JetStream) with durable consumers.

pub mod batcher;
pub mod bus;
pub mod envelope;
mod handoff;
pub mod outbox;
pub mod sql;
pub mod store;
pub mod types;

pub use batcher::QueryEventBatcher;
pub use bus::{Bus, BusConfig, Handler, HandlerError};
pub use envelope::{Envelope, EventPayload};
pub use store::{Backend, ControlPlane, StoreError, Tx, now_ms};
pub use types::*;
