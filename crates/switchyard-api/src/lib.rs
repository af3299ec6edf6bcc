//! switchyard-api.
