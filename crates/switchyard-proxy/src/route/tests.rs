#![allow(clippy::unwrap_used)]

use http::{HeaderMap, HeaderValue, Uri};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::*;
use crate::table::{AffinityCookie, Backend, HeaderRoute, Mirror, Stickiness, ValueMatch};

fn table(weights: &[(&str, u32)]) -> RoutingTable {
    RoutingTable {
        backends: weights
            .iter()
            .map(|(r, w)| Backend::new(*r, *w, vec![]))
            .collect(),
        ..Default::default()
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn rng() -> SmallRng {
    SmallRng::seed_from_u64(7)
}

fn uri(s: &str) -> Uri {
    s.parse().unwrap()
}

#[test]
fn header_route_pins_before_weights() {
    let mut t = table(&[("stable", 100), ("canary", 0)]);
    t.header_routes.push(HeaderRoute {
        matches: vec![RequestMatch::Header {
            name: http::HeaderName::from_static("x-canary"),
            value: ValueMatch::Exact("always".into()),
        }],
        release: "canary".into(),
    });
    let r = Router::new(t);
    let d = r
        .decide(&headers(&[("x-canary", "always")]), &uri("/"), &mut rng())
        .unwrap();
    assert_eq!((d.release, d.reason), (1, RouteReason::MatchRoute(0)));
    let d = r
        .decide(&headers(&[("x-canary", "never")]), &uri("/"), &mut rng())
        .unwrap();
    assert_eq!(d.release, 0);
}

#[test]
fn cookie_prefix_regex_and_path_matches() {
    let mut t = table(&[("stable", 1), ("canary", 0), ("preview", 0)]);
    t.header_routes = vec![
        HeaderRoute {
            matches: vec![RequestMatch::Cookie {
                name: "beta".into(),
                value: ValueMatch::Prefix("y".into()),
            }],
            release: "canary".into(),
        },
        HeaderRoute {
            matches: vec![
                RequestMatch::PathPrefix("/api".into()),
                RequestMatch::Header {
                    name: http::HeaderName::from_static("user-agent"),
                    value: ValueMatch::Regex(regex::Regex::new("^tester/[0-9]+$").unwrap()),
                },
            ],
            release: "preview".into(),
        },
    ];
    let r = Router::new(t);
    let pick =
        |h: &[(&str, &str)], u: &str| r.decide(&headers(h), &uri(u), &mut rng()).unwrap().release;
    assert_eq!(pick(&[("cookie", "a=b; beta=yes")], "/"), 1);
    assert_eq!(pick(&[("cookie", "beta=no")], "/"), 0);
    assert_eq!(pick(&[("user-agent", "tester/12")], "/api/x"), 2);
    assert_eq!(pick(&[("user-agent", "tester/12")], "/apix"), 0);
    assert_eq!(pick(&[("user-agent", "tester/x")], "/api"), 0);
}

#[test]
fn route_to_unknown_release_is_an_error() {
    let mut t = table(&[("stable", 1)]);
    t.header_routes.push(HeaderRoute {
        matches: vec![],
        release: "ghost".into(),
    });
    let e = Router::new(t)
        .decide(&HeaderMap::new(), &uri("/"), &mut rng())
        .unwrap_err();
    assert_eq!(e, RouteError::UnknownRelease("ghost".into()));
}

#[test]
fn zero_weight_is_an_error() {
    let e = Router::new(table(&[("stable", 0)]))
        .decide(&HeaderMap::new(), &uri("/"), &mut rng())
        .unwrap_err();
    assert_eq!(e, RouteError::NoWeight);
}

#[test]
fn sticky_by_query_and_cookie_is_stable() {
    for key in [
        StickinessKey::Query("uid".into()),
        StickinessKey::Cookie("uid".into()),
    ] {
        let mut t = table(&[("stable", 50), ("canary", 50)]);
        t.stickiness = Some(Stickiness {
            key: key.clone(),
            salt: "app".into(),
            affinity_cookie: None,
        });
        let r = Router::new(t);
        for user in 0..50 {
            let (h, u) = match key {
                StickinessKey::Query(_) => (HeaderMap::new(), uri(&format!("/x?a=1&uid=u{user}"))),
                _ => (headers(&[("cookie", &format!("uid=u{user}"))]), uri("/")),
            };
            let first = r
                .decide(&h, &u, &mut SmallRng::seed_from_u64(user))
                .unwrap();
            let again = r
                .decide(&h, &u, &mut SmallRng::seed_from_u64(user + 1000))
                .unwrap();
            assert_eq!(first.release, again.release);
            assert!(matches!(first.reason, RouteReason::Sticky(_)));
        }
    }
}

#[test]
fn affinity_cookie_is_issued_then_honoured() {
    let mut t = table(&[("stable", 50), ("canary", 50)]);
    t.stickiness = Some(Stickiness {
        key: StickinessKey::Header(http::HeaderName::from_static("x-user")),
        salt: String::new(),
        affinity_cookie: Some(AffinityCookie {
            name: "sy-aff".into(),
            max_age: None,
        }),
    });
    let r = Router::new(t);
    let d = r.decide(&HeaderMap::new(), &uri("/"), &mut rng()).unwrap();
    let key = d.set_affinity.clone().unwrap();
    let back = r
        .decide(
            &headers(&[("cookie", &format!("sy-aff={key}"))]),
            &uri("/"),
            &mut rng(),
        )
        .unwrap();
    assert_eq!(back.release, d.release);
    assert_eq!(back.set_affinity, None);
}

#[test]
fn mirror_skips_the_serving_release_but_not_bodies() {
    let mut t = table(&[("stable", 1), ("canary", 0)]);
    t.mirror = Some(Mirror {
        release: "canary".into(),
        percent: 100.0,
        max_body_bytes: 10,
    });
    let r = Router::new(t.clone());
    // Body size is left to the data plane, which counts copies it cannot make.
    for h in [
        HeaderMap::new(),
        headers(&[("content-length", "11")]),
        headers(&[("transfer-encoding", "chunked")]),
    ] {
        assert_eq!(r.decide(&h, &uri("/"), &mut rng()).unwrap().mirror, Some(1));
    }
    t.mirror.as_mut().unwrap().release = "stable".into();
    let r = Router::new(t);
    assert_eq!(
        r.decide(&HeaderMap::new(), &uri("/"), &mut rng())
            .unwrap()
            .mirror,
        None
    );
}

#[test]
fn path_prefix_boundaries() {
    assert!(path_has_prefix("/api", "/api"));
    assert!(path_has_prefix("/api/v1", "/api/"));
    assert!(!path_has_prefix("/apiv1", "/api"));
    assert!(path_has_prefix("/anything", "/"));
}

proptest! {
    // Random split follows the weights.
    #[test]
    fn random_split_follows_weights(w in prop::collection::vec(0u32..100, 2..4), seed in any::<u64>()) {
        prop_assume!(w.iter().sum::<u32>() > 0);
        let names = ["stable", "canary", "preview"];
        let t = table(&w.iter().enumerate().map(|(i, w)| (names[i], *w)).collect::<Vec<_>>());
        let r = Router::new(t);
        let mut rng = SmallRng::seed_from_u64(seed);
        let n = 5000;
        let mut counts = vec![0u32; w.len()];
        for _ in 0..n {
            counts[r.decide(&HeaderMap::new(), &uri("/"), &mut rng).unwrap().release] += 1;
        }
        let total: u32 = w.iter().sum();
        for (i, c) in counts.iter().enumerate() {
            let p = f64::from(w[i]) / f64::from(total);
            let expected = p * f64::from(n);
            let sd = (expected * (1.0 - p)).sqrt();
            prop_assert!((f64::from(*c) - expected).abs() <= 6.0 * sd + 3.0, "{:?} {:?}", w, counts);
        }
    }
}
