//! Exporters from the native model to other flag systems (native YAML/JSON is in `native.rs`).

pub(crate) mod unleash;
