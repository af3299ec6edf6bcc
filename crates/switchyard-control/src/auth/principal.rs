//! [`Principal`]: who a request acts as, and the check of an action in a scope.

use std::collections::BTreeSet;

use serde::Serialize;
use switchyard_core::AppName;

use super::role::{Action, Role};

/// The authenticated caller. Every event a request causes names it as the actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// The token's name (`admin`, `alice`, `ci`), or `local` without authentication.
    pub name: String,
    pub role: Role,
    /// The apps it may act on; every app when `None`.
    pub apps: Option<BTreeSet<String>>,
    /// The environments it may act on; every environment when `None`.
    pub environments: Option<BTreeSet<String>>,
    /// The id of the token it authenticated with; `None` without authentication.
    pub token: Option<String>,
}

/// What an action is about.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Whatever the token's scope: the role decides (listing apps, reading flags).
    Any,
    /// Everything at once: tokens, templates, the whole audit log, every flag environment.
    Everything,
    /// One app.
    App(&'a AppName),
    /// One flag environment.
    Environment(&'a str),
}

/// The principal may not do this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} ({role}) may not {action}{where_}")]
pub struct Forbidden {
    pub name: String,
    pub role: Role,
    pub action: &'static str,
    /// ` on app `shop`` and the like; empty when the role is the reason.
    pub where_: String,
}

impl Principal {
    /// A caller on loopback without authentication, when the daemon runs without it: it may
    /// do everything, and events name it `local`.
    pub fn local() -> Self {
        Self {
            name: "local".into(),
            role: Role::Admin,
            apps: None,
            environments: None,
            token: None,
        }
    }

    /// The actor of the events this principal causes.
    pub fn actor(&self) -> &str {
        &self.name
    }

    /// Whether the principal may do `action` in `scope`.
    ///
    /// # Errors
    /// [`Forbidden`], naming the principal, its role, the action and where.
    pub fn authorize(&self, action: Action, scope: Scope<'_>) -> Result<(), Forbidden> {
        let forbidden = |where_: String| Forbidden {
            name: self.name.clone(),
            role: self.role,
            action: action.as_str(),
            where_,
        };
        if !self.role.allows(action) {
            return Err(forbidden(String::new()));
        }
        match scope {
            Scope::Everything if self.apps.is_some() || self.environments.is_some() => Err(
                forbidden(" beyond the apps and environments of its token".into()),
            ),
            Scope::App(app) if !within(self.apps.as_ref(), app.as_str()) => {
                Err(forbidden(format!(" on app `{app}`")))
            }
            Scope::Environment(env) if !within(self.environments.as_ref(), env) => {
                Err(forbidden(format!(" in environment `{env}`")))
            }
            _ => Ok(()),
        }
    }

    /// Whether `app` is in the principal's scope (for filtering lists).
    pub fn sees(&self, app: &str) -> bool {
        within(self.apps.as_ref(), app)
    }

    /// The one environment an SDK key serves, if the principal is limited to one.
    pub fn only_environment(&self) -> Option<&str> {
        match &self.environments {
            Some(set) if set.len() == 1 => set.iter().next().map(String::as_str),
            _ => None,
        }
    }
}

fn within(set: Option<&BTreeSet<String>>, item: &str) -> bool {
    set.is_none_or(|s| s.contains(item))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, apps: Option<&[&str]>, envs: Option<&[&str]>) -> Principal {
        let set = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        Principal {
            name: "alice".into(),
            role,
            apps: apps.map(set),
            environments: envs.map(set),
            token: Some("t1".into()),
        }
    }

    #[test]
    fn scopes_limit_what_the_role_allows() {
        let shop = AppName::new("shop").unwrap();
        let cart = AppName::new("cart").unwrap();
        let p = principal(Role::Deployer, Some(&["shop"]), None);
        assert_eq!(p.authorize(Action::Deploy, Scope::App(&shop)), Ok(()));
        let e = p.authorize(Action::Deploy, Scope::App(&cart)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "alice (deployer) may not deploy on app `cart`"
        );
        assert!(p.authorize(Action::Deploy, Scope::Everything).is_err());
        let e = p
            .authorize(Action::EditFlags, Scope::Everything)
            .unwrap_err();
        assert_eq!(e.to_string(), "alice (deployer) may not edit flags");

        let sdk = principal(Role::Sdk, None, Some(&["staging"]));
        assert_eq!(
            sdk.authorize(Action::Evaluate, Scope::Environment("staging")),
            Ok(())
        );
        assert!(
            sdk.authorize(Action::Evaluate, Scope::Environment("production"))
                .is_err()
        );
        assert!(sdk.authorize(Action::Read, Scope::Everything).is_err());
        assert_eq!(sdk.only_environment(), Some("staging"));
        assert_eq!(
            Principal::local().authorize(Action::Administer, Scope::Everything),
            Ok(())
        );
    }
}
