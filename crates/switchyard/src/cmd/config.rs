//! Where the CLI finds the daemon and its token: `--server` / `SWITCHYARD_SERVER` and
//! `SWITCHYARD_TOKEN` first, then the config file (`SWITCHYARD_CONFIG`, else
//! `$XDG_CONFIG_HOME/switchyard/config.yaml`, else `~/.config/switchyard/config.yaml`):
//!
//! ```yaml
//! server: http://127.0.0.1:7070
//! token: sy_...            # or
//! tokenFile: /path/to/.switchyard/admin.token
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// The API when nothing names another.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7070";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConfigFile {
    server: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
}

/// The daemon to talk to and the token to show it.
#[derive(Debug, Clone)]
pub struct Target {
    pub server: String,
    pub token: Option<String>,
}

/// Resolves the target from the flag, the environment and the config file.
///
/// # Errors
/// A config file that cannot be read or parsed, or a token file that cannot be read.
pub fn target(server_flag: Option<String>) -> anyhow::Result<Target> {
    let file = match config_path() {
        Some(path) if path.exists() => read(&path)?,
        _ => ConfigFile::default(),
    };
    let token = match std::env::var("SWITCHYARD_TOKEN") {
        Ok(t) if !t.trim().is_empty() => Some(t.trim().to_owned()),
        _ => match (file.token, file.token_file) {
            (Some(t), _) => Some(t),
            (None, Some(path)) => Some(
                std::fs::read_to_string(&path)
                    .with_context(|| format!("while reading the token file {}", path.display()))?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        },
    };
    Ok(Target {
        server: server_flag
            .or(file.server)
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned()),
        token,
    })
}

fn config_path() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("SWITCHYARD_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("switchyard").join("config.yaml"))
}

fn read(path: &Path) -> anyhow::Result<ConfigFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("while reading the config file {}", path.display()))?;
    serde_yaml_ng::from_str(&text)
        .with_context(|| format!("the config file {} is not valid", path.display()))
}
