//! switchyard-flags: the pure feature-flag engine.
//!
//! What it does: a native flag model ([`FlagSet`]) richer than Unleash or flagd, importers from
//! both ([`FlagSet::from_unleash_json`], [`FlagSet::from_flagd_json`]), export back to native
//! YAML/JSON, compilation into a validated evaluation plan ([`FlagSet::compile`] →
//! [`CompiledFlags`]) and evaluation into OpenFeature [`EvaluationDetails`]. The bucketing used
//! by flags is public ([`hashing`]) so experiments assign exactly as flags do.
//!
//! What it does not do: IO of any kind. Serving (OFREP, SSE), storage, the audit log and the CLI
//! live in other crates and call this one. Evaluation takes `now` as an input.
//!
//! See `docs/flags.md` for the model, operators, reasons, importer mappings and hashing versions.

mod compile;
mod compiled;
mod context;
mod details;
mod error;
mod evaluate;
mod export;
pub mod hashing;
mod import;
mod jsonlogic;
mod lookup;
mod matcher;
mod model;
mod native;
mod scalar;
mod version;

pub use compiled::CompiledFlags;
pub use context::{
    AttributeRef, Attributes, CURRENT_TIME, EvaluationContext, SESSION_ID, TARGETING_KEY, Timestamp,
};
pub use details::{ErrorCode, ErrorMessage, EvaluationDetails, Reason};
pub use error::{FlagError, FlagWarning, ImportError, Problem};
pub use export::unleash::{LeftOut, UnleashExport, unleash_answer};
pub use hashing::HashVersion;
pub use import::FlagFormat;
pub use import::unleash::UNLEASH_DISABLED_VARIANT;
pub use model::{
    AttributeCondition, Condition, DEFAULT_STICKINESS, EnvironmentState, FlagDefinition, FlagSet,
    FlagType, Fractional, Operator, Override, Prerequisite, RANDOM_STICKINESS, Ramp, Rollout, Rule,
    Semantics, Serve, Split, WeightedVariant,
};
