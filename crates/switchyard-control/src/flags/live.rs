//! One revision of the flag set, compiled for every environment it names.

use std::collections::{BTreeSet, HashMap};

use switchyard_flags::{CompiledFlags, FlagError, FlagSet};

/// The environment served when a request names none.
pub const DEFAULT_ENVIRONMENT: &str = "production";

/// An immutable, compiled revision. Swapped whole on every change.
#[derive(Debug)]
pub struct LiveFlags {
    /// The audit revision this set reflects.
    pub revision: i64,
    /// The set as stored.
    pub set: FlagSet,
    /// Compiled with each flag's own `enabled`: what every environment without an entry sees.
    base: CompiledFlags,
    /// Compiled for each environment some flag has an entry for.
    environments: HashMap<String, CompiledFlags>,
}

impl LiveFlags {
    /// Compiles `set` once, and once more per environment named in any flag's `environments`.
    ///
    /// # Errors
    /// The first invalid flag or segment, naming it and the field path.
    pub fn build(revision: i64, set: FlagSet) -> Result<LiveFlags, FlagError> {
        let base = set.compile()?;
        let names: BTreeSet<&String> = set
            .flags
            .iter()
            .flat_map(|flag| flag.environments.keys())
            .collect();
        let mut environments = HashMap::with_capacity(names.len());
        for name in names {
            environments.insert(name.clone(), set.compile_for_environment(name)?);
        }
        Ok(LiveFlags {
            revision,
            set,
            base,
            environments,
        })
    }

    /// The plan to evaluate in `environment`. An environment no flag names is served the flags'
    /// own kill switches, which is what compiling for it would give.
    pub fn compiled(&self, environment: &str) -> &CompiledFlags {
        self.environments.get(environment).unwrap_or(&self.base)
    }
}
