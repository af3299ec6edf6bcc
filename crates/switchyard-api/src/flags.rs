//! Wire types of the flag API (`/api/v1/flags`). Flag documents travel as JSON in the native
//! model of `switchyard-flags`; this crate does not interpret them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use switchyard_core::ports::{
    FlagAuditEntry, FlagAuditProblem, FlagAuditVerification, FlagEditResult, FlagObjectKind,
};

/// The format of a flag set sent to `PUT /api/v1/flags`.
pub use switchyard_flags::FlagFormat;

/// `PUT /api/v1/flags`: create or replace every flag and segment of a set; flags and segments
/// not in the set are left as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyFlagsRequest {
    #[serde(default)]
    #[schema(value_type = String, example = "native")]
    pub format: FlagFormat,
    /// The document's text.
    pub content: String,
    /// Validate against the current set, change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Why; recorded in the audit log.
    #[serde(default)]
    pub reason: Option<String>,
    /// Refuse the set (422 `invalid_flags`) when a flag would fail the evaluations that reach
    /// part of it (the `warnings` of the answer), instead of applying it with warnings.
    #[serde(default)]
    pub strict: bool,
}

/// `PUT /api/v1/flags/{key}`: create or replace one flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutFlagRequest {
    /// The native flag; its `key` must be the one in the path.
    pub flag: serde_json::Value,
    #[serde(default)]
    pub reason: Option<String>,
}

/// The body of `enable`, `disable` and `DELETE` (all fields optional; the body may be absent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlagChangeRequest {
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /api/v1/flags/{key}/rollout`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutRequest {
    /// 0–100.
    pub percent: f64,
    /// Limit the rollout to contexts of this environment.
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `GET /api/v1/flags`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlagList {
    /// The audit revision the list reflects.
    pub revision: i64,
    pub flags: Vec<FlagSummary>,
    /// Segment names.
    pub segments: Vec<String>,
}

/// One flag in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlagSummary {
    pub key: String,
    /// `boolean`, `string`, `integer`, `float` or `object`.
    #[serde(rename = "type")]
    pub flag_type: String,
    /// The flag-wide kill switch.
    pub enabled: bool,
    /// Per-environment kill switches.
    pub environments: BTreeMap<String, bool>,
    pub rules: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One flag: `GET`, `PUT`, `enable`, `disable`, `rollout`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlagView {
    pub revision: i64,
    pub key: String,
    /// The native flag document.
    pub flag: serde_json::Value,
}

/// `PUT /api/v1/flags` and `DELETE /api/v1/flags/{key}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlagApplyResponse {
    pub revision: i64,
    pub dry_run: bool,
    /// Per flag and segment: `created`, `configured`, `deleted`, `unchanged` (or `valid` on a
    /// dry run).
    #[schema(value_type = Vec<Object>)]
    pub results: Vec<FlagEditResult>,
    /// Flags that load but fail the evaluations that reach the named part (flagd targeting with
    /// an unsupported operator, a `$ref` to no evaluator, a result naming no variant).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<FlagProblem>,
}

/// `GET /api/v1/flags/audit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlagAuditList {
    #[schema(value_type = Vec<Object>)]
    pub entries: Vec<FlagAuditEntry>,
}

/// A problem in a flag document (in `details` of an `invalid_flags` error).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlagProblem {
    /// The flag key or segment name, when the problem is inside one.
    pub flag: Option<String>,
    /// The field path inside it (e.g. `rules[0].when.attribute`).
    pub path: Option<String>,
    pub message: String,
}
