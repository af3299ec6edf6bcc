//! switchyard-runtime.
