//! The flag store: documents, change outcomes, the audit log and its hash chain, on both
//! backends (tampering needs a second connection that drops the triggers).

use serde_json::{Value, json};
use switchyard_core::Timestamp;
use switchyard_core::ports::{
    Author, FlagAuditQuery, FlagChange, FlagEdit, FlagObjectKind, FlagStore, GENESIS_HASH,
};
use switchyard_store::flag_audit::{entry_hash, verify_chain};

use super::{Arc, Backend, Fixture};

fn flag(key: &str, enabled: bool) -> Value {
    json!({"key": key, "type": "boolean", "enabled": enabled,
           "variants": {"on": true, "off": false}, "defaultVariant": "off"})
}

fn edit(kind: FlagObjectKind, key: &str, after: Option<Value>) -> FlagEdit {
    FlagEdit {
        kind,
        key: key.into(),
        after,
    }
}

fn change(reason: &str, at: u64, edits: Vec<FlagEdit>) -> FlagChange {
    FlagChange {
        by: Author::system("user:ana"),
        reason: reason.into(),
        at: Timestamp::from_millis(at),
        edits,
    }
}

/// Three entries: create two flags and a segment, reconfigure one, delete the other.
pub(super) async fn history(store: &Arc<dyn FlagStore>) {
    let created = store
        .change_flags(&change(
            "launch",
            1_000,
            vec![
                edit(
                    FlagObjectKind::Flag,
                    "checkout",
                    Some(flag("checkout", true)),
                ),
                edit(FlagObjectKind::Flag, "search", Some(flag("search", true))),
                edit(
                    FlagObjectKind::Segment,
                    "europe",
                    Some(json!({"attribute": {"name": "country", "op": "in", "values": ["fr"]}})),
                ),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(created.revision, 3);
    assert!(created.results.iter().all(|r| r.result == "created"));
    let toggled = store
        .change_flags(&change(
            "incident 42",
            2_000,
            vec![
                edit(
                    FlagObjectKind::Flag,
                    "checkout",
                    Some(flag("checkout", false)),
                ),
                edit(FlagObjectKind::Flag, "search", Some(flag("search", true))),
                edit(FlagObjectKind::Flag, "gone", None),
            ],
        ))
        .await
        .unwrap();
    let results: Vec<&str> = toggled.results.iter().map(|r| r.result.as_str()).collect();
    assert_eq!(results, ["configured", "unchanged", "unchanged"]);
    assert_eq!(toggled.revision, 4, "unchanged documents are not logged");
    let deleted = store
        .change_flags(&change(
            "retired",
            3_000,
            vec![edit(FlagObjectKind::Flag, "search", None)],
        ))
        .await
        .unwrap();
    assert_eq!(deleted.results[0].result, "deleted");
    assert_eq!(deleted.revision, 5);
}

async fn documents_round_trip_in_order_and_survive_a_restart(backend: Backend) {
    let fx = Fixture::open(backend).await;
    let store = fx.flags();
    assert_eq!(store.flag_documents().await.unwrap().revision, 0);
    history(&store).await;
    fx.store.close().await;

    let store = fx.reopen().await.flags();
    let docs = store.flag_documents().await.unwrap();
    assert_eq!(docs.revision, 5);
    let keys: Vec<&str> = docs.flags.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(keys, ["checkout"]);
    assert_eq!(docs.flags[0].document, flag("checkout", false));
    assert_eq!(docs.flags[0].updated_at, Timestamp::from_millis(2_000));
    assert_eq!(docs.segments.len(), 1);
    assert_eq!(docs.segments[0].key, "europe");
}

async fn the_audit_log_records_who_when_why_and_both_documents(backend: Backend) {
    let fx = Fixture::open(backend).await;
    let store = fx.flags();
    history(&store).await;
    let all = store.flag_audit(&FlagAuditQuery::default()).await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].prev_hash, GENESIS_HASH);
    for pair in all.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
        assert_eq!(pair[1].id, pair[0].id + 1);
    }
    let toggle = &all[3];
    assert_eq!(toggle.actor, "user:ana");
    assert_eq!(toggle.reason, "incident 42");
    assert_eq!(toggle.at, Timestamp::from_millis(2_000));
    assert_eq!(toggle.before, Some(flag("checkout", true)));
    assert_eq!(toggle.after, Some(flag("checkout", false)));
    assert_eq!(all[4].after, None);

    let search = FlagAuditQuery {
        key: Some("search".into()),
        ..FlagAuditQuery::default()
    };
    let ids: Vec<i64> = store
        .flag_audit(&search)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, [2, 5]);
    let latest = FlagAuditQuery {
        limit: Some(2),
        ..FlagAuditQuery::default()
    };
    let ids: Vec<i64> = store
        .flag_audit(&latest)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, [4, 5]);

    let verification = store.verify_flag_audit().await.unwrap();
    assert!(verification.ok, "{verification:?}");
    assert_eq!(verification.entries, 5);
    assert_eq!(verification.head.as_deref(), Some(all[4].hash.as_str()));
}

async fn triggers_refuse_updates_and_deletes_of_audit_entries(backend: Backend) {
    let fx = Fixture::open(backend).await;
    let store = fx.flags();
    history(&store).await;
    let update = fx
        .execute("UPDATE flag_audit SET reason = 'nothing' WHERE id = 1")
        .await
        .unwrap_err();
    assert!(update.to_string().contains("append-only"), "{update}");
    let delete = fx
        .execute("DELETE FROM flag_audit WHERE id = 5")
        .await
        .unwrap_err();
    assert!(delete.to_string().contains("append-only"), "{delete}");
    if backend == Backend::Postgres {
        let truncate = fx.execute("TRUNCATE flag_audit").await.unwrap_err();
        assert!(truncate.to_string().contains("append-only"), "{truncate}");
    }
    assert!(store.verify_flag_audit().await.unwrap().ok);
}

async fn tampering_behind_the_triggers_is_detected(backend: Backend) {
    let fx = Fixture::open(backend).await;
    let store = fx.flags();
    history(&store).await;
    fx.drop_trigger("flag_audit_is_never_updated", "flag_audit")
        .await;
    fx.execute_all(&["UPDATE flag_audit SET actor = 'user:nobody' WHERE id = 4"])
        .await;
    let verification = store.verify_flag_audit().await.unwrap();
    assert!(!verification.ok);
    assert_eq!(verification.problems.len(), 1, "{verification:?}");
    assert_eq!(verification.problems[0].id, Some(4));

    // Removing an entry (and re-linking the next one) still shows as a gap.
    fx.drop_trigger("flag_audit_is_never_deleted", "flag_audit")
        .await;
    fx.execute_all(&["DELETE FROM flag_audit WHERE id = 2"])
        .await;
    let verification = store.verify_flag_audit().await.unwrap();
    assert!(
        verification
            .problems
            .iter()
            .any(|p| p.id == Some(3) && p.message.contains("removed")),
        "{verification:?}"
    );
}

async fn a_document_edited_behind_the_log_is_detected(backend: Backend) {
    let fx = Fixture::open(backend).await;
    let store = fx.flags();
    history(&store).await;
    fx.execute(&format!(
        "UPDATE flag_documents SET document_json = '{}' WHERE key = 'checkout'",
        flag("checkout", true)
    ))
    .await
    .unwrap();
    let verification = store.verify_flag_audit().await.unwrap();
    assert!(!verification.ok);
    assert!(verification.problems[0].message.contains("`checkout`"));
}

async fn an_exported_chain_verifies_until_it_is_modified(backend: Backend) {
    let fx = Fixture::open(backend).await;
    let store = fx.flags();
    history(&store).await;
    let exported = store.flag_audit(&FlagAuditQuery::default()).await.unwrap();
    // Through JSON, as `GET /api/v1/flags/audit` hands it out.
    let text = serde_json::to_string(&exported).unwrap();
    let mut chain: Vec<switchyard_core::ports::FlagAuditEntry> =
        serde_json::from_str(&text).unwrap();
    assert!(verify_chain(&chain).is_empty());
    for entry in &chain {
        assert_eq!(entry.hash, entry_hash(entry));
    }
    chain[1].after = Some(flag("search", false));
    let problems = verify_chain(&chain);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].id, Some(2));
}

on_both_backends!(
    documents_round_trip_in_order_and_survive_a_restart,
    the_audit_log_records_who_when_why_and_both_documents,
    triggers_refuse_updates_and_deletes_of_audit_entries,
    tampering_behind_the_triggers_is_detected,
    a_document_edited_behind_the_log_is_detected,
    an_exported_chain_verifies_until_it_is_modified,
);
