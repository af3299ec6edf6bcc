//! The last table a proxy applied, on disk, so that a restarted proxy serves at once, with or
//! without its control plane.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use switchyard_core::AppName;
use switchyard_core::dataplane::AppTable;

/// File name of the cached table in the state directory.
pub const TABLE_FILE: &str = "table.json";

/// What a proxy serves: every app's table, and the version they are of.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub generation: u64,
    pub version: u64,
    pub apps: BTreeMap<AppName, AppTable>,
}

/// The table file of `state_dir`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(TABLE_FILE)
}

/// The cached table; `Ok(None)` when there is none.
///
/// # Errors
/// The file exists but cannot be read or is not a table (it names the file and the position).
pub fn load(state_dir: &Path) -> anyhow::Result<Option<Applied>> {
    let path = path(state_dir);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("while reading {}", path.display())),
    };
    let applied: Applied = serde_json::from_slice(&text).with_context(|| {
        format!(
            "{} is not a cached table (move it away to start from the control plane)",
            path.display()
        )
    })?;
    Ok(Some(applied))
}

/// Writes `applied` so that a crash at any point leaves the previous file or the new one whole:
/// a temporary file, synced, renamed over the old one, and the directory synced.
///
/// # Errors
/// The state directory cannot be written.
pub fn store(state_dir: &Path, applied: &Applied) -> anyhow::Result<()> {
    let path = path(state_dir);
    let tmp = state_dir.join(format!("{TABLE_FILE}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        serde_json::to_writer(&mut file, applied).map_err(std::io::Error::other)?;
        file.flush()?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(state_dir)?.sync_all()
    };
    write().with_context(|| format!("while writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_table_loads_back_and_a_broken_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let applied = Applied {
            generation: 7,
            version: 3,
            apps: BTreeMap::new(),
        };
        store(dir.path(), &applied).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(applied));
        std::fs::write(path(dir.path()), "{\"generation\": 1,").unwrap();
        let err = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(err.contains("table.json is not a cached table"), "{err}");
        assert!(err.contains("line 1"), "{err}");
    }
}
