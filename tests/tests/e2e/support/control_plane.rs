//! Checks read straight from a control-plane database (the event log and the database
//! registry), for what the HTTP API does not expose.

use std::collections::BTreeMap;

use serde_json::Value;

/// Per database id, how many `database.provisioned` events the log holds.
async fn provisioned_events(conn: &mut sqlx::AnyConnection) -> BTreeMap<String, usize> {
    use sqlx::Row;
    let rows = sqlx::query("SELECT body FROM events WHERE type = 'database.provisioned'")
        .fetch_all(&mut *conn)
        .await
        .expect("read events");
    let mut counts = BTreeMap::new();
    for r in rows {
        let body: String = r.get(0);
        let event: Value = serde_json::from_str(&body).expect("event body is JSON");
        let id = event["data"]["databaseId"]
            .as_str()
            .unwrap_or_else(|| panic!("no data.databaseId in {body}"))
            .to_owned();
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

/// Database id → state, from the control plane's registry.
pub async fn database_states(conn: &mut sqlx::AnyConnection) -> BTreeMap<String, String> {
    use sqlx::Row;
    sqlx::query("SELECT id, state FROM databases")
        .fetch_all(&mut *conn)
        .await
        .expect("read databases")
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
        .collect()
}

/// Asserts the log holds exactly one `database.provisioned` event per ready database and
/// none for any other.
pub async fn assert_one_provisioned_event_per_ready_database(conn: &mut sqlx::AnyConnection) {
    let events = provisioned_events(conn).await;
    let states = database_states(conn).await;
    for (id, n) in &events {
        assert_eq!(*n, 1, "database {id} provisioned {n} times");
        assert_eq!(
            states.get(id).map(String::as_str),
            Some("ready"),
            "database {id} has a provisioned event but is not ready"
        );
    }
    for (id, state) in &states {
        if state == "ready" {
            assert!(
                events.contains_key(id),
                "ready database {id} has no provisioned event"
            );
        }
    }
}
