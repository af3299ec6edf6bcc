//! switchyard-flags.
