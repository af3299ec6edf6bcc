//! Shared by the targets: compile whatever parsed and evaluate every flag once.

use switchyard_flags::{EvaluationContext, FlagSet, Timestamp};

pub fn compile_and_evaluate(set: &FlagSet) {
    if let Ok(flags) = set.compile() {
        let context = EvaluationContext::new()
            .with_targeting_key("fuzz")
            .with_attribute("email", "a@b.c")
            .with_attribute("version", "1.2.3")
            .with_attribute("remoteAddress", "10.0.0.1");
        for details in flags.evaluate_all(&context, Timestamp::from_unix_millis(1_700_000_000_000)) {
            let _ = serde_json::to_string(&details);
        }
    }
}
