//! Importers from other flag systems into the native model.

pub(crate) mod flagd;
pub(crate) mod unleash;

/// The format of a flag set's text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagFormat {
    /// The native model, YAML or JSON.
    #[default]
    Native,
    /// Unleash client features (`{"version", "features", "segments"}`) or delta events.
    Unleash,
    /// A flagd flag definition (`{"flags": {...}, "$evaluators": {...}}`).
    Flagd,
}
