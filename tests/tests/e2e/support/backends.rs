//! `Backends`: where a test's control plane and bus live (embedded defaults, or Postgres
//! and NATS when `PERSQL_TEST_DATABASE_URL` / `PERSQL_TEST_NATS_URL` are set).

use std::path::Path;

/// Where the control plane and bus of a test live; kept across restarts.
#[derive(Clone, Debug)]
pub struct Backends {
    pub database_url: Option<String>,
    pub nats_url: Option<String>,
    pub nats_prefix: String,
}

impl Backends {
    /// Fresh, isolated backends as the environment selects.
    pub async fn fresh() -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let database_url = match std::env::var("PERSQL_TEST_DATABASE_URL") {
            Ok(admin_url) => Some(create_pg_database(&admin_url, &format!("persql_t_{tag}")).await),
            Err(_) => None,
        };
        Self {
            database_url,
            nats_url: std::env::var("PERSQL_TEST_NATS_URL").ok(),
            nats_prefix: format!("t{tag}"),
        }
    }
}

async fn create_pg_database(admin_url: &str, name: &str) -> String {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("PERSQL_TEST_DATABASE_URL is set but Postgres is unreachable");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(admin_url);
    format!("{base}/{name}")
}

impl Backends {
    /// The embedded defaults: SQLite control plane in the data dir, the event log as the bus.
    pub fn embedded() -> Self {
        Self {
            database_url: None,
            nats_url: None,
            nats_prefix: "persql".into(),
        }
    }

    /// The control-plane database of a data dir using these backends.
    pub async fn control_plane(&self, dir: &Path) -> sqlx::AnyConnection {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let url = self
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", dir.join("control.db").display()));
        sqlx::AnyConnection::connect(&url)
            .await
            .expect("connect to the control plane")
    }
}
