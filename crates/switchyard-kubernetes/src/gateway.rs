//! Edits of a Gateway API HTTPRoute (`gateway.networking.k8s.io/v1`): the weights of the stable
//! and canary Services on every rule that sends traffic to the stable Service, a rule of its
//! own for a header route, and a `RequestMirror` filter for a mirror. The route is the user's:
//! everything else in it is left as it is.

use serde_json::{Value, json};
use switchyard_core::manifest::app::{MatchSource, MatchValue, RouteMatch};

/// The name of the rule Switchyard adds for a header route.
pub const HEADER_ROUTE_RULE: &str = "switchyard-header-route";

/// The Services and their port, as the route names them.
#[derive(Debug, Clone, Copy)]
pub struct Backends<'a> {
    pub stable: &'a str,
    pub canary: &'a str,
    pub port: u16,
}

fn is_service_ref(r: &Value, name: &str) -> bool {
    r.get("name").and_then(Value::as_str) == Some(name)
        && r.get("kind").and_then(Value::as_str).unwrap_or("Service") == "Service"
        && r.get("group")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
}

/// A backendRef to a Service, written with the defaults the API server fills in, so that what
/// is read back compares equal to what was written.
fn service_ref(name: &str, port: u16, weight: Option<u32>) -> Value {
    let mut r = json!({"group": "", "kind": "Service", "name": name, "port": port});
    if let Some(w) = weight {
        r["weight"] = json!(w);
    }
    r
}

fn rules_mut(route: &mut Value) -> Option<&mut Vec<Value>> {
    route
        .pointer_mut("/spec/rules")
        .and_then(Value::as_array_mut)
}

fn is_own_rule(rule: &Value) -> bool {
    rule.get("name").and_then(Value::as_str) == Some(HEADER_ROUTE_RULE)
}

/// The rules (indices) that send traffic to the stable Service, Switchyard's own excepted.
fn stable_rules(route: &Value, b: Backends<'_>) -> Vec<usize> {
    route
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .map(|rules| {
            rules
                .iter()
                .enumerate()
                .filter(|(_, r)| !is_own_rule(r))
                .filter(|(_, r)| {
                    r.get("backendRefs")
                        .and_then(Value::as_array)
                        .is_some_and(|refs| refs.iter().any(|x| is_service_ref(x, b.stable)))
                })
                .map(|(i, _)| i)
                .collect()
        })
        .unwrap_or_default()
}

fn no_stable_rule(b: Backends<'_>) -> String {
    format!(
        "no rule of the route has a backendRef to Service `{}`; add it to the rules whose \
         traffic Switchyard should split",
        b.stable
    )
}

/// Sets the weights of the stable and canary Services on every rule that sends traffic to
/// the stable Service, adding the canary's backendRef where it is missing.
///
/// # Errors
/// No rule sends traffic to the stable Service.
pub fn set_weights(route: &mut Value, b: Backends<'_>, stable_weight: u32) -> Result<(), String> {
    let indices = stable_rules(route, b);
    if indices.is_empty() {
        return Err(no_stable_rule(b));
    }
    let rules = rules_mut(route).ok_or_else(|| no_stable_rule(b))?;
    for i in indices {
        let Some(refs) = rules[i]
            .get_mut("backendRefs")
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        if !refs.iter().any(|r| is_service_ref(r, b.canary)) {
            refs.push(service_ref(b.canary, b.port, Some(0)));
        }
        for r in refs.iter_mut() {
            if is_service_ref(r, b.stable) {
                r["weight"] = json!(stable_weight);
            } else if is_service_ref(r, b.canary) {
                r["weight"] = json!(100 - stable_weight.min(100));
            }
        }
    }
    Ok(())
}

/// The stable Service's percentage on the first rule that routes to it; `None` until
/// Switchyard wrote weights there (the canary's backendRef and both weights present).
pub fn stable_weight(route: &Value, b: Backends<'_>) -> Option<u32> {
    let i = *stable_rules(route, b).first()?;
    let refs = route
        .pointer(&format!("/spec/rules/{i}/backendRefs"))?
        .as_array()?;
    let weight = |name: &str| {
        refs.iter()
            .find(|r| is_service_ref(r, name))
            .and_then(|r| r.get("weight").and_then(Value::as_u64))
    };
    let stable = weight(b.stable)?;
    let canary = weight(b.canary)?;
    let total = stable + canary;
    if total == 0 {
        return Some(0);
    }
    u32::try_from((stable * 100 + total / 2) / total).ok()
}

/// Every rule's weights for the stable and canary Services, as `(stable, canary)`: what a
/// drift check compares.
pub fn weights(route: &Value, b: Backends<'_>) -> Vec<(u64, u64)> {
    stable_rules(route, b)
        .into_iter()
        .filter_map(|i| {
            route
                .pointer(&format!("/spec/rules/{i}/backendRefs"))?
                .as_array()
        })
        .map(|refs| {
            let weight = |name: &str| {
                refs.iter()
                    .find(|r| is_service_ref(r, name))
                    .map_or(0, |r| r.get("weight").and_then(Value::as_u64).unwrap_or(1))
            };
            (weight(b.stable), weight(b.canary))
        })
        .collect()
}

/// Adds (or replaces) Switchyard's header-route rule, sending requests that match every
/// condition to `service`; `None` removes it. Cookies become a regular expression on the
/// `Cookie` header, prefixes a regular expression: HTTPRoute matches headers exactly or by
/// regular expression only. The rule copies the parent match (path, method) of the first rule
/// that routes to the stable Service, so that it takes only that rule's requests.
///
/// # Errors
/// No rule sends traffic to the stable Service.
pub fn set_header_route(
    route: &mut Value,
    b: Backends<'_>,
    header_route: Option<(&str, &[RouteMatch])>,
) -> Result<(), String> {
    let first = stable_rules(route, b).first().copied();
    let rules = rules_mut(route);
    let Some(rules) = rules else {
        return match header_route {
            None => Ok(()),
            Some(_) => Err(no_stable_rule(b)),
        };
    };
    let template = first.and_then(|i| rules.get(i)).cloned();
    rules.retain(|r| !is_own_rule(r));
    let Some((service, matches)) = header_route else {
        return Ok(());
    };
    let template = template.ok_or_else(|| no_stable_rule(b))?;
    let headers: Vec<Value> = matches.iter().map(header_match).collect();
    let base_matches = template
        .get("matches")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_else(|| vec![json!({})]);
    let matches: Vec<Value> = base_matches
        .into_iter()
        .map(|mut m| {
            let mut all = m
                .get("headers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            all.extend(headers.iter().cloned());
            m["headers"] = Value::Array(all);
            m
        })
        .collect();
    rules.insert(
        0,
        json!({
            "name": HEADER_ROUTE_RULE,
            "matches": matches,
            "backendRefs": [service_ref(service, b.port, Some(1))],
        }),
    );
    Ok(())
}

fn header_match(m: &RouteMatch) -> Value {
    let (name, value) = match (&m.source, &m.value) {
        (MatchSource::Header(h), MatchValue::Exact(v)) => {
            return json!({"type": "Exact", "name": h, "value": v});
        }
        (MatchSource::Header(h), MatchValue::Regex(r)) => (h.clone(), r.clone()),
        (MatchSource::Header(h), MatchValue::Prefix(p)) => {
            (h.clone(), format!("^{}.*", regex_escape(p)))
        }
        (MatchSource::Cookie(c), value) => {
            let v = match value {
                MatchValue::Exact(v) => format!("{}(;|$)", regex_escape(v)),
                MatchValue::Prefix(p) => format!("{}[^;]*(;|$)", regex_escape(p)),
                MatchValue::Regex(r) => format!("({r})"),
            };
            (
                "Cookie".to_string(),
                format!("(^|;\\s*){}={v}", regex_escape(c)),
            )
        }
    };
    json!({"type": "RegularExpression", "name": name, "value": value})
}

/// `text` as a regular expression that matches it literally.
pub(crate) fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Adds (or replaces) a `RequestMirror` filter copying `percent` of the stable rules' requests
/// to `service`; `None` removes Switchyard's mirror filters.
///
/// # Errors
/// No rule sends traffic to the stable Service.
pub fn set_mirror(
    route: &mut Value,
    b: Backends<'_>,
    mirror: Option<(&str, u8)>,
) -> Result<(), String> {
    let indices = stable_rules(route, b);
    if indices.is_empty() {
        return match mirror {
            None => Ok(()),
            Some(_) => Err(no_stable_rule(b)),
        };
    }
    let rules = rules_mut(route).ok_or_else(|| no_stable_rule(b))?;
    for i in indices {
        let rule = &mut rules[i];
        let mut filters = rule
            .get("filters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        filters.retain(|f| {
            let target = f.pointer("/requestMirror/backendRef");
            !(f.get("type").and_then(Value::as_str) == Some("RequestMirror")
                && target
                    .is_some_and(|t| is_service_ref(t, b.canary) || is_service_ref(t, b.stable)))
        });
        if let Some((service, percent)) = mirror {
            filters.push(json!({
                "type": "RequestMirror",
                "requestMirror": {"backendRef": service_ref(service, b.port, None), "percent": percent},
            }));
        }
        if filters.is_empty() {
            if let Some(obj) = rule.as_object_mut() {
                obj.remove("filters");
            }
        } else {
            rule["filters"] = Value::Array(filters);
        }
    }
    Ok(())
}

/// The backends of app `shop` on port 80, for the tests of the route edits.
#[cfg(test)]
pub(crate) const SHOP: Backends<'static> = Backends {
    stable: "shop-stable",
    canary: "shop-canary",
    port: 80,
};

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backends<'static> = SHOP;

    fn route() -> Value {
        json!({"spec": {"parentRefs": [{"name": "gw"}], "rules": [
            {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
             "backendRefs": [{"name": "shop-stable", "port": 80}]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/other"}}],
             "backendRefs": [{"name": "other", "port": 80}]},
        ]}})
    }

    #[test]
    fn weights_go_on_the_stable_rules_and_add_the_canary() {
        let mut r = route();
        set_weights(&mut r, B, 80).expect("weights");
        assert_eq!(
            r["spec"]["rules"][0]["backendRefs"],
            json!([{"name": "shop-stable", "port": 80, "weight": 80},
                   {"group": "", "kind": "Service", "name": "shop-canary", "port": 80, "weight": 20}])
        );
        assert_eq!(r["spec"]["rules"][1], route()["spec"]["rules"][1]);
        assert_eq!(stable_weight(&r, B), Some(80));
        assert_eq!(weights(&r, B), vec![(80, 20)]);
    }

    #[test]
    fn a_route_without_the_stable_service_is_refused_with_its_name() {
        let mut r = json!({"spec": {"rules": [{"backendRefs": [{"name": "x"}]}]}});
        let e = set_weights(&mut r, B, 100).expect_err("no rule");
        assert!(e.contains("shop-stable"), "{e}");
    }

    #[test]
    fn a_header_route_is_a_rule_of_its_own_and_goes_away_whole() {
        let mut r = route();
        let m: RouteMatch =
            serde_json::from_value(json!({"header": "x-canary", "exact": "1"})).expect("match");
        set_header_route(&mut r, B, Some(("shop-canary", std::slice::from_ref(&m)))).expect("add");
        assert_eq!(
            r["spec"]["rules"][0],
            json!({"name": HEADER_ROUTE_RULE,
                   "matches": [{"path": {"type": "PathPrefix", "value": "/"},
                                "headers": [{"type": "Exact", "name": "x-canary", "value": "1"}]}],
                   "backendRefs": [{"group": "", "kind": "Service", "name": "shop-canary", "port": 80, "weight": 1}]})
        );
        set_weights(&mut r, B, 90).expect("weights skip the header rule");
        assert_eq!(
            r["spec"]["rules"][0]["backendRefs"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
        set_header_route(&mut r, B, None).expect("remove");
        assert_eq!(r["spec"]["rules"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn a_mirror_is_a_filter_with_a_percentage() {
        let mut r = route();
        set_mirror(&mut r, B, Some(("shop-canary", 25))).expect("mirror");
        assert_eq!(
            r["spec"]["rules"][0]["filters"],
            json!([{"type": "RequestMirror",
                    "requestMirror": {"backendRef": {"group": "", "kind": "Service", "name": "shop-canary", "port": 80}, "percent": 25}}])
        );
        set_mirror(&mut r, B, None).expect("remove");
        assert!(r["spec"]["rules"][0].get("filters").is_none());
    }

    #[test]
    fn cookies_and_prefixes_become_regular_expressions() {
        let m: RouteMatch =
            serde_json::from_value(json!({"cookie": "beta", "exact": "yes"})).expect("match");
        assert_eq!(
            header_match(&m),
            json!({"type": "RegularExpression", "name": "Cookie", "value": "(^|;\\s*)beta=yes(;|$)"})
        );
        let m: RouteMatch =
            serde_json::from_value(json!({"header": "x-v", "prefix": "1."})).expect("match");
        assert_eq!(header_match(&m)["value"], json!("^1\\..*"));
    }
}
