//! Traffic experiments end to end: the proxy splits users between two releases.
