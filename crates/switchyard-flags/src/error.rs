//! Errors of loading, compiling and importing flags. Evaluation itself never fails: problems at
//! evaluation time are reported inside [`crate::EvaluationDetails`] as OpenFeature error codes.

/// Why a flag set could not be loaded or compiled.
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    /// The JSON document does not match the native model.
    #[error("native flag set is not valid JSON for the model")]
    ParseJson(#[source] serde_json::Error),
    /// The YAML document does not match the native model.
    #[error("native flag set is not valid YAML for the model")]
    ParseYaml(#[source] serde_yaml_ng::Error),
    /// Serialising the model failed (a non-string map key in a variant value, for example).
    #[error("could not serialise the flag set as {format}")]
    Serialise {
        /// `json` or `yaml`.
        format: &'static str,
        /// What the serialiser said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Two flags share a key.
    #[error("flag `{0}` is defined more than once")]
    DuplicateFlag(String),
    /// A flag is invalid; `path` is the field path inside the flag (e.g. `rules[2].when.all[0]`).
    #[error("flag `{flag}` at `{path}`: {problem}")]
    InvalidFlag {
        /// The flag key.
        flag: String,
        /// Field path inside the flag.
        path: String,
        /// What is wrong.
        #[source]
        problem: Problem,
    },
    /// A segment is invalid.
    #[error("segment `{segment}` at `{path}`: {problem}")]
    InvalidSegment {
        /// The segment name.
        segment: String,
        /// Field path inside the segment.
        path: String,
        /// What is wrong.
        #[source]
        problem: Problem,
    },
}

/// A flag that loads but fails the evaluations that reach the named part (see
/// [`crate::FlagSet::warnings`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FlagWarning {
    /// The flag key.
    pub flag: String,
    /// Where in the flag, e.g. `targeting.if[1]`.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// What is wrong with one field.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// A variant name that the flag does not define.
    #[error("unknown variant `{0}`")]
    UnknownVariant(String),
    /// A variant value of the wrong type.
    #[error("value {value} is not a {expected}")]
    ValueType {
        /// The flag's type.
        expected: &'static str,
        /// The offending value.
        value: String,
    },
    /// A reference to a segment that does not exist.
    #[error("unknown segment `{0}`")]
    UnknownSegment(String),
    /// A segment that references another segment (segments are flat, so they cannot loop).
    #[error("segment reference `{0}` inside a segment; segments cannot nest")]
    NestedSegment(String),
    /// A prerequisite on a flag that does not exist.
    #[error("unknown prerequisite flag `{0}`")]
    UnknownFlag(String),
    /// Prerequisites that form a cycle, or a chain too deep to evaluate.
    #[error("prerequisite chain through `{0}` is cyclic or deeper than 32 flags")]
    PrerequisiteCycle(String),
    /// An operator given the wrong number of operands.
    #[error("operator `{op}` takes {expected} operand(s), got {found}")]
    OperandCount {
        /// The operator name.
        op: &'static str,
        /// `1` or `at least 0`.
        expected: &'static str,
        /// How many were given.
        found: usize,
    },
    /// An operand that is an array, object or null.
    #[error("operand {0} is not a string, number or boolean")]
    NonScalarOperand(String),
    /// An operand that is not a number.
    #[error("`{0}` is not a number")]
    BadNumber(String),
    /// An operand that is not a semantic version.
    #[error("`{0}` is not a semantic version")]
    BadSemver(String),
    /// An operand that is not an RFC 3339 date-time.
    #[error("`{0}` is not an RFC 3339 date-time")]
    BadDate(String),
    /// An operand that is not an IP address or CIDR block.
    #[error("`{0}` is not an IP address or CIDR block")]
    BadCidr(String),
    /// A regular expression that does not compile.
    #[error("invalid regular expression")]
    BadRegex(#[source] regex::Error),
    /// A percentage outside 0–100.
    #[error("percentage {0} is outside 0..=100")]
    Percentage(f64),
    /// A rollout with both or neither of `percentage` and `ramp`.
    #[error("a rollout needs exactly one of `percentage` and `ramp`")]
    RolloutShape,
    /// A ramp that would take users out as it grows.
    #[error("ramp goes down from {from}% to {to}%; ramps may only grow")]
    RampDecreasing {
        /// Starting percentage.
        from: f64,
        /// Final percentage.
        to: f64,
    },
    /// A ramp whose end is not after its start.
    #[error("ramp ends before it starts")]
    RampInverted,
    /// A split whose weights are all zero.
    #[error("split has no variant with a positive weight")]
    EmptySplit,
    /// A rule or flag with nothing to serve.
    #[error("nothing to serve: give the rule a `serve`, or the flag a `serve` or `defaultVariant`")]
    NothingToServe,
    /// Flag metadata that is not a scalar.
    #[error("metadata value {0} is not a string, number or boolean")]
    NonScalarMetadata(String),
    /// A field of native semantics on a flag with flagd semantics.
    #[error("`{0}` is not used with `semantics: flagd`; flagd flags decide with `targeting`")]
    NotFlagd(&'static str),
    /// `targeting` on a flag with native semantics.
    #[error("`targeting` (flagd JsonLogic) needs `semantics: flagd`; native flags use `rules`")]
    TargetingNeedsFlagd,
    /// `fractional` on a flag with native semantics.
    #[error(
        "`fractional` (flagd's bucketing generation) needs `semantics: flagd`; native flags use `hashing`"
    )]
    FractionalNeedsFlagd,
}

/// Why an Unleash or flagd document could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The document is not JSON of the expected shape.
    #[error("{format} document does not match the expected shape")]
    Parse {
        /// `unleash` or `flagd`.
        format: &'static str,
        /// The parser's complaint (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// One flag uses a construct that has no native equivalent.
    #[error("{format} flag `{flag}` at `{path}`: {problem}")]
    Unsupported {
        /// `unleash` or `flagd`.
        format: &'static str,
        /// The flag key.
        flag: String,
        /// JSON path inside the flag.
        path: String,
        /// What could not be mapped.
        problem: String,
    },
}
