//! Every event payload keeps its wire shape (insta snapshots) and type name.

use super::*;
use crate::envelope::Envelope;

fn snapshot<P: EventPayload>(payload: P) -> serde_json::Value {
    let e = Envelope::new("/persql/test", "acme", "databases/0190", &payload);
    assert!(e.is::<P>());
    let back: P = e.decode::<P>().expect("same type").expect("decodes");
    assert_eq!(serde_json::to_string(&back).expect("json"), e.data.get());
    // Through a JSON string, as the wire carries it (a raw payload stays JSON).
    serde_json::from_str(&serde_json::to_string(&e).expect("json")).expect("json")
}

#[test]
fn event_payloads_keep_their_wire_shape() {
    let ns = "01937c0000000000000000000000000a".to_owned();
    let db = "01937c0000000000000000000000000b".to_owned();
    let all = vec![
        snapshot(NamespaceCreated {
            namespace_id: ns.clone(),
            slug: "acme".into(),
        }),
        snapshot(ProvisionRequested {
            database_id: db.clone(),
            namespace_id: ns.clone(),
            slug: "u_0123456789abcdef01234567".into(),
            template_id: Some("01937c0000000000000000000000000c".into()),
            subject_hash: Some("ab".repeat(32)),
            billed_namespace_id: ns.clone(),
        }),
        snapshot(Provisioned {
            database_id: db.clone(),
            namespace_id: ns.clone(),
            slug: "u_0123456789abcdef01234567".into(),
            template_id: None,
            billed_namespace_id: ns.clone(),
            duration_us: 850,
        }),
        snapshot(ProvisionFailed {
            database_id: db.clone(),
            namespace_id: ns.clone(),
            reason: "template gone".into(),
        }),
        snapshot(DatabaseDeleted {
            database_id: db.clone(),
            namespace_id: ns.clone(),
            slug: "notes".into(),
        }),
        snapshot(TokenCreated {
            token_id: "t1".into(),
            kind: "database".into(),
            namespace_id: ns.clone(),
            database_id: Some(db.clone()),
            role: Some("write".into()),
            expires_at: Some(1_800_000_000_000),
        }),
        snapshot(TokensRevoked {
            token_ids: vec!["t1".into(), "t2".into()],
            reason: "database deleted".into(),
        }),
        snapshot(QueryExecuted {
            database_id: db,
            namespace_id: ns.clone(),
            billed_namespace_id: ns,
            token_id: "t1".into(),
            role: "write".into(),
            statements: 1,
            rows_read: 3,
            rows_written: 1,
            bytes: 120,
            duration_us: 42,
            error: None,
        }),
        snapshot(StorageSampled {
            database_id: "01937c0000000000000000000000000b".into(),
            namespace_id: "01937c0000000000000000000000000a".into(),
            billed_namespace_id: "01937c0000000000000000000000000a".into(),
            bytes: 32768,
            interval_secs: 3600,
        }),
        snapshot(BalanceToppedUp {
            namespace_id: "01937c0000000000000000000000000a".into(),
            amount: "10.00".into(),
            reference: "invoice-1".into(),
        }),
        snapshot(BalanceCharged {
            namespace_id: "01937c0000000000000000000000000a".into(),
            amount: "0.000012".into(),
            charges: 12,
            balance: "9.999988".into(),
            through_ms: 1_800_000_000_000,
        }),
        snapshot(BalanceCredited {
            namespace_id: "01937c0000000000000000000000000a".into(),
            amount: "10.00".into(),
            balance: "10.00".into(),
            topup_event_id: "0193a000-0000-7000-8000-000000000000".into(),
        }),
        snapshot(BalanceDepleted {
            namespace_id: "01937c0000000000000000000000000a".into(),
            balance: "-0.000001".into(),
        }),
        snapshot(BalanceRestored {
            namespace_id: "01937c0000000000000000000000000a".into(),
            balance: "5".into(),
        }),
        snapshot(TemplateMigrationAdded {
            template_id: "01937c0000000000000000000000000c".into(),
            namespace_id: "01937c0000000000000000000000000a".into(),
            version: 2,
            name: "add_done".into(),
            checksum: "ab".repeat(32),
        }),
        snapshot(TemplateMigrationRetried {
            template_id: "01937c0000000000000000000000000c".into(),
            namespace_id: "01937c0000000000000000000000000a".into(),
            version: 2,
            databases: 3,
        }),
        snapshot(MigrationApplied {
            database_id: "01937c0000000000000000000000000b".into(),
            namespace_id: "01937c0000000000000000000000000a".into(),
            template_id: "01937c0000000000000000000000000c".into(),
            version: 2,
            from_version: 1,
        }),
        snapshot(MigrationFailed {
            database_id: "01937c0000000000000000000000000b".into(),
            namespace_id: "01937c0000000000000000000000000a".into(),
            template_id: "01937c0000000000000000000000000c".into(),
            version: 2,
            current_version: 1,
            error: "UNIQUE constraint failed: entries.slug".into(),
            attempts: 1,
        }),
    ];
    insta::assert_json_snapshot!(all, {
        "[].id" => "[uuid-v7]",
        "[].time" => "[time]",
    });
}

#[test]
fn grant_payloads_keep_their_wire_shape() {
    let all = vec![
        snapshot(GrantCreated {
            grant_id: "01937c0000000000000000000000000e".into(),
            namespace_id: "01937c0000000000000000000000000a".into(),
            client_id: "psqlrp_0123456789abcdef".into(),
            app_namespace_id: "01937c0000000000000000000000000d".into(),
            database_id: "01937c0000000000000000000000000b".into(),
        }),
        snapshot(GrantRevoked {
            grant_id: "01937c0000000000000000000000000e".into(),
            namespace_id: "01937c0000000000000000000000000a".into(),
            client_id: "psqlrp_0123456789abcdef".into(),
            app_namespace_id: "01937c0000000000000000000000000d".into(),
            database_id: "01937c0000000000000000000000000b".into(),
            token_ids: vec!["t1".into()],
        }),
    ];
    insta::assert_json_snapshot!(all, {
        "[].id" => "[uuid-v7]",
        "[].time" => "[time]",
    });
}

#[test]
fn subjects_follow_the_namespace_and_type() {
    let e = Envelope::new(
        "/s",
        "acme",
        "x",
        &NamespaceCreated {
            namespace_id: "1".into(),
            slug: "acme".into(),
        },
    );
    assert_eq!(
        e.nats_subject("persql"),
        "persql.events.acme.namespace.created"
    );
    assert_eq!(e.ty, "persql.namespace.created");
    assert_eq!(e.specversion, "1.0");
    assert_eq!(
        uuid::Uuid::parse_str(&e.id)
            .expect("uuid")
            .get_version_num(),
        7
    );
}
