//! switchyard-server.
