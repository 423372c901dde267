//! Test harness: `TestApp` (the real server in-process), its HTTP and set-up helpers,
//! `persql` child processes, a private NATS server and control-plane checks.

mod app;
mod backends;
mod control_plane;
mod fixtures;
mod http;
mod nats;
mod process;

pub use app::TestApp;
pub use backends::Backends;
pub use control_plane::{assert_one_provisioned_event_per_ready_database, database_states};
pub use http::assert_problem;
pub use nats::NatsServer;
pub use process::{ChildGuard, PERSQL_BIN, free_port, persql_args, spawn_persql};

/// The operator token every test server is started with.
pub const ADMIN: &str = "psql_admin_0123456789abcdef0123456789abcdef";
