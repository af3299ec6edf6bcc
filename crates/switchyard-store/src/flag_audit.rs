//! The flag audit log's hash chain, as pure functions: the canonical serialisation of an entry,
//! its SHA-256, and the verification of a whole exported chain.
//!
//! Canonical form: a JSON object of every field but `hash` — `actor`, `after`, `at`, `before`,
//! `id`, `key`, `kind`, `prev_hash`, `reason` — with object keys sorted at every depth, no
//! whitespace, strings and numbers as `serde_json` writes them. Sorting makes the hash
//! independent of how the documents were formatted when stored (and of `serde_json`'s
//! `preserve_order` feature, which another crate in the build may turn on).

use std::fmt::Write as _;

use serde_json::Value;
use sha2::{Digest, Sha256};
use switchyard_core::ports::{FlagAuditEntry, FlagAuditProblem, GENESIS_HASH};

/// The canonical serialisation of `entry` without its `hash`.
pub fn canonical(entry: &FlagAuditEntry) -> String {
    let fields = [
        ("actor", Value::String(entry.actor.clone())),
        ("after", entry.after.clone().unwrap_or(Value::Null)),
        ("at", Value::from(entry.at.as_millis())),
        ("before", entry.before.clone().unwrap_or(Value::Null)),
        ("id", Value::from(entry.id)),
        ("key", Value::String(entry.key.clone())),
        ("kind", Value::String(entry.kind.as_str().into())),
        ("prev_hash", Value::String(entry.prev_hash.clone())),
        ("reason", Value::String(entry.reason.clone())),
    ];
    let mut out = String::from("{");
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(&mut out, name);
        out.push(':');
        write_canonical(&mut out, value);
    }
    out.push('}');
    out
}

/// The lowercase hex SHA-256 of [`canonical`].
pub fn entry_hash(entry: &FlagAuditEntry) -> String {
    hex(&Sha256::digest(canonical(entry).as_bytes()))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Checks a chain read oldest first: ids consecutive from 1, each `prev_hash` the previous
/// `hash` (the first [`GENESIS_HASH`]), each `hash` recomputed. Returns every problem found.
pub fn verify_chain(entries: &[FlagAuditEntry]) -> Vec<FlagAuditProblem> {
    let mut problems = Vec::new();
    let mut previous = GENESIS_HASH.to_string();
    let mut expected_id = 1;
    for entry in entries {
        let problem = |message: String| FlagAuditProblem {
            id: Some(entry.id),
            message,
        };
        if entry.id != expected_id {
            problems.push(problem(format!(
                "expected entry {expected_id} here, found {}: entries were removed or reordered",
                entry.id
            )));
        }
        if entry.prev_hash != previous {
            problems.push(problem(format!(
                "prev_hash {} does not match the previous entry's hash {previous}",
                entry.prev_hash
            )));
        }
        let recomputed = entry_hash(entry);
        if entry.hash != recomputed {
            problems.push(problem(format!(
                "content does not match its hash (stored {}, computed {recomputed}): the entry was edited",
                entry.hash
            )));
        }
        previous.clone_from(&entry.hash);
        expected_id = entry.id + 1;
    }
    problems
}

pub(crate) fn write_canonical(out: &mut String, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_canonical(out, &map[key]);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn write_string(out: &mut String, text: &str) {
    out.push_str(&Value::String(text.to_owned()).to_string());
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchyard_core::Timestamp;
    use switchyard_core::ports::FlagObjectKind;

    use super::*;

    fn entry(id: i64, prev_hash: &str, after: Value) -> FlagAuditEntry {
        let mut e = FlagAuditEntry {
            id,
            at: Timestamp::from_millis(1_700_000_000_000),
            actor: "user:ana".into(),
            reason: "launch".into(),
            kind: FlagObjectKind::Flag,
            key: "checkout".into(),
            before: None,
            after: Some(after),
            prev_hash: prev_hash.into(),
            hash: String::new(),
        };
        e.hash = entry_hash(&e);
        e
    }

    fn chain() -> Vec<FlagAuditEntry> {
        let first = entry(1, GENESIS_HASH, json!({"key": "checkout", "enabled": true}));
        let second = entry(2, &first.hash, json!({"enabled": false, "key": "checkout"}));
        vec![first, second]
    }

    #[test]
    fn canonical_form_sorts_keys_at_every_depth() {
        let e = entry(
            1,
            GENESIS_HASH,
            json!({"b": {"z": 1, "a": [2, {"y": 0, "x": 1}]}, "a": "é"}),
        );
        assert_eq!(
            canonical(&e),
            r#"{"actor":"user:ana","after":{"a":"é","b":{"a":[2,{"x":1,"y":0}],"z":1}},"at":1700000000000,"before":null,"id":1,"key":"checkout","kind":"flag","prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","reason":"launch"}"#
        );
        assert_eq!(e.hash.len(), 64);
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert!(verify_chain(&chain()).is_empty());
        assert!(verify_chain(&[]).is_empty());
    }

    #[test]
    fn an_edited_entry_is_detected() {
        let mut c = chain();
        c[0].reason = "nothing to see".into();
        let problems = verify_chain(&c);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].id, Some(1));
        assert!(problems[0].message.contains("edited"));
    }

    #[test]
    fn a_rehashed_edit_breaks_the_link_to_the_next_entry() {
        let mut c = chain();
        c[0].after = Some(json!({"key": "checkout", "enabled": false}));
        c[0].hash = entry_hash(&c[0]);
        let problems = verify_chain(&c);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].id, Some(2));
    }

    #[test]
    fn a_removed_entry_is_detected() {
        let c = chain();
        let problems = verify_chain(&c[1..]);
        assert!(problems.iter().any(|p| p.message.contains("removed")));
    }
}
