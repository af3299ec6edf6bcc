//! Unleash client-features and delta documents.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use switchyard_flags::FlagSet;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(set) = FlagSet::from_unleash_json(text) {
        common::compile_and_evaluate(&set);
        // Export must always produce something that loads back.
        if let Ok(yaml) = set.to_native_yaml() {
            assert!(FlagSet::from_native_yaml(&yaml).is_ok(), "exported YAML does not load: {yaml}");
        }
    }
});
