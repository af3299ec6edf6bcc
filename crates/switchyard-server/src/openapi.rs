//! The API's OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations
//! and the wire types of `switchyard-api`, served at `/api/v1/openapi.json`.

use axum::Json;
use axum::response::IntoResponse;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::{
    audit, dataplane, experiments, flags, handlers, incidents, notifications, ofrep, operations,
    pipelines, tokens, unleash,
};

/// The document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Switchyard",
        description = "Progressive delivery: manifests, deploys, rollouts and their commands, \
                       feature flags (and OFREP), experiments, tokens, the audit log, and the table \
                       protocol proxies follow (`dataplane`). Every \
                       error answers `{\"error\": {\"code\", \"message\", \"details\"}}`."
    ),
    paths(
        handlers::health,
        handlers::ready,
        handlers::metrics,
        handlers::apply,
        handlers::apps,
        handlers::deploy,
        handlers::rollout,
        handlers::command,
        handlers::events,
        operations::retry,
        operations::undo,
        operations::emergency_stop,
        operations::unfreeze,
        operations::analysis,
        audit::list,
        audit::verify,
        tokens::create,
        tokens::list,
        tokens::revoke,
        flags::handlers::list,
        flags::handlers::get,
        flags::handlers::apply,
        flags::handlers::put,
        flags::handlers::delete,
        flags::handlers::toggle,
        flags::handlers::rollout,
        flags::handlers::audit,
        flags::handlers::verify,
        flags::stream::stream,
        ofrep::evaluate_flag,
        ofrep::evaluate_flags,
        unleash::frontend_get,
        unleash::frontend_post,
        unleash::client_features,
        unleash::client_register,
        unleash::client_metrics,
        unleash::clients,
        experiments::handlers::ingest,
        experiments::handlers::list,
        experiments::handlers::get,
        experiments::handlers::results,
        experiments::handlers::report,
        experiments::handlers::stop,
        incidents::list,
        incidents::get_one,
        incidents::report,
        pipelines::release,
        pipelines::status,
        pipelines::runs,
        pipelines::approve,
        pipelines::override_window,
        pipelines::cancel,
        notifications::list,
        dataplane::tables,
        dataplane::report,
        dataplane::proxies,
    ),
    modifiers(&Bearer)
)]
pub struct ApiDoc;

/// Bearer tokens, as every operation but `/health` requires.
struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from `switchyard token create` (or the first start's admin.token)",
                    ))
                    .build(),
            ),
        );
    }
}

/// `GET /api/v1/openapi.json`: public, like `/health`.
pub async fn document() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}
