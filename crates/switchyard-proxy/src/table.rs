//! The routing table of one app: plain data, built by the control plane and swapped atomically
//! into a running proxy. Every table is servable: impossible states (an unknown release, zero
//! total weight) have a defined answer (503) rather than a construction error, so that
//! [`RoutingTable::validate`] is advice for callers, not a gate on the data plane.

use std::net::SocketAddr;
use std::time::Duration;

use regex::Regex;
use thiserror::Error;

use crate::config::HealthCheck;
use crate::exposure::ExperimentTap;

/// Where an app's requests go: releases with weights, match routes evaluated before weights,
/// stickiness and mirroring.
#[derive(Debug, Clone, Default)]
pub struct RoutingTable {
    /// Releases in order, stable first. Weights are relative (any sum > 0).
    pub backends: Vec<Backend>,
    /// Evaluated in order before weights; the first match pins the request to its release.
    pub header_routes: Vec<HeaderRoute>,
    /// Sticky assignment of users to releases; without it requests are split at random.
    pub stickiness: Option<Stickiness>,
    /// Copy a share of requests to another release and discard its answers.
    pub mirror: Option<Mirror>,
    /// Active health checks of every endpoint; `None` trusts endpoints until passive ejection.
    pub health_check: Option<HealthCheck>,
}

/// One release and the instances that serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// Release name: `stable`, `canary`, `preview` or any other.
    pub release: String,
    /// Relative weight of this release in the split.
    pub weight: u32,
    /// Instances; requests are balanced over the healthy ones.
    pub endpoints: Vec<SocketAddr>,
}

impl Backend {
    /// A release with the given weight and instances.
    pub fn new(release: impl Into<String>, weight: u32, endpoints: Vec<SocketAddr>) -> Self {
        Backend {
            release: release.into(),
            weight,
            endpoints,
        }
    }
}

/// Pins matching requests to `release`, e.g. `x-canary: always` → `canary`.
#[derive(Debug, Clone)]
pub struct HeaderRoute {
    /// Every condition must hold (logical AND).
    pub matches: Vec<RequestMatch>,
    /// Release that serves matching requests.
    pub release: String,
}

/// One condition on a request.
#[derive(Debug, Clone)]
pub enum RequestMatch {
    /// A header value (any of its values).
    Header {
        name: http::HeaderName,
        value: ValueMatch,
    },
    /// A cookie value from the `Cookie` header.
    Cookie { name: String, value: ValueMatch },
    /// A path prefix, matched on `/` boundaries (`/api` matches `/api/x`, not `/apix`).
    PathPrefix(String),
}

/// How a value is compared.
#[derive(Debug, Clone)]
pub enum ValueMatch {
    Exact(String),
    Prefix(String),
    /// Anchored or not as the pattern says; compiled once, when the table is built.
    Regex(Regex),
}

impl ValueMatch {
    /// Whether `value` satisfies this match.
    pub fn is_match(&self, value: &str) -> bool {
        match self {
            ValueMatch::Exact(e) => value == e,
            ValueMatch::Prefix(p) => value.starts_with(p.as_str()),
            ValueMatch::Regex(r) => r.is_match(value),
        }
    }
}

/// Sticky assignment: a key's bucket in [0, 10000) decides its release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stickiness {
    /// Where the key comes from.
    pub key: StickinessKey,
    /// Mixed into the hash so that two apps do not put the same users on their canaries.
    pub salt: String,
    /// When set, requests without a key get a random one in this cookie on their response,
    /// so that later requests stay on the same release.
    pub affinity_cookie: Option<AffinityCookie>,
}

/// The request attribute that identifies a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StickinessKey {
    Header(http::HeaderName),
    Cookie(String),
    Query(String),
}

/// Cookie set on the first response to a request that carried no stickiness key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffinityCookie {
    pub name: String,
    /// `Max-Age` of the cookie; `None` makes it a session cookie.
    pub max_age: Option<Duration>,
}

/// Copy `percent` of requests to `release`; its responses are discarded.
#[derive(Debug, Clone, PartialEq)]
pub struct Mirror {
    pub release: String,
    /// Share of requests copied, 0.0..=100.0.
    pub percent: f64,
    /// Largest request body copied, in bytes. The copy is streamed alongside the real body and
    /// may be held in memory up to this size while a slow mirror catches up, so a body declared
    /// longer is not mirrored, and a body of unknown length that passes it has its copy
    /// abandoned (both counted in `switchyard_proxy_mirror_skipped_requests_total`).
    pub max_body_bytes: u64,
}

/// A table that the data plane serves but that is probably not what the caller meant.
#[derive(Debug, Error, PartialEq)]
pub enum TableError {
    #[error("the routing table has no backend")]
    NoBackends,
    #[error("the weights of all backends sum to zero")]
    ZeroTotalWeight,
    #[error("release {0:?} appears more than once")]
    DuplicateRelease(String),
    #[error("a header route points at unknown release {0:?}")]
    UnknownRouteRelease(String),
    #[error("the mirror points at unknown release {0:?}")]
    UnknownMirrorRelease(String),
    #[error("mirror percent {0} is outside 0..=100")]
    MirrorPercent(f64),
    #[error("experiment {0:?} needs stickiness: its units are the values of the stickiness key")]
    ExperimentWithoutStickiness(String),
}

impl RoutingTable {
    /// A table sending everything to one release.
    pub fn single(release: impl Into<String>, endpoints: Vec<SocketAddr>) -> Self {
        RoutingTable {
            backends: vec![Backend::new(release, 1, endpoints)],
            ..Default::default()
        }
    }

    /// Index of a release by name.
    pub fn release_index(&self, release: &str) -> Option<usize> {
        self.backends.iter().position(|b| b.release == release)
    }

    /// Checks the table for states that are servable but almost certainly a mistake.
    ///
    /// # Errors
    /// The first problem found, as a [`TableError`].
    pub fn validate(&self) -> Result<(), TableError> {
        if self.backends.is_empty() {
            return Err(TableError::NoBackends);
        }
        if self
            .backends
            .iter()
            .map(|b| u64::from(b.weight))
            .sum::<u64>()
            == 0
        {
            return Err(TableError::ZeroTotalWeight);
        }
        for (i, b) in self.backends.iter().enumerate() {
            if self.backends[..i].iter().any(|o| o.release == b.release) {
                return Err(TableError::DuplicateRelease(b.release.clone()));
            }
        }
        if let Some(r) = self
            .header_routes
            .iter()
            .find(|r| self.release_index(&r.release).is_none())
        {
            return Err(TableError::UnknownRouteRelease(r.release.clone()));
        }
        if let Some(m) = &self.mirror {
            if self.release_index(&m.release).is_none() {
                return Err(TableError::UnknownMirrorRelease(m.release.clone()));
            }
            if !(0.0..=100.0).contains(&m.percent) {
                return Err(TableError::MirrorPercent(m.percent));
            }
        }
        Ok(())
    }

    /// [`RoutingTable::validate`], and for a table that will serve `experiment` (see
    /// `AppProxy::set_routes_with_experiment`), that it is sticky: an experiment's units are the
    /// values of the stickiness key, so without one no request is an exposure.
    ///
    /// # Errors
    /// The first problem found, as a [`TableError`].
    pub fn validate_with_experiment(
        &self,
        experiment: Option<&ExperimentTap>,
    ) -> Result<(), TableError> {
        self.validate()?;
        match experiment {
            Some(e) if self.stickiness.is_none() => Err(TableError::ExperimentWithoutStickiness(
                e.experiment.to_string(),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_experiment_needs_stickiness() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        let mut table = RoutingTable {
            backends: vec![
                Backend::new("stable", 50, vec![addr]),
                Backend::new("canary", 50, vec![addr]),
            ],
            ..Default::default()
        };
        let tap = ExperimentTap::new("checkout-button");
        assert_eq!(table.validate_with_experiment(None), Ok(()));
        assert_eq!(
            table.validate_with_experiment(Some(&tap)),
            Err(TableError::ExperimentWithoutStickiness(
                "checkout-button".to_owned()
            ))
        );
        table.stickiness = Some(Stickiness {
            key: StickinessKey::Header(http::HeaderName::from_static("x-user")),
            salt: "shop".to_owned(),
            affinity_cookie: None,
        });
        assert_eq!(table.validate_with_experiment(Some(&tap)), Ok(()));
        table.backends.clear();
        assert_eq!(
            table.validate_with_experiment(Some(&tap)),
            Err(TableError::NoBackends)
        );
    }
}
