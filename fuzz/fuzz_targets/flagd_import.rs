//! Whole flagd flag-definition documents (flags, `$evaluators`, metadata).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use switchyard_flags::FlagSet;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(set) = FlagSet::from_flagd_json(text) {
        common::compile_and_evaluate(&set);
    }
});
