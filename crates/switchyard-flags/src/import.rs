//! Importers from other flag systems into the native model.

pub(crate) mod flagd;
pub(crate) mod unleash;
