//! The notification outbox: queued with the cursor over the event log in one transaction,
//! delivered at least once, every attempt recorded.

use switchyard_core::Timestamp;
use switchyard_core::ports::{
    Delivery, NewNotification, NotificationRecord, NotificationStore, StoreError,
};

use super::{Pool, Store, begin_write};
use crate::codec::{backend, millis, timestamp};

const COLUMNS: &str = "id, notifier, event_id, kind, idempotency_key, sink, url, content_type, \
                       body, secret_env, status, attempts, next_attempt_at, last_error, \
                       created_at, delivered_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    notifier: String,
    event_id: i64,
    kind: String,
    idempotency_key: String,
    sink: String,
    url: String,
    content_type: String,
    body: String,
    secret_env: Option<String>,
    status: String,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    created_at: i64,
    delivered_at: Option<i64>,
}

impl Row {
    fn decode(self) -> Result<NotificationRecord, StoreError> {
        let id = self.id;
        let what = |field: &'static str| move || format!("{field} of notification {id}");
        Ok(NotificationRecord {
            id,
            notification: NewNotification {
                notifier: self.notifier,
                event: self.event_id,
                kind: self.kind,
                key: self.idempotency_key,
                sink: self.sink,
                url: self.url,
                content_type: self.content_type,
                body: self.body,
                secret_env: self.secret_env,
            },
            status: self.status,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            next_attempt_at: timestamp(self.next_attempt_at, what("next attempt"))?,
            last_error: self.last_error,
            created_at: timestamp(self.created_at, what("creation time"))?,
            delivered_at: self
                .delivered_at
                .map(|t| timestamp(t, what("delivery time")))
                .transpose()?,
        })
    }
}

async fn select(
    pool: &Pool,
    sql: String,
    binds: &[Bind<'_>],
) -> Result<Vec<NotificationRecord>, StoreError> {
    let mut query = sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql));
    for b in binds {
        query = match b {
            Bind::Int(i) => query.bind(*i),
            Bind::Text(t) => query.bind(*t),
        };
    }
    let rows = query
        .fetch_all(pool)
        .await
        .map_err(backend("read notifications"))?;
    rows.into_iter().map(Row::decode).collect()
}

enum Bind<'a> {
    Int(i64),
    Text(&'a str),
}

#[async_trait::async_trait]
impl NotificationStore for Store {
    async fn notification_cursor(&self) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar("SELECT event_id FROM notification_cursor WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(backend("read the notification cursor"))
    }

    async fn enqueue_notifications(
        &self,
        from: Option<i64>,
        to: i64,
        rows: &[NewNotification],
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = begin_write(self).await?;
        let cursor: Option<i64> =
            sqlx::query_scalar("SELECT event_id FROM notification_cursor WHERE id = 1")
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend("read the notification cursor"))?;
        if cursor != from {
            return Ok(false);
        }
        for n in rows {
            sqlx::query(
                "INSERT INTO notifications (notifier, event_id, kind, idempotency_key, sink, url, \
                 content_type, body, secret_env, status, attempts, next_attempt_at, last_error, \
                 created_at, delivered_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, $10, NULL, $10, NULL) \
                 ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(&n.notifier)
            .bind(n.event)
            .bind(&n.kind)
            .bind(&n.key)
            .bind(&n.sink)
            .bind(&n.url)
            .bind(&n.content_type)
            .bind(&n.body)
            .bind(&n.secret_env)
            .bind(millis(at))
            .execute(&mut *tx)
            .await
            .map_err(backend("queue a notification"))?;
        }
        sqlx::query(
            "INSERT INTO notification_cursor (id, event_id) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET event_id = excluded.event_id",
        )
        .bind(to)
        .execute(&mut *tx)
        .await
        .map_err(backend("move the notification cursor"))?;
        tx.commit()
            .await
            .map_err(backend("commit queued notifications"))?;
        Ok(true)
    }

    async fn due_notifications(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM notifications WHERE status = 'pending' AND next_attempt_at <= $1 \
             ORDER BY id ASC LIMIT $2"
        );
        select(
            &self.pool,
            sql,
            &[Bind::Int(millis(now)), Bind::Int(i64::from(limit))],
        )
        .await
    }

    async fn record_delivery(&self, id: i64, outcome: &Delivery) -> Result<(), StoreError> {
        let mut tx = begin_write(self).await?;
        let query = match outcome {
            Delivery::Delivered { at } => sqlx::query(
                "UPDATE notifications SET status = 'delivered', attempts = attempts + 1, \
                 delivered_at = $1, last_error = NULL WHERE id = $2",
            )
            .bind(millis(*at))
            .bind(id),
            Delivery::Retry { next, error } => sqlx::query(
                "UPDATE notifications SET attempts = attempts + 1, next_attempt_at = $1, \
                 last_error = $2 WHERE id = $3",
            )
            .bind(millis(*next))
            .bind(error.clone())
            .bind(id),
            Delivery::GaveUp { at, error } => sqlx::query(
                "UPDATE notifications SET status = 'failed', attempts = attempts + 1, \
                 next_attempt_at = $1, last_error = $2 WHERE id = $3",
            )
            .bind(millis(*at))
            .bind(error.clone())
            .bind(id),
        };
        query
            .execute(&mut *tx)
            .await
            .map_err(backend("record a notification's delivery"))?;
        tx.commit()
            .await
            .map_err(backend("commit a notification's delivery"))
    }

    async fn notifications(
        &self,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let limit = Bind::Int(i64::from(limit));
        match status {
            Some(status) => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM notifications WHERE status = $1 ORDER BY id DESC LIMIT $2"
                );
                select(&self.pool, sql, &[Bind::Text(status), limit]).await
            }
            None => {
                let sql = format!("SELECT {COLUMNS} FROM notifications ORDER BY id DESC LIMIT $1");
                select(&self.pool, sql, &[limit]).await
            }
        }
    }

    async fn notification_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT notifier, status, COUNT(*) FROM notifications GROUP BY notifier, status \
             ORDER BY notifier, status",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend("count notifications"))?;
        Ok(rows
            .into_iter()
            .map(|(n, s, c)| (n, s, u64::try_from(c).unwrap_or(0)))
            .collect())
    }
}
