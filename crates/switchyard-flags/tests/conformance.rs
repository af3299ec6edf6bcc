//! The crate's one integration-test binary: conformance vectors and properties.
#![allow(clippy::unwrap_used)]

mod conformance {
    mod allocations;
    mod flagd;
    mod flagd_differential;
    mod flagd_reference;
    mod flagd_testbed;
    mod native;
    mod properties;
    mod unleash_export;
    mod unleash_spec;
}
