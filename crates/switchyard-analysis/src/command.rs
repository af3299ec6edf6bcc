//! A program as a metric provider (`provider: {command: {command: [argv]}}`): run once per
//! measurement, without a shell, in the daemon's working directory and environment plus `env`
//! and the `SWITCHYARD_*` variables below.
//!
//! Success is exit status 0 with a value on the last non-empty line of stdout: a number, or a
//! JSON number, boolean, list of numbers or `null` ("no data"). A non-zero exit is a provider
//! error carrying the end of stderr; a program still running at `timeout` is killed with its
//! whole process group (so `sh -c` scripts do not leave children behind).

use std::process::{Output, Stdio};
use std::sync::Arc;

use switchyard_core::expr::Value;
use switchyard_core::manifest::analysis::{ProviderSpec, ReleaseRole};
use switchyard_policy::Policy;

use crate::json_value::from_json;
use crate::provider::{MeasureError, MeasureRequest, MetricProvider, Observation};

/// Environment variable holding the app's name.
pub const ENV_APP: &str = "SWITCHYARD_APP";
/// Environment variable holding the canary's version.
pub const ENV_CANARY_VERSION: &str = "SWITCHYARD_CANARY_VERSION";
/// Environment variable holding the stable release's version.
pub const ENV_STABLE_VERSION: &str = "SWITCHYARD_STABLE_VERSION";

/// Characters of stderr kept in an error message.
const STDERR_TAIL: usize = 500;

/// Runs the programs of `command` metrics that the operator's policy allows.
#[derive(Debug, Clone)]
pub struct CommandRunner {
    policy: Arc<Policy>,
}

impl CommandRunner {
    pub fn new(policy: Arc<Policy>) -> Self {
        Self { policy }
    }
}

fn provider(reason: String) -> MeasureError {
    MeasureError::Provider { reason }
}

#[async_trait::async_trait]
impl MetricProvider for CommandRunner {
    async fn measure(&self, request: &MeasureRequest<'_>) -> Result<Observation, MeasureError> {
        let ProviderSpec::Command(spec) = request.provider else {
            return Err(MeasureError::Unsupported {
                provider: request.provider.kind(),
            });
        };
        let vars = request.template_vars(ReleaseRole::Canary);
        let program = spec.command.program().render(&vars);
        self.policy.check_program(&program)?;
        for name in spec.env.keys() {
            self.policy.check_env(name.as_str())?;
        }
        let mut command = tokio::process::Command::new(&program);
        command
            .args(spec.command.args().iter().map(|a| a.render(&vars)))
            .env(ENV_APP, vars.app)
            .env(ENV_CANARY_VERSION, vars.canary_version)
            .env(ENV_STABLE_VERSION, vars.stable_version)
            .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.render(&vars))))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        let child = command
            .spawn()
            .map_err(|e| provider(format!("cannot start `{program}`: {e}")))?;
        let group = child.id();
        let timeout = spec.timeout();
        match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(Ok(output)) => Ok(Observation {
                result: value_of(&program, &output)?,
                baseline: None,
                samples: None,
            }),
            Ok(Err(e)) => Err(provider(format!("waiting for `{program}`: {e}"))),
            Err(_) => {
                // Dropping the child killed the program itself; its children share its process
                // group (`process_group(0)` made the program the leader).
                kill_group(group);
                Err(provider(format!(
                    "`{program}` did not finish within {} and was killed",
                    switchyard_core::duration::format(timeout)
                )))
            }
        }
    }
}

fn kill_group(leader: Option<u32>) {
    let Some(pid) = leader.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    // ESRCH (nothing left to kill) is the expected outcome when the program had no children.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// The value a finished program reported.
fn value_of(program: &str, output: &Output) -> Result<Value, MeasureError> {
    if !output.status.success() {
        return Err(provider(format!(
            "`{program}` failed ({}): {}",
            output.status,
            stderr_tail(&output.stderr)
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(line) = stdout.lines().map(str::trim).rfind(|l| !l.is_empty()) else {
        return Err(provider(format!(
            "`{program}` printed nothing; expected a number on the last line of stdout"
        )));
    };
    if let Ok(number) = line.parse::<f64>() {
        return Ok(Value::Number(number));
    }
    let what = format!("the last line `{line}` printed by `{program}`");
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(json) => from_json(&json, &what),
        Err(_) => Err(provider(format!("{what} is not a number or a JSON value"))),
    }
}

/// The end of stderr on one line.
fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    if text.is_empty() {
        return "nothing on stderr".to_string();
    }
    let start = text
        .char_indices()
        .rev()
        .nth(STDERR_TAIL - 1)
        .map_or(0, |(i, _)| i);
    let tail = text[start..].lines().collect::<Vec<_>>().join(" | ");
    if start > 0 {
        format!("…{tail}")
    } else {
        tail
    }
}
