//! switchyard-experiments: the pure engine behind A/B experiments.
