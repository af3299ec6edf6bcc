//! switchyard-app.
