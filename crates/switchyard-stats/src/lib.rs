//! switchyard-stats.
