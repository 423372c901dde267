//! The database registry and the provisioner: the consumer that creates tenant databases
//! from their templates when `database.provision_requested` events arrive, and rolls
//! template migrations out to them.

pub mod consumer;
pub mod registry;
pub mod sampler;
pub mod template_migrations;
pub mod waiter;

pub use consumer::ProvisionHandler;
pub use registry::{DatabaseRecord, DatabaseState, Registry, RegistryError, subject_slug};
pub use waiter::ReadyWaiter;
