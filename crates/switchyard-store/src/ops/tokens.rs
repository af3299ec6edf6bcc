//! API tokens: created with their audit event, listed, revoked (never deleted).

use std::collections::BTreeSet;

use switchyard_core::Timestamp;
use switchyard_core::ports::{NewEvent, StoreError, TokenRecord, TokenStore};

use super::events;
use super::{Store, begin_write, notify};
use crate::Topic;
use crate::codec::{backend, decode, encode, millis, timestamp};

type TokenRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    String,
    Option<i64>,
    Option<String>,
);

#[async_trait::async_trait]
impl TokenStore for Store {
    async fn create_token(
        &self,
        token: &TokenRecord,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        let scope = |set: &Option<BTreeSet<String>>| {
            set.as_ref()
                .map(|s| encode(s, "encode a token's scope"))
                .transpose()
        };
        let (apps, environments) = (scope(&token.apps)?, scope(&token.environments)?);
        let mut tx = begin_write(self).await?;
        let taken: Option<(String,)> = sqlx::query_as("SELECT id FROM tokens WHERE id = $1")
            .bind(&token.id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend("look a token up"))?;
        if taken.is_some() {
            return Err(StoreError::TokenExists(token.id.clone()));
        }
        sqlx::query(
            "INSERT INTO tokens (id, name, role, apps_json, environments_json, secret_hash, \
             created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&token.id)
        .bind(&token.name)
        .bind(&token.role)
        .bind(apps)
        .bind(environments)
        .bind(&token.secret_hash)
        .bind(millis(token.created_at))
        .bind(&token.created_by)
        .execute(&mut *tx)
        .await
        .map_err(backend("store a token"))?;
        events::append(&mut tx, events, events::Owner::NONE).await?;
        notify(&mut tx, Topic::Tokens).await?;
        tx.commit().await.map_err(backend("commit a new token"))
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows: Vec<TokenRow> = sqlx::query_as(
            "SELECT id, name, role, apps_json, environments_json, secret_hash, created_at, \
             created_by, revoked_at, revoked_by FROM tokens ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend("read tokens"))?;
        rows.into_iter().map(token).collect()
    }

    async fn revoke_token(
        &self,
        id: &str,
        by: &str,
        at: Timestamp,
        events: &[NewEvent],
    ) -> Result<bool, StoreError> {
        let mut tx = begin_write(self).await?;
        let found: Option<(Option<i64>,)> =
            sqlx::query_as("SELECT revoked_at FROM tokens WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend("look a token up"))?;
        match found {
            None => return Err(StoreError::UnknownToken(id.to_owned())),
            Some((Some(_),)) => return Ok(false),
            Some((None,)) => {}
        }
        sqlx::query("UPDATE tokens SET revoked_at = $1, revoked_by = $2 WHERE id = $3")
            .bind(millis(at))
            .bind(by)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend("revoke a token"))?;
        events::append(&mut tx, events, events::Owner::NONE).await?;
        notify(&mut tx, Topic::Tokens).await?;
        tx.commit()
            .await
            .map_err(backend("commit a token's revocation"))?;
        Ok(true)
    }
}

fn token(row: TokenRow) -> Result<TokenRecord, StoreError> {
    let (id, name, role, apps, environments, secret_hash, created, created_by, revoked, revoked_by) =
        row;
    let what = |field: &str| {
        let id = id.clone();
        let field = field.to_owned();
        move || format!("{field} of token {id}")
    };
    let scope = |text: Option<String>, field: &str| {
        text.map(|t| decode::<BTreeSet<String>>(&t, what(field)))
            .transpose()
    };
    Ok(TokenRecord {
        apps: scope(apps, "apps")?,
        environments: scope(environments, "environments")?,
        created_at: timestamp(created, what("created_at"))?,
        revoked_at: revoked
            .map(|r| timestamp(r, what("revoked_at")))
            .transpose()?,
        id,
        name,
        role,
        secret_hash,
        created_by,
        revoked_by,
    })
}
