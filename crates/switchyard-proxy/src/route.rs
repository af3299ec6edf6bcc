//! Route matching: which release serves a request, decided from the request head and the table
//! alone. No IO, no clock; randomness comes in as a parameter so tests can fix it.
//!
//! Order: header/cookie/path routes first (the first match wins), then the weighted split,
//! sticky by key when the table configures stickiness, random otherwise.

use http::{HeaderMap, Uri, header};
use rand::Rng;
use thiserror::Error;

use crate::bucket::{BUCKETS, BucketLayout, bucket_of};
use crate::table::{RequestMatch, RoutingTable, StickinessKey};

/// Where one request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDecision {
    /// Index of the serving release in the table's backends.
    pub release: usize,
    /// Why that release.
    pub reason: RouteReason,
    /// A new affinity key to send back in the table's affinity cookie.
    pub set_affinity: Option<String>,
    /// Index of a release that gets a copy of this request.
    pub mirror: Option<usize>,
}

/// Why a request went where it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteReason {
    /// Header route number `n` matched.
    MatchRoute(usize),
    /// The stickiness key's bucket.
    Sticky(u32),
    /// No key: a random bucket.
    Random(u32),
}

/// A request that no release can take; answered 503 at the boundary.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum RouteError {
    #[error("no release has traffic weight")]
    NoWeight,
    #[error("route points at release {0:?}, which is not in the routing table")]
    UnknownRelease(String),
}

/// A table with its precomputed bucket layout.
#[derive(Debug, Clone)]
pub struct Router {
    table: RoutingTable,
    layout: BucketLayout,
}

impl Router {
    /// Precomputes the bucket layout of `table`.
    pub fn new(table: RoutingTable) -> Self {
        let weights: Vec<u32> = table.backends.iter().map(|b| b.weight).collect();
        Router {
            layout: BucketLayout::new(&weights),
            table,
        }
    }

    pub fn table(&self) -> &RoutingTable {
        &self.table
    }

    /// Decides the release for a request with `headers` and `uri`.
    ///
    /// # Errors
    /// [`RouteError`] when the matched route or the weights lead to no release.
    pub fn decide(
        &self,
        headers: &HeaderMap,
        uri: &Uri,
        rng: &mut impl Rng,
    ) -> Result<RouteDecision, RouteError> {
        let mut decision = match self.match_route(headers, uri)? {
            Some(d) => d,
            None => self.split(headers, uri, rng)?,
        };
        decision.mirror = self.mirror(decision.release, rng);
        Ok(decision)
    }

    /// The value of the table's stickiness key in a request (header, cookie or query parameter;
    /// not the affinity cookie), if the table is sticky and the request carries a non-empty one.
    /// It is the key [`Router::decide`] hashed when it answers [`RouteReason::Sticky`] and the
    /// request carries it.
    pub fn sticky_unit<'a>(&self, headers: &'a HeaderMap, uri: &'a Uri) -> Option<&'a str> {
        sticky_key(&self.table.stickiness.as_ref()?.key, headers, uri)
    }

    fn match_route(
        &self,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Result<Option<RouteDecision>, RouteError> {
        let Some((n, route)) = self
            .table
            .header_routes
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches.iter().all(|m| request_matches(m, headers, uri)))
        else {
            return Ok(None);
        };
        let release = self
            .table
            .release_index(&route.release)
            .ok_or_else(|| RouteError::UnknownRelease(route.release.clone()))?;
        Ok(Some(RouteDecision {
            release,
            reason: RouteReason::MatchRoute(n),
            set_affinity: None,
            mirror: None,
        }))
    }

    fn split(
        &self,
        headers: &HeaderMap,
        uri: &Uri,
        rng: &mut impl Rng,
    ) -> Result<RouteDecision, RouteError> {
        let mut set_affinity = None;
        let reason = match &self.table.stickiness {
            Some(s) => {
                let key = sticky_key(&s.key, headers, uri).or_else(|| {
                    s.affinity_cookie
                        .as_ref()
                        .and_then(|c| cookie(headers, &c.name))
                });
                match key {
                    Some(k) => RouteReason::Sticky(bucket_of(&s.salt, k)),
                    None if s.affinity_cookie.is_some() => {
                        let k = format!("{:016x}", rng.random::<u64>());
                        let b = bucket_of(&s.salt, &k);
                        set_affinity = Some(k);
                        RouteReason::Sticky(b)
                    }
                    None => RouteReason::Random(rng.random_range(0..BUCKETS)),
                }
            }
            None => RouteReason::Random(rng.random_range(0..BUCKETS)),
        };
        let bucket = match reason {
            RouteReason::Sticky(b) | RouteReason::Random(b) => b,
            // split() only produces bucket reasons.
            RouteReason::MatchRoute(_) => return Err(RouteError::NoWeight),
        };
        let release = self.layout.release_of(bucket).ok_or(RouteError::NoWeight)?;
        Ok(RouteDecision {
            release,
            reason,
            set_affinity,
            mirror: None,
        })
    }

    fn mirror(&self, serving: usize, rng: &mut impl Rng) -> Option<usize> {
        let m = self.table.mirror.as_ref()?;
        let target = self.table.release_index(&m.release)?;
        if target == serving || m.percent <= 0.0 {
            return None;
        }
        // Body size is the data plane's concern (it counts requests too large to copy).
        (rng.random::<f64>() * 100.0 < m.percent).then_some(target)
    }
}

fn request_matches(m: &RequestMatch, headers: &HeaderMap, uri: &Uri) -> bool {
    match m {
        RequestMatch::Header { name, value } => headers
            .get_all(name)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| value.is_match(v))),
        RequestMatch::Cookie { name, value } => {
            cookie(headers, name).is_some_and(|v| value.is_match(v))
        }
        RequestMatch::PathPrefix(prefix) => path_has_prefix(uri.path(), prefix),
    }
}

/// `/api` matches `/api` and `/api/x` but not `/apix`; `/` and `` match everything.
pub fn path_has_prefix(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

fn sticky_key<'a>(key: &StickinessKey, headers: &'a HeaderMap, uri: &'a Uri) -> Option<&'a str> {
    let v = match key {
        StickinessKey::Header(name) => headers.get(name).and_then(|v| v.to_str().ok()),
        StickinessKey::Cookie(name) => cookie(headers, name),
        StickinessKey::Query(name) => query_param(uri, name),
    };
    v.filter(|v| !v.is_empty())
}

/// Value of cookie `name` from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let values = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    switchyard_core::cookie::value(values, name)
}

/// Raw (not percent-decoded) value of query parameter `name`.
fn query_param<'a>(uri: &'a Uri, name: &str) -> Option<&'a str> {
    uri.query()?
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests;
