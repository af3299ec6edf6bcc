//! One revision of the flag set, compiled for every environment it names.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use switchyard_flags::{CompiledFlags, FlagError, FlagSet, UnleashExport};

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
    /// The set as Unleash client features, made on the first SDK poll: the base one for every
    /// environment no flag names, one per named environment.
    unleash_base: OnceLock<UnleashExport>,
    unleash_environments: HashMap<String, OnceLock<UnleashExport>>,
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
        let mut unleash_environments = HashMap::with_capacity(names.len());
        for name in names {
            environments.insert(name.clone(), set.compile_for_environment(name)?);
            unleash_environments.insert(name.clone(), OnceLock::new());
        }
        Ok(LiveFlags {
            revision,
            set,
            base,
            environments,
            unleash_base: OnceLock::new(),
            unleash_environments,
        })
    }

    /// The plan to evaluate in `environment`. An environment no flag names is served the flags'
    /// own kill switches, which is what compiling for it would give.
    pub fn compiled(&self, environment: &str) -> &CompiledFlags {
        self.environments.get(environment).unwrap_or(&self.base)
    }

    /// The set as Unleash client features for `environment`, exported once per revision and
    /// environment (SDKs poll it). An environment no flag names gets the base export, which is
    /// what exporting for it would give.
    pub fn unleash(&self, environment: &str) -> &UnleashExport {
        self.unleash_environments
            .get(environment)
            .unwrap_or(&self.unleash_base)
            .get_or_init(|| self.set.to_unleash(environment))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unleash_export_is_made_once_per_environment_and_follows_its_kill_switch() {
        let set = FlagSet::from_native_yaml(
            "flags:\n  - key: beta\n    type: boolean\n    enabled: false\n    environments: {staging: {enabled: true}}\n    variants: {on: true, off: false}\n    defaultVariant: on\n",
        )
        .unwrap();
        let live = LiveFlags::build(1, set).unwrap();
        let enabled = |environment: &str| live.unleash(environment).features[0]["enabled"].clone();
        assert_eq!(enabled("staging"), true);
        assert_eq!(enabled("production"), false);
        // Environments no flag names share the base export, made once.
        assert!(std::ptr::eq(live.unleash("production"), live.unleash("qa")));
        assert!(std::ptr::eq(
            live.unleash("staging"),
            live.unleash("staging")
        ));
    }
}
