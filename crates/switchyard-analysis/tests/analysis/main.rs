//! Integration tests of switchyard-analysis: one test binary, one module per area.

#![allow(clippy::unwrap_used)]

mod providers;
