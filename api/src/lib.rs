//! PerSQL's HTTP API (axum), auth and tokens, and the `persql` command line that composes
//! every crate into one process or several.

pub mod access;
pub mod accounts;
pub mod admission;
pub mod agents;
pub mod app;
pub mod auth;
pub mod catch_up;
pub mod cli;
pub mod client_ip;
pub mod config;
pub mod cors;
pub mod databases;
pub mod error;
pub mod extract;
pub mod namespaces;
pub mod oauth;
pub mod pages;
pub mod principal;
pub mod queries;
pub mod refreshing;
pub mod routes;
pub mod slug;
pub mod state;
pub mod tail;
pub mod telemetry;
pub mod template_migrate;
pub mod tokens;

pub use app::{Components, Running, start};
pub use config::Config;
pub use routes::{openapi, router};

/// Serves the HTTP API on `listener` until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: state::AppState,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    // Connection info gives sign-in rate limiting the client's address.
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
