//! switchyard-store.
