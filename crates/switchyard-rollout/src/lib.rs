//! switchyard-rollout.
