//! The `persql` binary as separate processes: `serve` on embedded defaults, and `api` with
//! `provisioner` sharing one data dir and control plane.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::json;
use tempfile::TempDir;

use crate::support::{
    Backends, ChildGuard, PERSQL_BIN, TestApp, assert_one_provisioned_event_per_ready_database,
    assert_problem, free_port, spawn_persql,
};

/// The `psql_admin_…` tokens a process printed on stdout.
fn printed_tokens(stdout: &str) -> Vec<String> {
    stdout
        .split_whitespace()
        .filter(|w| w.starts_with("psql_admin_"))
        .map(str::to_owned)
        .collect()
}

/// `persql serve` with no operator token, no database URL and no NATS URL.
async fn serve_embedded(dir: &Path, logs: &Path) -> (ChildGuard, u16) {
    let port = free_port();
    let child = spawn_persql(
        "serve",
        "serve",
        Some(port),
        dir,
        &Backends::embedded(),
        logs,
        |cmd| {
            cmd.env_remove("PERSQL_ADMIN_TOKEN")
                .env_remove("PERSQL_NATS_PREFIX");
        },
    )
    .await;
    (child, port)
}

#[tokio::test]
async fn serve_starts_with_embedded_defaults_and_prints_a_generated_operator_token_once() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("data");
    let (mut first, port) = serve_embedded(&dir, tmp.path()).await;
    let tokens = printed_tokens(&first.stdout_text());
    assert_eq!(tokens.len(), 1, "stdout: {}", first.stdout_text());
    let operator = tokens[0].clone();
    assert!(operator.len() > "psql_admin_".len() + 32, "{operator}");
    assert!(dir.join("control.db").exists(), "SQLite control plane");

    let app = TestApp::remote(port, &dir, &Backends::embedded());
    let (s, b) = app
        .post("/v1/admin/namespaces", &operator, json!({ "slug": "acme" }))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert!(b["token"].as_str().unwrap().starts_with("psql_ws_"), "{b}");
    let (s, b) = app
        .post(
            "/v1/admin/namespaces",
            "psql_admin_0123456789abcdef0123456789abcdef",
            json!({ "slug": "guess" }),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a made-up token is refused: {b}"
    );

    let status = first.terminate().await;
    assert!(status.success(), "SIGTERM exits 0, got {status}");

    let (mut second, port) = serve_embedded(&dir, tmp.path()).await;
    assert_eq!(
        printed_tokens(&second.stdout_text()),
        Vec::<String>::new(),
        "the token is printed on first start only"
    );
    let app = TestApp::remote(port, &dir, &Backends::embedded());
    let (s, b) = app
        .post(
            "/v1/admin/namespaces",
            &operator,
            json!({ "slug": "second" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "the first token still works: {b}");
    let status = second.terminate().await;
    assert!(status.success(), "SIGTERM exits 0, got {status}");
}

#[tokio::test]
async fn separate_api_and_provisioner_processes_provision_together() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("data");
    let logs = tmp.path();
    let backends = Backends::fresh().await;
    let mut provisioner = spawn_persql(
        "provisioner",
        "provisioner",
        None,
        &dir,
        &backends,
        logs,
        |_| {},
    )
    .await;
    // Metering runs as its own process too: top-ups wait for it, and it funds the API.
    let _metering = spawn_persql("metering", "metering", None, &dir, &backends, logs, |_| {}).await;
    let port = free_port();
    let _api = spawn_persql("api", "api", Some(port), &dir, &backends, logs, |_| {}).await;
    let app = TestApp::remote(port, &dir, &backends);

    let ws = app.with_template("acme").await;
    let (token, db) = app.provision(&ws, "alice").await;
    app.sql(
        &token,
        &db,
        "INSERT INTO entries (body) VALUES ($1)",
        json!(["from alice"]),
    )
    .await;
    let r = app
        .sql(&token, &db, "SELECT body FROM entries", json!([]))
        .await;
    assert_eq!(r["data"], json!([{ "body": "from alice" }]), "{r}");

    // Without a provisioner, nothing makes new databases ready: an impatient API times out.
    let status = provisioner.terminate().await;
    assert!(
        status.success(),
        "provisioner exits 0 on SIGTERM, got {status}"
    );
    let impatient_port = free_port();
    let mut impatient = spawn_persql(
        "api-impatient",
        "api",
        Some(impatient_port),
        &dir,
        &backends,
        logs,
        |cmd| {
            cmd.env("PERSQL_PROVISION_TIMEOUT_MS", "1500");
        },
    )
    .await;
    let impatient_app = TestApp::remote(impatient_port, &dir, &backends);
    let (s, b) = impatient_app
        .post(
            "/v1/users/provision",
            &ws,
            json!({ "subject": "bob", "template": "app-template" }),
        )
        .await;
    assert_problem(s, &b, StatusCode::SERVICE_UNAVAILABLE, "provision_timeout");
    let queued = app.list_databases(&ws).await;
    let pending: Vec<_> = queued.iter().filter(|(_, st)| *st == "pending").collect();
    assert_eq!(pending.len(), 1, "bob's database waits: {queued:?}");

    // A provisioner started later picks the queued request up.
    let _provisioner = spawn_persql(
        "provisioner",
        "provisioner",
        None,
        &dir,
        &backends,
        logs,
        |_| {},
    )
    .await;
    let (token, db) = app.provision(&ws, "bob").await;
    assert_eq!(&db, &format!("acme/{}", pending[0].0), "the same database");
    app.sql(
        &token,
        &db,
        "INSERT INTO entries (body) VALUES ('from bob')",
        json!([]),
    )
    .await;
    let r = app
        .sql(&token, &db, "SELECT count(*) AS n FROM entries", json!([]))
        .await;
    assert_eq!(r["data"][0]["n"], 1, "{r}");
    let mut conn = backends.control_plane(&dir).await;
    assert_one_provisioned_event_per_ready_database(&mut conn).await;
    assert!(impatient.terminate().await.success());
}

/// Prices come from the documented `PERSQL_PRICE_*` variables of the serving process.
#[tokio::test]
async fn prices_are_read_from_the_environment() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("data");
    let port = free_port();
    let mut child = spawn_persql(
        "serve",
        "serve",
        Some(port),
        &dir,
        &Backends::embedded(),
        tmp.path(),
        |cmd| {
            cmd.env("PERSQL_PRICE_QUERY", "0.25")
                .env("PERSQL_PRICE_ROW_READ", "0")
                .env("PERSQL_PRICE_ROW_WRITTEN", "0")
                .env("PERSQL_PRICE_STORAGE_GB_MONTH", "0")
                .env("PERSQL_PRICE_DATABASE", "2");
        },
    )
    .await;
    let app = TestApp::remote(port, &dir, &Backends::embedded());
    let ws = app.unfunded_namespace("acme").await;
    app.topup("acme", "10", "t1").await;
    let (s, b) = app
        .post("/v1/databases", &ws, json!({ "slug": "notes" }))
        .await;
    assert!(s.is_success(), "{s} {b}");
    for _ in 0..2 {
        app.sql(&ws, "acme/notes", "SELECT 1", json!([])).await;
    }
    // 10 − 2 (the database) − 2 × 0.25 (the queries), once metering has charged them.
    app.wait_balance("acme", &ws, "7.50").await;
    let status = child.terminate().await;
    assert!(status.success(), "SIGTERM exits 0, got {status}");
}

/// The benchmark is its own binary (`persql-bench`): the product's command line neither
/// lists nor accepts a `bench` subcommand.
#[tokio::test]
async fn persql_has_no_bench_subcommand() {
    let help = tokio::process::Command::new(PERSQL_BIN)
        .arg("--help")
        .output()
        .await
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(commands.contains(&"serve"), "{help}");
    assert!(!commands.contains(&"bench"), "{help}");
    let bench = tokio::process::Command::new(PERSQL_BIN)
        .arg("bench")
        .output()
        .await
        .unwrap();
    assert!(!bench.status.success());
    let stderr = String::from_utf8_lossy(&bench.stderr);
    assert!(
        stderr.contains("unrecognized subcommand 'bench'"),
        "{stderr}"
    );
}
