//! switchyard-analysis.
