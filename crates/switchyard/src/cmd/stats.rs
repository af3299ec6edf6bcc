//! `switchyard stats METHOD`: one JSON object in, one out; errors as JSON with exit code 1.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

pub fn run(method: &str, input: Option<&Path>) -> ExitCode {
    let text = match input {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
        None => {
            let mut buf = String::new();
            std::io::stdin()
                .read_to_string(&mut buf)
                .map(|_| buf)
                .map_err(|e| format!("cannot read stdin: {e}"))
        }
    };
    let result = text
        .and_then(|t| {
            serde_json::from_str::<serde_json::Value>(&t)
                .map_err(|e| format!("input is not JSON: {e}"))
        })
        .and_then(|v| switchyard_stats::run_method(method, &v).map_err(|e| e.to_string()));
    match result {
        Ok(value) => {
            outln!("{value}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            outln!(
                "{}",
                serde_json::json!({"error": {"code": "invalid_input", "message": message}})
            );
            ExitCode::FAILURE
        }
    }
}
