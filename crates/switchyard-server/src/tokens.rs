//! `/api/v1/tokens`: create (the token is in the answer, once), list, revoke. Admins only.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use switchyard_api::{CreateTokenRequest, CreatedTokenView, RevokedTokenView, TokenView};
use switchyard_control::auth::{Action, NewToken, Role, Scope, TokenError, Tokens};
use switchyard_core::ports::TokenRecord;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::router::ServerContext;

pub fn routes() -> Router<ServerContext> {
    Router::new()
        .route("/api/v1/tokens", get(list).post(create))
        .route("/api/v1/tokens/{id}/revoke", post(revoke))
}

fn tokens(ctx: &ServerContext) -> Result<&Tokens, ApiError> {
    ctx.security.tokens.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "auth_disabled",
            "this daemon runs without authentication (--insecure-no-auth); it has no tokens",
        )
    })
}

/// `POST /api/v1/tokens`.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    tag = "tokens",
    request_body = CreateTokenRequest,
    responses((status = 201, description = "the token, shown this once", body = CreatedTokenView), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn create(
    State(ctx): State<ServerContext>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<CreatedTokenView>), ApiError> {
    caller.may(Action::Administer, Scope::Everything)?;
    let request: CreateTokenRequest = crate::body::parse(&body)?;
    let role: Role =
        request
            .role
            .parse()
            .map_err(|e: switchyard_control::auth::role::UnknownRole| {
                ApiError::bad_request(e.to_string())
            })?;
    let new = NewToken {
        name: request.name,
        role,
        apps: request.apps.map(|a| a.into_iter().collect()),
        environments: request.environments.map(|e| e.into_iter().collect()),
    };
    let created = tokens(&ctx)?.create(&new, &caller.author()).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedTokenView {
            token: created.token,
            view: view(created.record),
        }),
    ))
}

/// `GET /api/v1/tokens`.
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    tag = "tokens",
    responses((status = 200, description = "every token, never a secret", body = Vec<TokenView>), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(
    State(ctx): State<ServerContext>,
    caller: Caller,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    caller.may(Action::Administer, Scope::Everything)?;
    let list = tokens(&ctx)?.list().await?;
    Ok(Json(list.into_iter().map(view).collect()))
}

/// `POST /api/v1/tokens/{id}/revoke`.
#[utoipa::path(
    post,
    path = "/api/v1/tokens/{id}/revoke",
    tag = "tokens",
    params(("id" = String, Path)),
    responses((status = 200, description = "revoked (or revoked already)", body = RevokedTokenView), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn revoke(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RevokedTokenView>, ApiError> {
    caller.may(Action::Administer, Scope::Everything)?;
    let revoked = tokens(&ctx)?.revoke(&id, &caller.author()).await?;
    Ok(Json(RevokedTokenView { id, revoked }))
}

fn view(t: TokenRecord) -> TokenView {
    TokenView {
        id: t.id,
        name: t.name,
        role: t.role,
        apps: t.apps.map(|a| a.into_iter().collect()),
        environments: t.environments.map(|e| e.into_iter().collect()),
        created_at: t.created_at.to_rfc3339(),
        created_by: t.created_by,
        revoked_at: t.revoked_at.map(|r| r.to_rfc3339()),
        revoked_by: t.revoked_by,
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match &e {
            TokenError::Unknown(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "token_not_found", e.to_string())
            }
            TokenError::Store(_) => {
                tracing::error!(error = %switchyard_control::controller::chain(&e), "token request failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the daemon's log",
                )
            }
            _ => ApiError::bad_request(switchyard_control::controller::chain(&e)),
        }
    }
}
