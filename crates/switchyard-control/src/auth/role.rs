//! Roles and the actions each allows.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a request does, as far as permissions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Read apps, rollouts, events, analysis, flags, experiments and metrics.
    Read,
    /// Promote, abort, pause, resume, approve; emergency stop.
    Operate,
    /// Apply manifests, deploy, undo, retry; lift an emergency stop.
    Deploy,
    /// Change flags and segments.
    EditFlags,
    /// Stop experiments.
    StopExperiments,
    /// Evaluate flags (OFREP) and follow the flag stream.
    Evaluate,
    /// Send experiment events.
    Ingest,
    /// Create, list and revoke tokens; read the whole audit log.
    Administer,
    /// Follow the routing tables and report traffic: what a proxy does.
    ServeTraffic,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Operate => "operate",
            Action::Deploy => "deploy",
            Action::EditFlags => "edit flags",
            Action::StopExperiments => "stop experiments",
            Action::Evaluate => "evaluate flags",
            Action::Ingest => "send events",
            Action::Administer => "administer",
            Action::ServeTraffic => "serve traffic",
        }
    }
}

/// A token's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Reads everything in its scope.
    Viewer,
    /// A viewer that also runs rollouts: promote, abort, pause, resume, approve.
    Operator,
    /// An operator that also ships: apply, deploy, undo, retry.
    Deployer,
    /// A viewer that also changes flags and stops experiments.
    FlagEditor,
    /// Everything, tokens included.
    Admin,
    /// A read-only SDK key of one environment: OFREP, the flag stream, experiment events.
    Sdk,
    /// A proxy: follows the routing tables, reports what it serves. Its name is its id.
    Proxy,
}

/// Every role, for listings and errors.
pub const ROLES: [Role; 7] = [
    Role::Viewer,
    Role::Operator,
    Role::Deployer,
    Role::FlagEditor,
    Role::Admin,
    Role::Sdk,
    Role::Proxy,
];

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Deployer => "deployer",
            Role::FlagEditor => "flag-editor",
            Role::Admin => "admin",
            Role::Sdk => "sdk",
            Role::Proxy => "proxy",
        }
    }

    /// Whether the role allows `action` (within the token's scope).
    pub fn allows(self, action: Action) -> bool {
        use Action as A;
        match self {
            Role::Admin => true,
            Role::Proxy => matches!(action, A::ServeTraffic),
            Role::Sdk => matches!(action, A::Evaluate | A::Ingest),
            Role::Viewer => matches!(action, A::Read | A::Evaluate),
            Role::Operator => matches!(action, A::Read | A::Evaluate | A::Operate),
            Role::Deployer => matches!(
                action,
                A::Read | A::Evaluate | A::Operate | A::Deploy | A::StopExperiments
            ),
            Role::FlagEditor => matches!(
                action,
                A::Read | A::Evaluate | A::EditFlags | A::StopExperiments
            ),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not a role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`; use viewer, operator, deployer, flag-editor, admin, sdk or proxy")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(text: &str) -> Result<Self, UnknownRole> {
        ROLES
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| UnknownRole(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_allows_what_its_name_says() {
        use Action as A;
        let table = [
            (Role::Viewer, vec![A::Read, A::Evaluate]),
            (Role::Operator, vec![A::Read, A::Evaluate, A::Operate]),
            (
                Role::Deployer,
                vec![
                    A::Read,
                    A::Evaluate,
                    A::Operate,
                    A::Deploy,
                    A::StopExperiments,
                ],
            ),
            (
                Role::FlagEditor,
                vec![A::Read, A::Evaluate, A::EditFlags, A::StopExperiments],
            ),
            (Role::Sdk, vec![A::Evaluate, A::Ingest]),
            (Role::Proxy, vec![A::ServeTraffic]),
        ];
        let all = [
            A::Read,
            A::Operate,
            A::Deploy,
            A::EditFlags,
            A::StopExperiments,
            A::Evaluate,
            A::Ingest,
            A::Administer,
            A::ServeTraffic,
        ];
        for (role, allowed) in table {
            for action in all {
                assert_eq!(
                    role.allows(action),
                    allowed.contains(&action),
                    "{role} {action:?}"
                );
            }
        }
        assert!(all.iter().all(|a| Role::Admin.allows(*a)));
        for role in ROLES {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
