//! The event log: appending inside another write's transaction, and reading with filters.
//!
//! Rows are never updated or deleted; triggers in the schema refuse both.

use sqlx::QueryBuilder;

use super::{Conn, Db, Pool};
use switchyard_core::AppName;
use switchyard_core::ports::{
    EventQuery, EventRecord, GENESIS_HASH, NewEvent, RolloutId, StoreError,
};

use crate::event_chain::{ChainedEvent, event_hash};

use crate::codec::{backend, decode, decode_text, encode, millis, timestamp};

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

/// Appends `events` on `conn`, which is inside the caller's write transaction (so no other
/// writer appends meanwhile), each chained to the one before it.
pub(super) async fn append(
    conn: &mut Conn,
    events: &[NewEvent],
    owner: Owner<'_>,
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let (mut last_id, mut prev_hash) = head(conn).await?;
    for event in events {
        let mut event = event.clone();
        event.app = event.app.or_else(|| owner.app.cloned());
        event.rollout = event.rollout.or(owner.rollout);
        let record = EventRecord {
            id: last_id + 1,
            event,
        };
        let hash = event_hash(&record, &prev_hash);
        let e = &record.event;
        let data = encode(&e.data, "encode event data")?;
        sqlx::query(
            "INSERT INTO events (id, at, app, rollout, kind, actor, reason, data_json, source, \
             prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(record.id)
        .bind(millis(e.at))
        .bind(e.app.as_ref().map(AppName::as_str))
        .bind(e.rollout)
        .bind(e.kind.as_str())
        .bind(e.actor.as_str())
        .bind(e.reason.as_str())
        .bind(data)
        .bind(e.source.as_deref())
        .bind(&prev_hash)
        .bind(&hash)
        .execute(&mut *conn)
        .await
        .map_err(backend("append an event"))?;
        last_id = record.id;
        prev_hash = hash;
    }
    Ok(())
}

/// The id and hash of the last event (0 and the genesis hash for an empty log). When the last
/// event predates the chain, the chain is computed over the whole log once.
async fn head(conn: &mut Conn) -> Result<(i64, String), StoreError> {
    let last: Option<(i64, Option<String>)> =
        sqlx::query_as("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend("read the last event"))?;
    match last {
        None => Ok((0, GENESIS_HASH.to_owned())),
        Some((id, Some(hash))) => Ok((id, hash)),
        Some((id, None)) => {
            let all = chained(&mut *conn).await?;
            let check = crate::event_chain::verify(&all);
            Ok((id, check.head.unwrap_or_else(|| GENESIS_HASH.to_owned())))
        }
    }
}

/// The whole log, oldest first, with its chain.
pub(super) async fn chained(conn: &mut Conn) -> Result<Vec<ChainedEvent>, StoreError> {
    let rows: Vec<ChainRow> = sqlx::query_as(
        "SELECT id, at, app, rollout, kind, actor, reason, data_json, source, prev_hash, hash \
         FROM events ORDER BY id ASC",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(backend("read the event log"))?;
    rows.into_iter()
        .map(
            |(id, at, app, rollout, kind, actor, reason, data, source, prev, hash)| {
                Ok(ChainedEvent {
                    record: decode_event((
                        id, at, app, rollout, kind, actor, reason, data, source,
                    ))?,
                    prev_hash: prev,
                    hash,
                })
            },
        )
        .collect()
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
    Option<String>,
);

type ChainRow = (
    i64,
    i64,
    Option<String>,
    Option<i64>,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Events matching `query`, oldest first. With a limit, the newest `limit` of them.
pub(super) async fn query(pool: &Pool, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
    let mut sql = QueryBuilder::<Db>::new(
        "SELECT id, at, app, rollout, kind, actor, reason, data_json, source FROM events \
         WHERE 1 = 1",
    );
    if let Some(app) = &query.app {
        sql.push(" AND app = ").push_bind(app.as_str().to_string());
    }
    if let Some(actor) = &query.actor {
        sql.push(" AND actor = ").push_bind(actor.clone());
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
    (id, at, app, rollout, kind, actor, reason, data, source): EventRow,
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
            source,
            reason,
            data: decode(&data, what("data"))?,
        },
    })
}
