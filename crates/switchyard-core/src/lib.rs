//! switchyard-core.
