//! switchyard-proxy.
