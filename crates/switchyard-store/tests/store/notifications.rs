//! The notification outbox: rows queued with the cursor in one transaction (a stale cursor
//! queues nothing), one row per idempotency key, due rows by time, every attempt recorded,
//! counts by notifier and status.

use switchyard_core::ports::{Delivery, NewNotification};

use super::*;

/// A notification of notifier `ops` keyed `key`.
pub fn row(key: &str) -> NewNotification {
    NewNotification {
        notifier: "ops".into(),
        event: 1,
        kind: "rollout.rolled_back".into(),
        key: key.into(),
        sink: "slack".into(),
        url: "https://hooks.example/x".into(),
        content_type: "application/json".into(),
        body: format!("{{\"text\": \"{key}\"}}"),
        secret_env: None,
    }
}

async fn outbox_rows_move_with_the_cursor_and_record_every_attempt(backend: Backend) {
    let fx = fixture::Fixture::open(backend).await;
    let outbox = fx.store.notifications();
    assert_eq!(outbox.notification_cursor().await.unwrap(), None);
    assert!(
        outbox
            .enqueue_notifications(None, 10, &[], at(1_000))
            .await
            .unwrap()
    );
    assert_eq!(outbox.notification_cursor().await.unwrap(), Some(10));
    // A writer that read an older cursor queues nothing.
    assert!(
        !outbox
            .enqueue_notifications(None, 12, &[row("ops-11")], at(1_000))
            .await
            .unwrap()
    );
    assert!(
        outbox
            .enqueue_notifications(Some(10), 12, &[row("ops-11"), row("ops-12")], at(2_000))
            .await
            .unwrap()
    );
    // The same key again (a pass repeated after a crash) is one row.
    assert!(
        outbox
            .enqueue_notifications(Some(12), 13, &[row("ops-12")], at(2_500))
            .await
            .unwrap()
    );
    assert_eq!(outbox.notifications(None, 10).await.unwrap().len(), 2);

    let due = outbox.due_notifications(at(2_000), 10).await.unwrap();
    assert_eq!(
        due.iter()
            .map(|n| n.notification.key.as_str())
            .collect::<Vec<_>>(),
        ["ops-11", "ops-12"]
    );
    outbox
        .record_delivery(due[0].id, &Delivery::Delivered { at: at(2_100) })
        .await
        .unwrap();
    outbox
        .record_delivery(
            due[1].id,
            &Delivery::Retry {
                next: at(5_000),
                error: "503".into(),
            },
        )
        .await
        .unwrap();
    assert!(
        outbox
            .due_notifications(at(4_999), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = outbox.due_notifications(at(5_000), 10).await.unwrap();
    assert_eq!(
        (
            again.len(),
            again[0].attempts,
            again[0].last_error.as_deref()
        ),
        (1, 1, Some("503"))
    );
    outbox
        .record_delivery(
            again[0].id,
            &Delivery::GaveUp {
                at: at(6_000),
                error: "timeout".into(),
            },
        )
        .await
        .unwrap();
    assert!(
        outbox
            .due_notifications(at(99_000), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let failed = outbox.notifications(Some("failed"), 10).await.unwrap();
    assert_eq!((failed.len(), failed[0].attempts), (1, 2));
    let delivered = outbox.notifications(Some("delivered"), 10).await.unwrap();
    assert_eq!(delivered[0].delivered_at, Some(at(2_100)));
    assert_eq!(delivered[0].notification, row("ops-11"));
    assert_eq!(
        outbox.notification_counts().await.unwrap(),
        [
            ("ops".to_owned(), "delivered".to_owned(), 1),
            ("ops".to_owned(), "failed".to_owned(), 1)
        ]
    );
}

on_both_backends!(outbox_rows_move_with_the_cursor_and_record_every_attempt);
