//! flagd JsonLogic targeting: the input is one targeting expression, wrapped in a flag.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use switchyard_flags::FlagSet;

fuzz_target!(|data: &[u8]| {
    let Ok(targeting) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let document = serde_json::json!({"flags": {"f": {
        "state": "ENABLED", "variants": {"a": "a", "b": "b", "true": "t"}, "defaultVariant": "a",
        "targeting": targeting
    }}});
    if let Ok(set) = FlagSet::from_flagd_json(&document.to_string()) {
        common::compile_and_evaluate(&set);
    }
});
