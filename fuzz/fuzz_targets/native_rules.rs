//! Native flag documents (YAML and JSON): parse, compile (rule validation), evaluate.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use switchyard_flags::FlagSet;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(set) = FlagSet::from_native_yaml(text) {
        common::compile_and_evaluate(&set);
    }
    if let Ok(set) = FlagSet::from_native_json(text) {
        common::compile_and_evaluate(&set);
    }
});
