//! Edits of an Istio VirtualService (`networking.istio.io/v1`): the weights of the stable and
//! canary Services on the named http routes (every route that sends traffic to the stable
//! Service when none is named), an http route of its own for a header route, and `mirror` with
//! `mirrorPercentage` for a mirror. Everything else in the VirtualService is left as it is.

use serde_json::{Value, json};
use switchyard_core::manifest::app::{MatchSource, MatchValue, RouteMatch};

use crate::gateway::{Backends, HEADER_ROUTE_RULE, regex_escape};

/// A destination host names `service` in its short form or a longer one
/// (`shop-stable.ns.svc.cluster.local`).
fn is_host(host: Option<&str>, service: &str) -> bool {
    host.is_some_and(|h| h == service || h.starts_with(&format!("{service}.")))
}

fn destination_host(route: &Value) -> Option<&str> {
    route.pointer("/destination/host").and_then(Value::as_str)
}

/// The http routes (indices) whose weights Switchyard sets: the named ones, or every one that
/// sends traffic to the stable Service; Switchyard's own header route excepted.
fn stable_routes(vs: &Value, b: Backends<'_>, names: &[String]) -> Vec<usize> {
    vs.pointer("/spec/http")
        .and_then(Value::as_array)
        .map(|http| {
            http.iter()
                .enumerate()
                .filter(|(_, h)| h.get("name").and_then(Value::as_str) != Some(HEADER_ROUTE_RULE))
                .filter(|(_, h)| {
                    names.is_empty()
                        || h.get("name")
                            .and_then(Value::as_str)
                            .is_some_and(|n| names.iter().any(|w| w == n))
                })
                .filter(|(_, h)| {
                    h.get("route")
                        .and_then(Value::as_array)
                        .is_some_and(|r| r.iter().any(|d| is_host(destination_host(d), b.stable)))
                })
                .map(|(i, _)| i)
                .collect()
        })
        .unwrap_or_default()
}

fn no_stable_route(b: Backends<'_>, names: &[String]) -> String {
    if names.is_empty() {
        format!(
            "no http route of the VirtualService has a destination with host `{}`",
            b.stable
        )
    } else {
        format!(
            "none of the http routes {} has a destination with host `{}`",
            names.join(", "),
            b.stable
        )
    }
}

fn http_mut(vs: &mut Value) -> Option<&mut Vec<Value>> {
    vs.pointer_mut("/spec/http").and_then(Value::as_array_mut)
}

/// Sets the stable and canary weights on the routes, adding the canary's destination (with
/// the stable's port) where it is missing.
///
/// # Errors
/// No route sends traffic to the stable Service (or none of the named ones).
pub fn set_weights(
    vs: &mut Value,
    b: Backends<'_>,
    names: &[String],
    stable_weight: u32,
) -> Result<(), String> {
    let indices = stable_routes(vs, b, names);
    let http = http_mut(vs).filter(|_| !indices.is_empty());
    let http = http.ok_or_else(|| no_stable_route(b, names))?;
    for i in indices {
        let Some(routes) = http[i].get_mut("route").and_then(Value::as_array_mut) else {
            continue;
        };
        if !routes
            .iter()
            .any(|d| is_host(destination_host(d), b.canary))
        {
            let port = routes
                .iter()
                .find(|d| is_host(destination_host(d), b.stable))
                .and_then(|d| d.pointer("/destination/port").cloned());
            let mut destination = json!({"host": b.canary});
            if let Some(port) = port {
                destination["port"] = port;
            }
            routes.push(json!({"destination": destination, "weight": 0}));
        }
        for d in routes.iter_mut() {
            if is_host(destination_host(d), b.stable) {
                d["weight"] = json!(stable_weight);
            } else if is_host(destination_host(d), b.canary) {
                d["weight"] = json!(100 - stable_weight.min(100));
            }
        }
    }
    Ok(())
}

/// Each route's `(stable, canary)` weights.
pub fn weights(vs: &Value, b: Backends<'_>, names: &[String]) -> Vec<(u64, u64)> {
    stable_routes(vs, b, names)
        .into_iter()
        .filter_map(|i| vs.pointer(&format!("/spec/http/{i}/route"))?.as_array())
        .map(|routes| {
            let weight = |name: &str| {
                routes
                    .iter()
                    .find(|d| is_host(destination_host(d), name))
                    .and_then(|d| d.get("weight").and_then(Value::as_u64))
                    .unwrap_or(0)
            };
            (weight(b.stable), weight(b.canary))
        })
        .collect()
}

/// The stable Service's percentage on the first route; `None` until Switchyard wrote weights.
pub fn stable_weight(vs: &Value, b: Backends<'_>, names: &[String]) -> Option<u32> {
    let i = *stable_routes(vs, b, names).first()?;
    let routes = vs.pointer(&format!("/spec/http/{i}/route"))?.as_array()?;
    let weight = |name: &str| {
        routes
            .iter()
            .find(|d| is_host(destination_host(d), name))
            .and_then(|d| d.get("weight").and_then(Value::as_u64))
    };
    let (stable, canary) = (weight(b.stable)?, weight(b.canary)?);
    (stable * 100 + (stable + canary) / 2)
        .checked_div(stable + canary)
        .map_or(Some(0), |w| u32::try_from(w).ok())
}

/// Adds (or replaces) Switchyard's header route at the top, copying the first weighted
/// route's matches and adding the header conditions; `None` removes it.
///
/// # Errors
/// No route sends traffic to the stable Service.
pub fn set_header_route(
    vs: &mut Value,
    b: Backends<'_>,
    names: &[String],
    header_route: Option<(&str, &[RouteMatch])>,
) -> Result<(), String> {
    let first = stable_routes(vs, b, names).first().copied();
    let Some(http) = http_mut(vs) else {
        return match header_route {
            None => Ok(()),
            Some(_) => Err(no_stable_route(b, names)),
        };
    };
    let template = first.and_then(|i| http.get(i)).cloned();
    http.retain(|h| h.get("name").and_then(Value::as_str) != Some(HEADER_ROUTE_RULE));
    let Some((service, matches)) = header_route else {
        return Ok(());
    };
    let template = template.ok_or_else(|| no_stable_route(b, names))?;
    let mut headers = serde_json::Map::new();
    for m in matches {
        let (name, value) = header_match(m);
        headers.insert(name, value);
    }
    let base = template
        .get("match")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_else(|| vec![json!({})]);
    let matched: Vec<Value> = base
        .into_iter()
        .map(|mut m| {
            let mut all = m
                .get("headers")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            all.extend(headers.clone());
            m["headers"] = Value::Object(all);
            m
        })
        .collect();
    let port = template
        .get("route")
        .and_then(Value::as_array)
        .and_then(|r| r.iter().find(|d| is_host(destination_host(d), b.stable)))
        .and_then(|d| d.pointer("/destination/port").cloned());
    let mut destination = json!({"host": service});
    if let Some(port) = port {
        destination["port"] = port;
    }
    http.insert(
        0,
        json!({"name": HEADER_ROUTE_RULE, "match": matched, "route": [{"destination": destination}]}),
    );
    Ok(())
}

/// An Istio header condition: `exact`, `prefix` or `regex`; a cookie is a regular expression
/// on the `cookie` header.
fn header_match(m: &RouteMatch) -> (String, Value) {
    match (&m.source, &m.value) {
        (MatchSource::Header(h), MatchValue::Exact(v)) => (h.to_lowercase(), json!({"exact": v})),
        (MatchSource::Header(h), MatchValue::Prefix(p)) => (h.to_lowercase(), json!({"prefix": p})),
        (MatchSource::Header(h), MatchValue::Regex(r)) => (h.to_lowercase(), json!({"regex": r})),
        (MatchSource::Cookie(c), value) => {
            let v = match value {
                MatchValue::Exact(v) => format!("{}(;.*)?", regex_escape(v)),
                MatchValue::Prefix(p) => format!("{}.*", regex_escape(p)),
                MatchValue::Regex(r) => format!("({r})(;.*)?"),
            };
            (
                "cookie".into(),
                json!({"regex": format!("(.*;\\s*)?{}={v}", regex_escape(c))}),
            )
        }
    }
}

/// Sets (or removes) the mirror of the weighted routes: `mirror` to `service` and
/// `mirrorPercentage`. A mirror to another host, written by someone else, is left alone.
///
/// # Errors
/// No route sends traffic to the stable Service.
pub fn set_mirror(
    vs: &mut Value,
    b: Backends<'_>,
    names: &[String],
    mirror: Option<(&str, u8)>,
) -> Result<(), String> {
    let indices = stable_routes(vs, b, names);
    let Some(http) = http_mut(vs).filter(|_| !indices.is_empty()) else {
        return match mirror {
            None => Ok(()),
            Some(_) => Err(no_stable_route(b, names)),
        };
    };
    for i in indices {
        let Some(route) = http[i].as_object_mut() else {
            continue;
        };
        let ours = route
            .get("mirror")
            .and_then(|m| m.get("host"))
            .and_then(Value::as_str)
            .is_some_and(|h| is_host(Some(h), b.canary) || is_host(Some(h), b.stable));
        match mirror {
            Some((service, percent)) => {
                route.insert("mirror".into(), json!({"host": service}));
                route.insert(
                    "mirrorPercentage".into(),
                    json!({"value": f64::from(percent)}),
                );
            }
            None if ours => {
                route.remove("mirror");
                route.remove("mirrorPercentage");
            }
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backends<'static> = crate::gateway::SHOP;

    fn vs() -> Value {
        json!({"spec": {"hosts": ["shop.example"], "http": [
            {"name": "primary", "match": [{"uri": {"prefix": "/"}}],
             "route": [{"destination": {"host": "shop-stable", "port": {"number": 80}}}]},
            {"name": "other", "route": [{"destination": {"host": "other"}}]},
        ]}})
    }

    #[test]
    fn weights_go_on_the_named_routes_with_the_stable_port() {
        let mut v = vs();
        let names = vec!["primary".to_string()];
        set_weights(&mut v, B, &names, 70).expect("weights");
        assert_eq!(
            v["spec"]["http"][0]["route"],
            json!([{"destination": {"host": "shop-stable", "port": {"number": 80}}, "weight": 70},
                   {"destination": {"host": "shop-canary", "port": {"number": 80}}, "weight": 30}])
        );
        assert_eq!(v["spec"]["http"][1], vs()["spec"]["http"][1]);
        assert_eq!(weights(&v, B, &names), vec![(70, 30)]);
        assert_eq!(stable_weight(&v, B, &names), Some(70));
        let e = set_weights(&mut vs(), B, &["missing".to_string()], 70).expect_err("no route");
        assert!(e.contains("missing"), "{e}");
    }

    #[test]
    fn a_header_route_and_a_mirror_come_and_go() {
        let mut v = vs();
        let m: RouteMatch =
            serde_json::from_value(json!({"header": "X-Canary", "exact": "1"})).expect("match");
        set_header_route(
            &mut v,
            B,
            &[],
            Some(("shop-canary", std::slice::from_ref(&m))),
        )
        .expect("add");
        assert_eq!(
            v["spec"]["http"][0],
            json!({"name": HEADER_ROUTE_RULE,
                   "match": [{"uri": {"prefix": "/"}, "headers": {"x-canary": {"exact": "1"}}}],
                   "route": [{"destination": {"host": "shop-canary", "port": {"number": 80}}}]})
        );
        set_mirror(&mut v, B, &[], Some(("shop-canary", 15))).expect("mirror");
        assert_eq!(
            v["spec"]["http"][1]["mirror"],
            json!({"host": "shop-canary"})
        );
        assert_eq!(
            v["spec"]["http"][1]["mirrorPercentage"],
            json!({"value": 15.0})
        );
        set_header_route(&mut v, B, &[], None).expect("remove");
        set_mirror(&mut v, B, &[], None).expect("remove");
        assert_eq!(v, vs());
    }
}
