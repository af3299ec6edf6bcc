//! The policy file:
//!
//! ```yaml
//! run:                       # programs that may run (process runtimes, command providers)
//!   - /usr/local/bin/shop    # an absolute path
//!   - switchyard             # a name, looked up on the daemon's PATH when the file loads
//!   - {under: /opt/apps}     # anything below a directory
//! env:
//!   deny: [AWS_*, MY_SECRET] # refused names, on top of the built-in list (`*` at the end)
//! reach:                     # hosts webhooks and metric providers may call
//!   - 127.0.0.0/8            # an address block
//!   - prometheus.internal    # a host name, exactly
//!   - "*.svc.cluster.local"  # every name ending so
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why the policy file cannot be used, with `file:line:column: path:` when known.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    #[error("cannot read the policy file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}{}: {path}: {message}", file.display(), at.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    Invalid {
        file: PathBuf,
        at: Option<(usize, usize)>,
        path: String,
        message: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    #[serde(default)]
    pub(crate) run: Vec<RawRun>,
    #[serde(default)]
    pub(crate) env: RawEnv,
    #[serde(default)]
    pub(crate) reach: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawRun {
    Program(String),
    Under(RawUnder),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUnder {
    pub(crate) under: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEnv {
    #[serde(default)]
    pub(crate) deny: Vec<String>,
}

/// Parses the file's text; `file` names it in errors.
pub(crate) fn parse(text: &str, file: &Path) -> Result<RawPolicy, PolicyFileError> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.inner().location().map(|l| (l.line(), l.column()));
        let mut message = e.inner().to_string();
        if let Some(i) = message.find(" at line ") {
            message.truncate(i);
        }
        PolicyFileError::Invalid {
            file: file.to_path_buf(),
            at,
            path: e.path().to_string(),
            message,
        }
    })
}
