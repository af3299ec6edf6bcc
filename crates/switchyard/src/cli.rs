//! Command-line arguments.

mod flags;
pub use flags::*;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Progressive delivery in one binary.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about, long_about = None)]
pub struct Cli {
    /// URL of the daemon's API [default: the config file's `server`, else
    /// http://127.0.0.1:7070].
    #[arg(long, global = true, env = "SWITCHYARD_SERVER")]
    pub server: Option<String>,
    /// Output format of read commands.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Colors in logs: `auto` when stderr is a terminal and `NO_COLOR` is not set.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    /// Whether to write escape codes to a stream: `auto` only for a person at a terminal
    /// (https://no-color.org), never in a log file or a CI job's output.
    pub fn enabled(self, terminal: bool) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the control plane (REST API, controller, tables) and a local proxy beside it.
    Serve(ServeArgs),
    /// Run a proxy: serve the apps' listeners from the control plane's tables, keep serving
    /// the last one while the control plane is away.
    Proxy(ProxyArgs),
    /// The proxies following the control plane: the version each serves, its listeners.
    Proxies,
    /// Print a shell completion script: `source <(switchyard completions bash)`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Apply manifests (a file or every .yaml/.yml of a directory), all or nothing.
    Apply(FileArgs),
    /// Check manifests without applying them.
    Validate(ValidateArgs),
    /// List the apps (`get apps`), or show an app's rollout as a tree (`get rollout APP`).
    Get {
        #[arg(value_enum)]
        what: GetWhat,
        /// The app (for `get rollout`).
        #[arg(required_if_eq("what", "rollout"))]
        name: Option<String>,
        /// Follow the rollout live until it ends; the exit code is 0 when it succeeded, 1
        /// otherwise.
        #[arg(long, short)]
        watch: bool,
    },
    /// Ship a new version of an app (its first version goes straight to 100%).
    Deploy(DeployArgs),
    /// Release a version through a pipeline's stages, or to one app once its deployment
    /// windows let it (a deploy that waits instead of being refused).
    Release {
        /// A pipeline's name, or an app's.
        name: String,
        version: String,
        /// Follow the run until it ends; the exit code is 0 when it succeeded, 1 otherwise.
        #[arg(long, short)]
        watch: bool,
    },
    /// The notification outbox: what each notifier was sent, what waits for a retry, what was
    /// given up and why.
    Notifications {
        /// Only `pending`, `delivered` or `failed` ones.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Pipeline runs: `status NAME [--watch]`, `runs`, `approve`, `override-window`, `cancel`.
    Pipeline {
        #[command(subcommand)]
        command: PipelineCommand,
    },
    /// Rollout status.
    Rollout {
        #[command(subcommand)]
        command: RolloutCommand,
    },
    /// Skip the current step of the app's rollout (or all of them with --full).
    Promote {
        app: String,
        #[arg(long)]
        full: bool,
        /// Return when the rollout ends; the exit code says how (0 succeeded, 1 not).
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        seen: Precondition,
    },
    /// Send all traffic back to stable and stop the canary.
    Abort {
        app: String,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        seen: Precondition,
    },
    /// Hold the app's rollout where it is (for `--duration`, or until resumed).
    Pause {
        app: String,
        /// Resume by itself after this long (e.g. `10m`).
        #[arg(long)]
        duration: Option<String>,
        #[command(flatten)]
        seen: Precondition,
    },
    /// Continue a paused rollout, optionally with a new weight or analysis interval.
    Resume {
        app: String,
        /// Canary weight to continue with (0-100).
        #[arg(long)]
        weight: Option<u8>,
        /// Analysis interval to continue with (e.g. `30s`).
        #[arg(long)]
        interval: Option<String>,
        #[command(flatten)]
        seen: Precondition,
    },
    /// Open the approval gate the app's rollout waits at.
    Approve {
        app: String,
        /// Why (required unless the gate says `requireReason: false`).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        seen: Precondition,
    },
    /// Start the last aborted, rolled-back or failed rollout again with the same release.
    Retry { app: String },
    /// Go back to the release the last rollout replaced (instant while it is still warm).
    Undo { app: String },
    /// Abort the app's rollout and refuse new ones until `unfreeze`.
    EmergencyStop {
        app: String,
        #[arg(long)]
        reason: String,
    },
    /// Lift an emergency stop.
    Unfreeze { app: String },
    /// Every measurement of the app's latest rollout, with the condition that judged it.
    Analysis { app: String },
    /// The app's event log.
    History {
        app: String,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Run the whole story on this machine: a healthy canary promoted, a broken one rolled back.
    Demo(DemoArgs),
    /// The demo service: serves `/`, `/health`, `/ready` with configurable errors and latency.
    DemoApp(DemoAppArgs),
    /// Statistics from the command line: reads one JSON object, prints one.
    Stats {
        /// ttest, sequential, proportions, mann-whitney, srm, adjust, cuped, ratio, bayes,
        /// sample-size, power, canary-judge.
        method: String,
        /// Read the input from this file instead of stdin.
        #[arg(long)]
        input: Option<PathBuf>,
    },
    /// Automatic rollbacks: `incident list`, `incident show ID [--out report.html]`.
    Incident {
        #[command(subcommand)]
        command: IncidentCommand,
    },
    /// Prometheus alerting rules and a Grafana dashboard for what `/metrics` exposes.
    Observability {
        #[command(subcommand)]
        command: ObservabilityCommand,
    },
    /// Feature flags: list, get, apply, enable/disable, rollout, audit; `eval` needs no daemon.
    Flags {
        #[command(subcommand)]
        command: FlagsCommand,
    },
    /// Experiments: list, results, the HTML report, stop; send a batch of events.
    Experiment {
        #[command(subcommand)]
        command: ExperimentCommand,
    },
    /// Simulations.
    Sim {
        #[command(subcommand)]
        command: SimCommand,
    },
    /// The audit log: every change, who made it, from where and why; `--verify` checks its
    /// hash chain (and the flag audit log's).
    Audit(AuditArgs),
    /// Write a backup of the state store (consistent while the daemon runs): every table as
    /// JSON lines, restorable into SQLite or PostgreSQL.
    Backup {
        #[command(flatten)]
        store: StoreArgs,
        /// The backup file to write; refused if it exists.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Restore a backup into an empty state store (a new data directory, or an empty
    /// PostgreSQL database), all or nothing.
    Restore {
        #[command(flatten)]
        store: StoreArgs,
        /// The backup file to read.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
    },
    /// Move the data directory's SQLite state, with its whole history, into an empty
    /// PostgreSQL database. Stop the daemon first; start it again with --database-url.
    MigrateStore {
        /// The data directory holding switchyard.db.
        #[arg(long, env = "SWITCHYARD_DATA_DIR", default_value = ".switchyard")]
        data_dir: PathBuf,
        /// The PostgreSQL database to move it to: postgres://user:password@host:port/database.
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// API tokens: create (shown once), list, revoke. Admins only.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Run a command and stop it when the daemon's pipe on stdin closes (used by the runtime).
    #[command(hide = true)]
    Supervise {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Our statistical judge against Argo-, Flagger- and Kayenta-style rules on identical
    /// simulated canary traffic, with an A/A twin of every run for false rollbacks.
    Canary(SimCanaryArgs),
}

#[derive(Debug, Args)]
pub struct SimCanaryArgs {
    /// Baseline error probability per request.
    #[arg(long, default_value_t = 0.01)]
    pub baseline_error: f64,
    /// Canary error probability per request.
    #[arg(long, default_value_t = 0.05)]
    pub canary_error: f64,
    /// Baseline median latency in milliseconds.
    #[arg(long, default_value_t = 100.0)]
    pub baseline_latency_ms: f64,
    /// Canary median latency in milliseconds.
    #[arg(long, default_value_t = 100.0)]
    pub canary_latency_ms: f64,
    /// Log-normal spread (sigma) of both releases' latencies.
    #[arg(long, default_value_t = 0.5)]
    pub latency_sigma: f64,
    /// Total requests per second.
    #[arg(long, default_value_t = 100.0)]
    pub rps: f64,
    /// Canary share of traffic, percent.
    #[arg(long, default_value_t = 10.0)]
    pub weight: f64,
    /// Length of each run, seconds.
    #[arg(long, default_value_t = 600)]
    pub duration: u64,
    /// Repetitions (each with an A/A twin).
    #[arg(long, default_value_t = 1000)]
    pub runs: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Our judge's error-rate margin: the absolute allowance added to maxIncrease × the
    /// baseline's error rate.
    #[arg(long, default_value_t = switchyard_analysis::judge::spec::DEFAULT_MARGIN)]
    pub margin: f64,
    /// Our judge's maxIncrease: the tolerated ratio canary / baseline of error rates (with
    /// margin) and latencies.
    #[arg(long, default_value_t = switchyard_analysis::judge::spec::DEFAULT_MAX_INCREASE)]
    pub max_increase: f64,
    /// Our judge's alpha.
    #[arg(long, default_value_t = switchyard_analysis::judge::spec::DEFAULT_ALPHA)]
    pub alpha: f64,
    /// The adaptive canary's largest weight, percent.
    #[arg(long, default_value_t = 20.0)]
    pub max_weight: f64,
    /// The adaptive canary's smallest (and first) weight, percent.
    #[arg(long, default_value_t = 1.0)]
    pub min_weight: f64,
    /// The adaptive canary's error budget: extra failed requests before its verdict.
    #[arg(long, default_value_t = switchyard_core::manifest::app::AdaptiveStep::DEFAULT_ERROR_BUDGET)]
    pub error_budget: f64,
    /// Seconds between the adaptive canary's looks (the other judges look every second).
    #[arg(long, default_value_t = 1)]
    pub adaptive_interval: u64,
    /// Traffic swings between (1 - d) and (1 + d) x rps over a 30-minute cycle.
    #[arg(long, default_value_t = 0.0)]
    pub diurnal: f64,
    /// Shared error bursts per hour: half of both releases' requests fail for 20 s.
    #[arg(long, default_value_t = 0.0)]
    pub bursts: f64,
    /// Share of both releases' requests that take 20 x their latency.
    #[arg(long, default_value_t = 0.0)]
    pub tail_share: f64,
    /// Print `{"judges":[...],"config":{...}}` (with `--grid`, `{"cells":[...]}` of those).
    #[arg(long)]
    pub json: bool,
    /// Run the scenario grid instead of one scenario: 20, 100 and 1000 rps; canary at 5 and
    /// 20 %; baseline errors 0.1, 1 and 5 % with the canary at 2× and 5×; a latency ×1.5 cell,
    /// the same with a heavy tail, and 1 % -> 2 % with error bursts and with diurnal traffic.
    /// The error, latency, rps, weight, tail, burst and diurnal flags are set per cell; the
    /// others apply.
    #[arg(long)]
    pub grid: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GetWhat {
    Apps,
    Rollout,
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// The app's latest rollout; `--watch` follows it live until it ends.
    Status {
        app: String,
        #[arg(long, short)]
        watch: bool,
    },
}

/// Which state store a command opens directly (not through the daemon's API).
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The data directory whose switchyard.db holds the state.
    #[arg(long, env = "SWITCHYARD_DATA_DIR", default_value = ".switchyard")]
    pub data_dir: PathBuf,
    /// The PostgreSQL database holding the state instead (as `serve --database-url`).
    #[arg(
        long,
        env = "SWITCHYARD_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where the state (switchyard.db) and instance logs live.
    #[arg(long, env = "SWITCHYARD_DATA_DIR", default_value = ".switchyard")]
    pub data_dir: PathBuf,
    /// Keep the state in PostgreSQL instead of switchyard.db:
    /// postgres://user:password@host:port/database (docs/store.md). The data directory still
    /// holds instance logs.
    #[arg(
        long,
        env = "SWITCHYARD_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// With --database-url: how long the leader lease lasts unless renewed; a dead leader is
    /// replaced within about this long.
    #[arg(
        long,
        env = "SWITCHYARD_LEASE_TTL",
        default_value = "10s",
        value_name = "DURATION"
    )]
    pub lease_ttl: String,
    /// With --database-url: the URL of this daemon's API that the other replicas forward
    /// requests to while it leads (default http://<--listen>).
    #[arg(long, env = "SWITCHYARD_ADVERTISE_URL", value_name = "URL")]
    pub advertise_url: Option<String>,
    /// Address of the REST API.
    #[arg(long, env = "SWITCHYARD_LISTEN", default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
    /// Keep every ingested experiment event (not only its idempotency key and the aggregates).
    #[arg(long, env = "SWITCHYARD_KEEP_RAW_EVENTS")]
    pub keep_raw_events: bool,
    /// The operator's policy file: which programs may run, which environment variables are
    /// refused, which hosts may be called (docs/security.md). Without one, nothing runs and
    /// calls reach loopback only.
    #[arg(long, env = "SWITCHYARD_POLICY", value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Serve the API without tokens: every caller may do everything. Refused unless --listen is
    /// a loopback address.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// A host name the API answers to besides `localhost` and IP addresses (repeatable); other
    /// `Host` headers are refused (DNS rebinding).
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// An origin whose browser pages may call the API (repeatable), e.g. `https://ops.example`.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// An origin whose browser pages may call OFREP and the flag stream (repeatable).
    #[arg(long = "ofrep-cors-origin", value_name = "ORIGIN")]
    pub ofrep_cors_origins: Vec<String>,
    /// Run the control plane alone: no local proxy (proxies join with `switchyard proxy`).
    #[arg(long, env = "SWITCHYARD_NO_PROXY")]
    pub no_proxy: bool,
    /// Threads of the local proxy (see `switchyard proxy --workers`).
    #[arg(long, env = "SWITCHYARD_PROXY_WORKERS")]
    pub proxy_workers: Option<usize>,
    /// The kubeconfig of the cluster `kubernetes` apps run in (default: as kubectl finds it,
    /// `$KUBECONFIG`, `~/.kube/config` or the pod's service account).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// How long releases keep serving after the daemon went away without stopping them
    /// (SIGTERM, a crash), for the next start to adopt them; then they stop.
    #[arg(long, env = "SWITCHYARD_ADOPT_WITHIN", default_value = "60s")]
    pub adopt_within: String,
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// The control plane's API.
    #[arg(
        long,
        env = "SWITCHYARD_CONTROL",
        default_value = "http://127.0.0.1:7070"
    )]
    pub control: String,
    /// This proxy's id: the name of its `proxy` token (`switchyard token create --role proxy`).
    #[arg(long)]
    pub id: String,
    /// Where the last table is cached (and the handover socket and pid file live).
    #[arg(
        long,
        env = "SWITCHYARD_PROXY_STATE_DIR",
        default_value = ".switchyard-proxy"
    )]
    pub state_dir: PathBuf,
    /// A file holding the token (read again when the control plane refuses it); otherwise
    /// SWITCHYARD_TOKEN.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Time between reports to the control plane (changes are reported at once).
    #[arg(long, default_value = "1s")]
    pub report_interval: String,
    /// How long requests may finish when the proxy stops or hands over.
    #[arg(long, default_value = "10s")]
    pub grace: String,
    /// Serve this proxy's Prometheus metrics (`/metrics`) on this address.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Take over the listening sockets of the proxy serving from the same state directory
    /// (restart or upgrade without refusing a connection).
    #[arg(long)]
    pub takeover: bool,
    /// Worker threads that accept and serve connections, each on its own (1: the proxy's
    /// one thread serves everything); default: one per CPU.
    #[arg(long, env = "SWITCHYARD_PROXY_WORKERS")]
    pub workers: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once and stored only as a hash.
    Create {
        /// Who it stands for: the actor of everything done with it.
        #[arg(long)]
        name: String,
        /// viewer, operator, deployer, flag-editor, admin or sdk.
        #[arg(long)]
        role: String,
        /// Limit it to this app (repeatable); every app otherwise.
        #[arg(long = "app", value_name = "APP")]
        apps: Vec<String>,
        /// Limit it to this environment (repeatable); an sdk token needs exactly one.
        #[arg(long = "env", value_name = "ENV")]
        environments: Vec<String>,
    },
    /// Every token, revoked ones included (never a secret).
    List,
    /// Revoke a token by id; requests with it fail from now on.
    Revoke { id: String },
}

#[derive(Debug, Args)]
pub struct FileArgs {
    /// Manifest file or directory.
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub files: FileArgs,
    /// Check the files alone, without asking the daemon (references to templates applied
    /// earlier cannot be checked then).
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    pub app: String,
    #[arg(long)]
    pub version: String,
    /// Extra environment variable for the release's processes (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Instances of the release (process runtime).
    #[arg(long)]
    pub instances: Option<u32>,
    /// Address of the release (static runtime; repeatable).
    #[arg(long = "address")]
    pub addresses: Vec<SocketAddr>,
    /// Command of the release instead of the manifest's (process runtime). Takes the rest of
    /// the line, so put it last.
    #[arg(long, num_args = 1.., allow_hyphen_values = true)]
    pub command: Option<Vec<String>>,
    /// Return when the rollout ends; the exit code says how (0 succeeded, 1 rolled back,
    /// aborted or failed).
    #[arg(long)]
    pub wait: bool,
    /// Deploy even though a deployment window holds the app now (admin only; the reason is
    /// audited).
    #[arg(long, value_name = "REASON")]
    pub override_window: Option<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Shorter pauses and analysis: finishes in well under a minute.
    #[arg(long)]
    pub fast: bool,
    /// Print a machine-readable summary instead of the live view.
    #[arg(long)]
    pub json: bool,
    /// Requests per second of the built-in load generator.
    #[arg(long, default_value_t = 200)]
    pub rps: u32,
}

#[derive(Debug, Args)]
pub struct DemoAppArgs {
    #[arg(long, env = "PORT")]
    pub port: u16,
    /// The address to listen on.
    #[arg(long, env = "DEMO_HOST", default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    #[arg(long, env = "SWITCHYARD_VERSION", default_value = "v1")]
    pub version: String,
    /// Share of requests to `/` answered 500 (0..1), at random.
    #[arg(long, env = "DEMO_ERROR_RATE", default_value_t = 0.0)]
    pub error_rate: f64,
    /// Answer every N-th request to `/` with 500 (a schedule, not chance: tests that must not
    /// depend on luck use it). 0: never.
    #[arg(
        long,
        env = "DEMO_ERROR_EVERY",
        default_value_t = 0,
        conflicts_with = "error_rate"
    )]
    pub error_every: u64,
    /// Added latency of `/` in milliseconds.
    #[arg(long, env = "DEMO_LATENCY_MS", default_value_t = 0)]
    pub latency_ms: u64,
}

/// `switchyard experiment ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ExperimentCommand {
    /// Every applied experiment and whether it runs.
    List,
    /// One experiment's summary and manifest.
    Get { key: String },
    /// Per metric and variant: estimate, lift with interval, p-value or chance to win, the SRM
    /// check, guardrails and the recommendation.
    Results { key: String },
    /// Write the self-contained HTML report (plots as inline SVG).
    Report {
        key: String,
        /// Where to write it.
        #[arg(long, default_value = "report.html")]
        out: PathBuf,
    },
    /// Stop an experiment: everyone gets control from now on.
    Stop {
        key: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Send a batch of events (`{"events": [...]}`) from a JSON file.
    Events {
        #[arg(long, short = 'f')]
        file: PathBuf,
    },
}

/// Which rollout, at which step, an operator command is meant for. Without `--rollout` and
/// `--step`, the command is meant for the rollout as the CLI reads it just before sending (its
/// step too, except for `abort`); the daemon refuses it (409 `stale_command`) if the rollout
/// moved on in between.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Precondition {
    /// The rollout id the command is meant for (as `rollout status` shows it).
    #[arg(long, conflicts_with = "force")]
    pub rollout: Option<i64>,
    /// The step the command is meant for, counted from 1 (the number after `step` in
    /// `rollout status`).
    #[arg(long, conflicts_with = "force", value_parser = clap::value_parser!(u64).range(1..))]
    pub step: Option<u64>,
    /// Apply the command to whatever rollout is in progress, at whatever step.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this app's events.
    #[arg(long)]
    pub app: Option<String>,
    /// Only this actor's (a token's name, `controller`, `policy`, ...).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only events of this kind (repeatable): rollout_started, promoted, token_created, ...
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<String>,
    /// At most this many, the newest.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Check the hash chains instead of listing; exits 1 when they do not verify.
    #[arg(long)]
    pub verify: bool,
}

#[derive(Debug, Subcommand)]
pub enum ObservabilityCommand {
    /// Write `alert-rules.yaml` (Prometheus alerting rules) and `grafana-dashboard.json` into a
    /// directory (made if missing); needs no daemon.
    Export {
        /// Where to write the files.
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// The latest run of a pipeline (or of an app's release): stages, waves, their rollouts
    /// and what holds them.
    Status {
        name: String,
        /// Follow the run until it ends; the exit code is 0 when it succeeded, 1 otherwise.
        #[arg(long, short)]
        watch: bool,
    },
    /// The most recent runs of every pipeline and release, newest first.
    Runs {
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Approve the stage that awaits an approval (the stage's role or above).
    Approve {
        name: String,
        #[arg(long)]
        reason: String,
        /// The stage; the first one awaiting an approval by default.
        #[arg(long)]
        stage: Option<String>,
    },
    /// Let the stage a deployment window holds start now (admin only; audited).
    OverrideWindow {
        name: String,
        #[arg(long)]
        reason: String,
    },
    /// End the run in progress: nothing is undone, rollouts in progress go on.
    Cancel {
        name: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Every release Switchyard rolled back by itself, newest first.
    List,
    /// One incident: what decided and why, the traffic the release took, what to look at next;
    /// `--out FILE` writes its self-contained HTML report.
    Show {
        id: i64,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}
