//! Arguments of `switchyard flags`.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub enum FlagsCommand {
    /// List the daemon's flags.
    List,
    /// Show one flag's native document.
    Get { key: String },
    /// Create or replace every flag and segment of a file (validated as a whole first).
    Apply {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = FlagFileFormat::Native)]
        format: FlagFileFormat,
        /// Validate against the daemon's flags, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Refuse the file when a flag would fail the evaluations that reach part of it (flagd
        /// targeting with an unsupported operator, a `$ref` to no evaluator, a result naming no
        /// variant) instead of applying it with warnings.
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Delete a flag.
    Delete {
        key: String,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Switch a flag on in an environment.
    Enable {
        key: String,
        #[arg(long, default_value = "production")]
        env: String,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Switch a flag off in an environment (the kill switch).
    Disable {
        key: String,
        #[arg(long, default_value = "production")]
        env: String,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Serve the flag to PERCENT% of contexts (the rule named `rollout`, or `rollout:<env>`).
    Rollout {
        key: String,
        percent: f64,
        /// Only contexts whose `environment` is this.
        #[arg(long)]
        env: Option<String>,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// The audit log of flag changes; `--verify` checks its hash chain.
    Audit {
        #[arg(long)]
        verify: bool,
        /// Only entries about this flag or segment.
        #[arg(long)]
        key: Option<String>,
        /// The most recent N entries.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Evaluate a flag from a file, without a daemon; prints the evaluation details as JSON.
    Eval(EvalArgs),
}

/// Why, recorded in the audit log (who is the token's name).
#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// Why; recorded in the audit log.
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlagFileFormat {
    /// Native YAML or JSON.
    Native,
    /// Unleash client features or delta events (JSON).
    Unleash,
    /// A flagd flag definition (JSON).
    Flagd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EvalType {
    Boolean,
    String,
    Integer,
    Float,
    Object,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The flag file.
    #[arg(long)]
    pub file: PathBuf,
    #[arg(long, value_enum, default_value_t = FlagFileFormat::Native)]
    pub format: FlagFileFormat,
    /// The flag key.
    #[arg(long)]
    pub flag: String,
    /// The type the caller expects (a mismatch is a TYPE_MISMATCH error).
    #[arg(long = "type", value_enum)]
    pub flag_type: EvalType,
    /// The caller's default, served on errors and when the flag has nothing to serve.
    #[arg(long)]
    pub default: Option<String>,
    /// The evaluation context as JSON: `{"targetingKey": ..., ...}` (Unleash files: an Unleash
    /// context, `{"userId": ..., "properties": {...}}`).
    #[arg(long, default_value = "{}")]
    pub context: String,
    /// Compile for this environment (its per-environment kill switches).
    #[arg(long)]
    pub env: Option<String>,
    /// Evaluation time in Unix milliseconds (default: now).
    #[arg(long)]
    pub now: Option<i64>,
}
