//! The `/api/v1/flags` endpoints. Bodies are read as bytes and parsed here so that an empty
//! body means "no options" and a malformed one is a `bad_request` with the parser's message.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use switchyard_api::flags::*;
use switchyard_core::ports::FlagAuditQuery;
use switchyard_flags::FlagDefinition;

use crate::body::{parse, parse_optional};
use switchyard_control::auth::{Action, Scope};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::router::ServerContext;
use switchyard_control::flags::FlagServiceError;
use switchyard_control::flags::LiveFlags;
use switchyard_control::flags::Who;
use switchyard_control::flags::edit;

type ApiResult<T> = Result<Json<T>, ApiError>;

fn view(live: &LiveFlags, key: &str) -> Result<FlagView, FlagServiceError> {
    let documents = edit::documents(&live.set)?;
    let flag = documents
        .flags
        .get(key)
        .cloned()
        .ok_or_else(|| FlagServiceError::UnknownFlag(key.into()))?;
    Ok(FlagView {
        revision: live.revision,
        key: key.into(),
        flag,
    })
}

fn summary(flag: &FlagDefinition) -> FlagSummary {
    FlagSummary {
        key: flag.key.clone(),
        flag_type: flag.flag_type.as_str().into(),
        enabled: flag.enabled,
        environments: flag
            .environments
            .iter()
            .map(|(name, state)| (name.clone(), state.enabled))
            .collect(),
        rules: flag.rules.len(),
        description: flag.description.clone(),
    }
}

/// `GET /api/v1/flags`.
#[utoipa::path(
    get,
    path = "/api/v1/flags",
    tag = "flags",
    responses((status = 200, description = "every flag and segment", body = FlagList), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(State(ctx): State<ServerContext>, caller: Caller) -> ApiResult<FlagList> {
    caller.may(Action::Read, Scope::Any)?;
    let live = ctx.flags.live();
    Ok(Json(FlagList {
        revision: live.revision,
        flags: live.set.flags.iter().map(summary).collect(),
        segments: live.set.segments.keys().cloned().collect(),
    }))
}

/// `GET /api/v1/flags/{key}`.
#[utoipa::path(
    get,
    path = "/api/v1/flags/{key}",
    tag = "flags",
    params(("key" = String, Path, description = "the flag's key")),
    responses((status = 200, description = "the flag", body = FlagView), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(key): Path<String>,
) -> ApiResult<FlagView> {
    caller.may(Action::Read, Scope::Any)?;
    Ok(Json(view(&ctx.flags.live(), &key)?))
}

/// `PUT /api/v1/flags`: create or replace every flag and segment of a set.
#[utoipa::path(
    put,
    path = "/api/v1/flags",
    tag = "flags",
    request_body = ApplyFlagsRequest,
    responses((status = 200, description = "what changed", body = FlagApplyResponse), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn apply(
    State(ctx): State<ServerContext>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<FlagApplyResponse> {
    caller.may(Action::EditFlags, Scope::Everything)?;
    let request: ApplyFlagsRequest = parse(&body)?;
    let incoming = edit::parse_set(request.format, &request.content)?;
    let warnings: Vec<FlagProblem> = incoming
        .warnings()
        .into_iter()
        .map(|w| FlagProblem {
            message: format!("flag `{}` at {}: {}", w.flag, w.path, w.problem),
            flag: Some(w.flag),
            path: Some(w.path),
        })
        .collect();
    if request.strict && !warnings.is_empty() {
        let messages: Vec<&str> = warnings.iter().map(|w| w.message.as_str()).collect();
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_flags",
            format!(
                "refused (strict): these would fail every evaluation that reaches them: {}",
                messages.join("; ")
            ),
        )
        .with_details(serde_json::to_value(&warnings).unwrap_or_default()));
    }
    let mut touched: Vec<(FlagObjectKind, String)> = incoming
        .segments
        .keys()
        .map(|k| (FlagObjectKind::Segment, k.clone()))
        .collect();
    touched.extend(
        incoming
            .flags
            .iter()
            .map(|f| (FlagObjectKind::Flag, f.key.clone())),
    );
    let who = who(&caller, request.reason);
    let (live, outcome) = ctx
        .flags
        .change(&who, ctx.clock.now(), request.dry_run, |current| {
            Ok(edit::upsert(current, incoming))
        })
        .await?;
    // Every document of the request, in its order; those the change did not touch are unchanged.
    let results = touched
        .into_iter()
        .map(|(kind, key)| {
            let result = outcome
                .results
                .iter()
                .find(|r| r.kind == kind && r.key == key)
                .map_or_else(|| "unchanged".to_owned(), |r| r.result.clone());
            FlagEditResult { kind, key, result }
        })
        .collect();
    Ok(Json(FlagApplyResponse {
        revision: live.revision,
        dry_run: request.dry_run,
        results,
        warnings,
    }))
}

/// `PUT /api/v1/flags/{key}`.
#[utoipa::path(
    put,
    path = "/api/v1/flags/{key}",
    tag = "flags",
    params(("key" = String, Path, description = "the flag's key")),
    request_body = PutFlagRequest,
    responses((status = 200, description = "the flag", body = FlagView), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn put(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(key): Path<String>,
    body: Bytes,
) -> ApiResult<FlagView> {
    caller.may(Action::EditFlags, Scope::Everything)?;
    let request: PutFlagRequest = parse(&body)?;
    let flag: FlagDefinition =
        serde_json::from_value(request.flag).map_err(FlagServiceError::InvalidDocument)?;
    if flag.key != key {
        return Err(FlagServiceError::KeyMismatch {
            path: key,
            document: flag.key,
        }
        .into());
    }
    let who = who(&caller, request.reason);
    let (live, _) = ctx
        .flags
        .change(&who, ctx.clock.now(), false, |current| {
            Ok(edit::with_flag(current, flag))
        })
        .await?;
    Ok(Json(view(&live, &key)?))
}

/// `DELETE /api/v1/flags/{key}`. Refused (422) while another flag has it as a prerequisite.
#[utoipa::path(
    delete,
    path = "/api/v1/flags/{key}",
    tag = "flags",
    params(("key" = String, Path, description = "the flag's key")),
    request_body = FlagChangeRequest,
    responses((status = 200, description = "what changed", body = FlagApplyResponse), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn delete(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(key): Path<String>,
    body: Bytes,
) -> ApiResult<FlagApplyResponse> {
    caller.may(Action::EditFlags, Scope::Everything)?;
    let request: FlagChangeRequest = parse_optional(&body)?;
    let who = who(&caller, request.reason);
    let (live, outcome) = ctx
        .flags
        .change(&who, ctx.clock.now(), false, |current| {
            edit::without_flag(current, &key)
        })
        .await?;
    Ok(Json(FlagApplyResponse {
        revision: live.revision,
        dry_run: false,
        results: outcome.results,
        warnings: Vec::new(),
    }))
}

/// `POST /api/v1/flags/{key}/environments/{env}/{enable|disable}`.
#[utoipa::path(
    post,
    path = "/api/v1/flags/{key}/environments/{env}/{action}",
    tag = "flags",
    params(("key" = String, Path, description = "the flag's key"), ("env" = String, Path), ("action" = String, Path, description = "enable or disable")),
    request_body = FlagChangeRequest,
    responses((status = 200, description = "the flag", body = FlagView), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn toggle(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path((key, environment, action)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<FlagView> {
    caller.may(Action::EditFlags, Scope::Environment(&environment))?;
    let enabled = match action.as_str() {
        "enable" => true,
        "disable" => false,
        other => return Err(FlagServiceError::UnknownAction(other.into()).into()),
    };
    let request: FlagChangeRequest = parse_optional(&body)?;
    let who = who(&caller, request.reason);
    let (live, _) = ctx
        .flags
        .change(&who, ctx.clock.now(), false, |current| {
            edit::with_environment(current, &key, &environment, enabled)
        })
        .await?;
    Ok(Json(view(&live, &key)?))
}

/// `POST /api/v1/flags/{key}/rollout`.
#[utoipa::path(
    post,
    path = "/api/v1/flags/{key}/rollout",
    tag = "flags",
    params(("key" = String, Path, description = "the flag's key")),
    request_body = RolloutRequest,
    responses((status = 200, description = "the flag", body = FlagView), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn rollout(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(key): Path<String>,
    body: Bytes,
) -> ApiResult<FlagView> {
    let request: RolloutRequest = parse(&body)?;
    match request.environment.as_deref() {
        Some(env) => caller.may(Action::EditFlags, Scope::Environment(env))?,
        None => caller.may(Action::EditFlags, Scope::Everything)?,
    }
    let who = who(&caller, request.reason);
    let environment = request.environment;
    let (live, _) = ctx
        .flags
        .change(&who, ctx.clock.now(), false, |current| {
            edit::with_rollout(current, &key, request.percent, environment.as_deref())
        })
        .await?;
    Ok(Json(view(&live, &key)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    key: Option<String>,
    after: Option<i64>,
    limit: Option<u32>,
}

/// `GET /api/v1/flags/audit?key=&after=&limit=`.
#[utoipa::path(
    get,
    path = "/api/v1/flags/audit",
    tag = "flags",
    params(("key" = Option<String>, Query), ("after" = Option<i64>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, description = "the flag audit log", body = FlagAuditList), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn audit(
    State(ctx): State<ServerContext>,
    caller: Caller,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> ApiResult<FlagAuditList> {
    caller.may(Action::Read, Scope::Any)?;
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let query = FlagAuditQuery {
        key: params.key,
        after: params.after,
        limit: params.limit,
    };
    let entries = ctx
        .flags
        .store()
        .flag_audit(&query)
        .await
        .map_err(FlagServiceError::from)?;
    Ok(Json(FlagAuditList { entries }))
}

/// `GET /api/v1/flags/audit/verify`.
#[utoipa::path(
    get,
    path = "/api/v1/flags/audit/verify",
    tag = "flags",
    responses((status = 200, description = "the flag audit chain checked", body = Object), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn verify(
    State(ctx): State<ServerContext>,
    caller: Caller,
) -> ApiResult<FlagAuditVerification> {
    caller.may(Action::Read, Scope::Any)?;
    let verification = ctx
        .flags
        .store()
        .verify_flag_audit()
        .await
        .map_err(FlagServiceError::from)?;
    if !verification.ok {
        tracing::warn!(problems = ?verification.problems, "flag audit chain does not verify");
    }
    Ok(Json(verification))
}

/// The principal and the request's reason, for the flag audit log.
fn who(caller: &Caller, reason: Option<String>) -> Who {
    Who {
        by: caller.author(),
        reason: reason.unwrap_or_default(),
    }
}
