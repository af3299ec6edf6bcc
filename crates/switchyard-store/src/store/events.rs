//! The event log: appending inside another write's transaction, and reading with filters.
//!
//! Rows are never updated or deleted; triggers in the schema refuse both.

use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use switchyard_core::AppName;
use switchyard_core::ports::{EventQuery, EventRecord, NewEvent, RolloutId, StoreError};

use super::codec::{backend, decode, decode_text, encode, millis, timestamp};

/// The app and rollout a write concerns, given to events that name none themselves.
///
/// A caller creating a rollout cannot know its id yet, so the events it passes along (such as
/// `RolloutStarted`) get it here, in the same transaction.
#[derive(Debug, Clone, Copy)]
pub(super) struct Owner<'a> {
    pub(super) app: Option<&'a AppName>,
    pub(super) rollout: Option<RolloutId>,
}

impl<'a> Owner<'a> {
    pub(super) const NONE: Owner<'static> = Owner {
        app: None,
        rollout: None,
    };

    pub(super) fn app(app: &'a AppName) -> Self {
        Self {
            app: Some(app),
            rollout: None,
        }
    }

    pub(super) fn rollout(app: &'a AppName, rollout: RolloutId) -> Self {
        Self {
            app: Some(app),
            rollout: Some(rollout),
        }
    }
}

/// Appends `events` on `conn`, which is inside the caller's transaction.
pub(super) async fn append(
    conn: &mut SqliteConnection,
    events: &[NewEvent],
    owner: Owner<'_>,
) -> Result<(), StoreError> {
    for event in events {
        let app = event.app.as_ref().or(owner.app).map(AppName::as_str);
        let rollout = event.rollout.or(owner.rollout);
        let data = encode(&event.data, "encode event data")?;
        sqlx::query(
            "INSERT INTO events (at, app, rollout, kind, actor, reason, data_json) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(millis(event.at))
        .bind(app)
        .bind(rollout)
        .bind(event.kind.as_str())
        .bind(event.actor.as_str())
        .bind(event.reason.as_str())
        .bind(data)
        .execute(&mut *conn)
        .await
        .map_err(backend("append an event"))?;
    }
    Ok(())
}

type EventRow = (
    i64,
    i64,
    Option<String>,
    Option<i64>,
    String,
    String,
    String,
    String,
);

/// Events matching `query`, oldest first. With a limit, the newest `limit` of them.
pub(super) async fn query(
    pool: &SqlitePool,
    query: &EventQuery,
) -> Result<Vec<EventRecord>, StoreError> {
    let mut sql = QueryBuilder::<Sqlite>::new(
        "SELECT id, at, app, rollout, kind, actor, reason, data_json FROM events WHERE 1 = 1",
    );
    if let Some(app) = &query.app {
        sql.push(" AND app = ").push_bind(app.as_str().to_string());
    }
    if let Some(rollout) = query.rollout {
        sql.push(" AND rollout = ").push_bind(rollout);
    }
    if !query.kinds.is_empty() {
        sql.push(" AND kind IN (");
        let mut kinds = sql.separated(", ");
        for kind in &query.kinds {
            kinds.push_bind(kind.as_str());
        }
        sql.push(")");
    }
    if let Some(after) = query.after {
        sql.push(" AND id > ").push_bind(after);
    }
    // The most recent N are the first N newest-first; they are turned around below.
    match query.limit {
        Some(limit) => sql
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit)),
        None => sql.push(" ORDER BY id ASC"),
    };
    let rows: Vec<EventRow> = sql
        .build_query_as()
        .fetch_all(pool)
        .await
        .map_err(backend("read events"))?;
    let mut events = rows
        .into_iter()
        .map(decode_event)
        .collect::<Result<Vec<_>, _>>()?;
    if query.limit.is_some() {
        events.reverse();
    }
    Ok(events)
}

fn decode_event(
    (id, at, app, rollout, kind, actor, reason, data): EventRow,
) -> Result<EventRecord, StoreError> {
    let what = |field: &'static str| move || format!("{field} of event {id}");
    Ok(EventRecord {
        id,
        event: NewEvent {
            at: timestamp(at, what("time"))?,
            app: app.map(|a| decode_text(a, what("app"))).transpose()?,
            rollout,
            kind: decode_text(kind, what("kind"))?,
            actor,
            reason,
            data: decode(&data, what("data"))?,
        },
    })
}
