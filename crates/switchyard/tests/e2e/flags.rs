//! Feature flags through the real daemon and CLI: CRUD with validation, toggles and rollouts,
//! OFREP single and bulk (ETag / 304, error codes), the SSE stream, the audit chain, and
//! `flags eval` without a daemon.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

pub(crate) const FLAGS: &str = r#"
flags:
  - key: checkout
    type: boolean
    variants: {on: true, off: false}
    defaultVariant: off
    serve: {variant: on}
    environments:
      staging: {enabled: true}
    metadata: {owner: payments}
  - key: banner
    type: string
    variants: {plain: plain, fancy: fancy}
    defaultVariant: plain
    rules:
      - name: staff
        when: {segment: staff}
        serve: {variant: fancy}
segments:
  staff: {attribute: {name: email, op: endsWith, values: ["@switchyard.dev"]}}
"#;

const BAD: &str = r#"
flags:
  - key: broken
    type: boolean
    variants: {on: true, off: false}
    defaultVariant: off
    rules:
      - when: {attribute: {name: email, op: matches, values: ["(unclosed"]}}
        serve: {variant: on}
"#;

/// One HTTP/1.1 exchange with extra headers: `(status, headers, body)`.
pub(crate) fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    let authorized = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("authorization"));
    if let (false, Some(token)) = (authorized, token_of(addr)) {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

pub(crate) fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

pub(crate) fn addr(d: &Daemon) -> SocketAddr {
    d.api.trim_start_matches("http://").parse().unwrap()
}

/// OFREP single evaluation: `(status, body)`.
pub(crate) fn ofrep(
    d: &Daemon,
    key: &str,
    context: Value,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let body = json!({ "context": context }).to_string();
    let (status, _, text) = http(
        addr(d),
        "POST",
        &format!("/ofrep/v1/evaluate/flags/{key}"),
        headers,
        &body,
    );
    (status, json_of(&text))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
}

fn flag_keys(d: &Daemon) -> Vec<String> {
    let list = json_of(&d.ok(&["flags", "list", "-o", "json"]));
    list["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn flags_crud_validation_toggles_rollouts_ofrep_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let file = write(dir.path(), "flags.yaml", FLAGS);
    let out = d.ok(&[
        "flags",
        "apply",
        "-f",
        file.to_str().unwrap(),
        "--reason",
        "launch",
    ]);
    assert!(out.contains("flag checkout created"), "{out}");
    assert!(out.contains("segment staff created"), "{out}");
    assert_eq!(flag_keys(&d), ["checkout", "banner"]);
    let got = json_of(&d.ok(&["flags", "get", "checkout"]));
    assert_eq!(got["metadata"]["owner"], "payments");
    let again = d.ok(&["flags", "apply", "-f", file.to_str().unwrap()]);
    assert!(again.contains("flag checkout unchanged"), "{again}");

    // A bad rule is rejected before anything is stored, naming the flag and the field path.
    let bad = write(dir.path(), "bad.yaml", BAD);
    let err = d.fails(&["flags", "apply", "-f", bad.to_str().unwrap()]);
    assert!(
        err.contains("flag `broken` at `rules[0].when.attribute`"),
        "{err}"
    );
    assert_eq!(flag_keys(&d), ["checkout", "banner"]);
    let body = json!({"format": "native", "content": BAD}).to_string();
    let (status, _, text) = http(addr(&d), "PUT", "/api/v1/flags", &[], &body);
    assert_eq!(status, 422, "{text}");
    let error = json_of(&text);
    assert_eq!(error["error"]["code"], "invalid_flags");
    assert_eq!(error["error"]["details"][0]["flag"], "broken");
    assert_eq!(
        error["error"]["details"][0]["path"],
        "rules[0].when.attribute"
    );

    // Unknown flags: the stable error body.
    let (status, _, text) = http(addr(&d), "GET", "/api/v1/flags/nope", &[], "");
    assert_eq!(status, 404);
    assert_eq!(json_of(&text)["error"]["code"], "flag_not_found");
    let err = d.fails(&["flags", "enable", "nope"]);
    assert!(err.contains("flag `nope` does not exist"), "{err}");

    // OFREP single evaluation, and toggles visible on the very next request.
    let (status, body) = ofrep(&d, "checkout", json!({"targetingKey": "u1"}), &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"key": "checkout", "value": true, "reason": "STATIC", "variant": "on",
               "metadata": {"owner": "payments"}})
    );
    d.ok(&[
        "flags",
        "disable",
        "checkout",
        "--env",
        "production",
        "--reason",
        "incident 42",
    ]);
    let (_, body) = ofrep(&d, "checkout", json!({"targetingKey": "u1"}), &[]);
    assert_eq!(
        (body["value"].clone(), body["reason"].clone()),
        (json!(false), json!("DISABLED"))
    );
    // Other environments keep their own switch: by header or by context attribute.
    let (_, body) = ofrep(
        &d,
        "checkout",
        json!({}),
        &[("X-Switchyard-Environment", "staging")],
    );
    assert_eq!(body["value"], true, "{body}");
    let (_, body) = ofrep(&d, "checkout", json!({"environment": "staging"}), &[]);
    assert_eq!(body["value"], true, "{body}");
    d.ok(&["flags", "enable", "checkout", "--env", "production"]);
    let (_, body) = ofrep(&d, "checkout", json!({"targetingKey": "u1"}), &[]);
    assert_eq!(body["value"], true, "{body}");

    // Rollout: 0% serves everybody the default, 100% serves everybody.
    d.ok(&["flags", "rollout", "checkout", "0"]);
    let (_, body) = ofrep(&d, "checkout", json!({"targetingKey": "u1"}), &[]);
    assert_eq!(
        (body["value"].clone(), body["reason"].clone()),
        (json!(false), json!("DEFAULT"))
    );
    d.ok(&["flags", "rollout", "checkout", "100"]);
    let (_, body) = ofrep(&d, "checkout", json!({"targetingKey": "u1"}), &[]);
    assert_eq!(body["value"], true, "{body}");
    let err = d.fails(&["flags", "rollout", "checkout", "150"]);
    assert!(err.contains("percentage 150 is outside 0..=100"), "{err}");

    // Targeting through a segment.
    let (_, body) = ofrep(&d, "banner", json!({"email": "ana@switchyard.dev"}), &[]);
    assert_eq!(
        (body["value"].clone(), body["reason"].clone()),
        (json!("fancy"), json!("TARGETING_MATCH"))
    );

    // OFREP errors.
    let (status, body) = ofrep(&d, "nope", json!({}), &[]);
    assert_eq!(status, 404);
    assert_eq!(body["key"], "nope");
    assert_eq!(body["errorCode"], "FLAG_NOT_FOUND");
    assert!(body["errorDetails"].is_string());
    let (status, _, text) = http(
        addr(&d),
        "POST",
        "/ofrep/v1/evaluate/flags/checkout",
        &[],
        r#"{"context": 5}"#,
    );
    assert_eq!(status, 400);
    assert_eq!(json_of(&text)["errorCode"], "INVALID_CONTEXT");
    let (status, _, text) = http(
        addr(&d),
        "POST",
        "/ofrep/v1/evaluate/flags/checkout",
        &[],
        "{not json",
    );
    assert_eq!(status, 400);
    assert_eq!(json_of(&text)["errorCode"], "PARSE_ERROR");
    let (status, _, text) = http(
        addr(&d),
        "POST",
        "/ofrep/v1/evaluate/flags",
        &[],
        r#"{"context": {"targetingKey": 7}}"#,
    );
    assert_eq!(status, 400);
    assert_eq!(json_of(&text)["errorCode"], "INVALID_CONTEXT");

    // Bulk with ETag and 304, and a new ETag after a change.
    let ctx = json!({"context": {"targetingKey": "u1"}}).to_string();
    let (status, head, text) = http(addr(&d), "POST", "/ofrep/v1/evaluate/flags", &[], &ctx);
    assert_eq!(status, 200);
    let bulk = json_of(&text);
    assert_eq!(bulk["flags"].as_array().unwrap().len(), 2);
    assert_eq!(
        bulk["eventStreams"],
        json!([{"type": "sse", "endpoint": {"requestUri": "/api/v1/flags/stream"}}]),
        "an admin token is not put into a URL"
    );
    let etag = header(&head, "etag").unwrap().to_string();
    let (status, _, text) = http(
        addr(&d),
        "POST",
        "/ofrep/v1/evaluate/flags",
        &[("If-None-Match", &etag)],
        &ctx,
    );
    assert_eq!(status, 304, "{text}");
    assert!(text.is_empty());
    d.ok(&["flags", "disable", "checkout"]);
    let (status, head, _) = http(
        addr(&d),
        "POST",
        "/ofrep/v1/evaluate/flags",
        &[("If-None-Match", &etag)],
        &ctx,
    );
    assert_eq!(status, 200);
    assert_ne!(header(&head, "etag").unwrap(), etag);

    // Delete.
    d.ok(&["flags", "delete", "banner", "--reason", "retired"]);
    assert_eq!(flag_keys(&d), ["checkout"]);

    // The audit log: who, when, why, before/after, and a chain that verifies.
    let audit = json_of(&d.ok(&["flags", "audit", "-o", "json"]));
    let entries = audit["entries"].as_array().unwrap();
    assert!(entries.len() >= 8, "{audit:#}");
    let incident = entries
        .iter()
        .find(|e| e["reason"] == "incident 42")
        .unwrap();
    assert_eq!(
        incident["actor"], "admin",
        "the token's name, not the client's say"
    );
    assert_eq!(incident["key"], "checkout");
    assert_eq!(
        incident["after"]["environments"]["production"]["enabled"],
        false
    );
    assert!(
        incident["before"]["environments"]
            .get("production")
            .is_none()
    );
    assert!(
        entries
            .windows(2)
            .all(|w| w[1]["prev_hash"] == w[0]["hash"])
    );
    let verified = d.ok(&["flags", "audit", "--verify"]);
    assert!(verified.contains("audit log verified"), "{verified}");
    let text = d.ok(&["flags", "audit", "--key", "banner"]);
    assert!(text.contains("retired"), "{text}");
}

#[test]
fn flags_survive_a_restart_and_the_stream_announces_changes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    {
        let d = Daemon::start_on(dir.path(), port);
        let file = write(dir.path(), "flags.yaml", FLAGS);
        d.ok(&["flags", "apply", "-f", file.to_str().unwrap()]);
        d.ok(&["flags", "disable", "checkout"]);
    }
    let d = Daemon::start_on(dir.path(), port);
    let (_, body) = ofrep(&d, "checkout", json!({}), &[]);
    assert_eq!(body["reason"], "DISABLED", "{body}");

    let mut stream = TcpStream::connect(addr(&d)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let head = format!(
        "GET /api/v1/flags/stream HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\n\r\n",
        addr(&d),
        d.token
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "\r\n\r\n");
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(
        seen.to_ascii_lowercase().contains("text/event-stream"),
        "{seen}"
    );
    d.ok(&["flags", "enable", "checkout"]);
    read_until(&mut stream, &mut seen, "refetchEvaluation");
    assert!(seen.contains("event: message"), "{seen}");
    let (_, body) = ofrep(&d, "checkout", json!({}), &[]);
    assert_eq!(body["value"], true, "{body}");
}

/// What browser SDKs need from OFREP: the change stream named as the spec names it and reachable
/// by an `EventSource` (no headers) with an SDK key, and a bulk ETag that anonymous clients can
/// revalidate although their split is drawn at random.
#[test]
fn ofrep_serves_browsers_their_stream_and_stable_etags() {
    const SPLIT: &str = r#"
flags:
  - key: layout
    type: string
    variants: {a: a, b: b, c: c, d: d}
    serve:
      split:
        variants: [{variant: a, weight: 1}, {variant: b, weight: 1}, {variant: c, weight: 1}, {variant: d, weight: 1}]
  - key: checkout
    type: boolean
    variants: {on: true, off: false}
    defaultVariant: off
"#;
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let file = write(dir.path(), "flags.yaml", SPLIT);
    d.ok(&["flags", "apply", "-f", file.to_str().unwrap()]);
    let sdk = d.ok(&[
        "token",
        "create",
        "--name",
        "web",
        "--role",
        "sdk",
        "--env",
        "production",
    ]);
    let sdk = sdk.trim();
    let auth = format!("Bearer {sdk}");
    let bulk = |headers: &[(&str, &str)]| {
        let mut all = vec![("Authorization", auth.as_str())];
        all.extend_from_slice(headers);
        http(
            addr(&d),
            "POST",
            "/ofrep/v1/evaluate/flags",
            &all,
            r#"{"context": {}}"#,
        )
    };

    // Anonymous: the split is drawn at random, yet the ETag holds and revalidation answers 304.
    let (status, head, text) = bulk(&[]);
    assert_eq!(status, 200, "{text}");
    let etag = header(&head, "etag").unwrap().to_string();
    let mut drawn = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let (_, head, text) = bulk(&[]);
        assert_eq!(
            header(&head, "etag").unwrap(),
            etag,
            "the same answer, the same tag"
        );
        let answer = json_of(&text);
        let layout = answer["flags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == "layout")
            .unwrap()
            .clone();
        drawn.insert(layout["value"].as_str().unwrap().to_owned());
        let (status, _, text) = bulk(&[("If-None-Match", &etag)]);
        assert_eq!(status, 304, "{text}");
    }
    assert!(drawn.len() > 1, "anonymous draws are random: {drawn:?}");
    // A real change is a new tag.
    d.ok(&["flags", "disable", "checkout"]);
    let (status, head, _) = bulk(&[("If-None-Match", &etag)]);
    assert_eq!(status, 200);
    assert_ne!(header(&head, "etag").unwrap(), etag);

    // The stream, by the endpoint the answer names: origin-relative, with the SDK key as the
    // access token an EventSource cannot send as a header.
    let (_, _, text) = bulk(&[]);
    let streams = &json_of(&text)["eventStreams"];
    assert_eq!(streams[0]["type"], "sse", "{streams}");
    assert!(streams[0].get("url").is_none(), "{streams}");
    let uri = streams[0]["endpoint"]["requestUri"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        uri.starts_with("/api/v1/flags/stream?access_token="),
        "{uri}"
    );
    let mut stream = TcpStream::connect(addr(&d)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let head = format!(
        "GET {uri} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        addr(&d)
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "\r\n\r\n");
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    d.ok(&["flags", "enable", "checkout"]);
    read_until(&mut stream, &mut seen, "refetchEvaluation");
    // Without a token, or with a wrong one, the stream is refused.
    for path in [
        "/api/v1/flags/stream",
        "/api/v1/flags/stream?access_token=nope",
    ] {
        let mut s = TcpStream::connect(addr(&d)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            addr(&d)
        );
        s.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 401"), "{path}: {answer}");
    }
}

/// Unleash's frontend API: the enabled toggles for an Unleash context, with the token as the whole
/// `Authorization` header (as Unleash SDKs send it) — accepted on these paths only.
#[test]
fn the_unleash_frontend_api_lists_enabled_toggles() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let file = write(dir.path(), "flags.yaml", FLAGS);
    d.ok(&["flags", "apply", "-f", file.to_str().unwrap()]);
    let bare = d.token.clone();
    let (status, head, text) = http(
        addr(&d),
        "GET",
        "/api/frontend?userId=u1&properties%5Bemail%5D=ann%40switchyard.dev",
        &[("Authorization", &bare)],
        "",
    );
    assert_eq!(status, 200, "{text}");
    assert!(header(&head, "etag").is_some());
    let toggles = json_of(&text)["toggles"].as_array().unwrap().clone();
    let names: Vec<&str> = toggles
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["checkout", "banner"], "{text}");
    assert_eq!(
        toggles[1]["variant"],
        json!({"name": "fancy", "enabled": true, "feature_enabled": true,
               "payload": {"type": "string", "value": "fancy"}})
    );
    // The same context by POST; a visitor does not get the staff banner.
    let (status, _, text) = http(
        addr(&d),
        "POST",
        "/api/frontend",
        &[("Authorization", &bare)],
        r#"{"context": {"userId": "u2", "properties": {"email": "bob@other.org"}}}"#,
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(json_of(&text)["toggles"][0]["name"], "checkout");
    assert_eq!(
        json_of(&text)["toggles"].as_array().unwrap().len(),
        1,
        "{text}"
    );
    // A bare token is not accepted anywhere else.
    let (status, _, _) = http(
        addr(&d),
        "GET",
        "/api/v1/flags",
        &[("Authorization", &bare)],
        "",
    );
    assert_eq!(status, 401);
}

/// Unleash's client API for server SDKs: the flags as Unleash features (with an ETag), and the
/// SDKs' registrations and usage counts, read back at `/api/v1/flags/clients`.
#[test]
fn the_unleash_client_api_serves_features_and_records_usage() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let file = write(dir.path(), "flags.yaml", FLAGS);
    d.ok(&["flags", "apply", "-f", file.to_str().unwrap()]);
    let bare = d.token.clone();
    let auth = [("Authorization", bare.as_str())];
    let (status, head, text) = http(addr(&d), "GET", "/api/client/features", &auth, "");
    assert_eq!(status, 200, "{text}");
    let body = json_of(&text);
    let names: Vec<&str> = body["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["checkout", "banner"], "{text}");
    // The staff rule, its segment inlined as a constraint.
    let staff = &body["features"][1]["strategies"][0];
    assert_eq!(staff["constraints"][0]["contextName"], "email", "{text}");
    assert_eq!(staff["constraints"][0]["operator"], "STR_ENDS_WITH");
    assert_eq!(staff["variants"][0]["payload"]["value"], "fancy");
    assert_eq!(body["leftOut"], json!([]));
    let etag = header(&head, "etag").unwrap();
    let (status, _, _) = http(
        addr(&d),
        "GET",
        "/api/client/features",
        &[("Authorization", &bare), ("If-None-Match", etag)],
        "",
    );
    assert_eq!(status, 304);
    let (_, _, text) = http(
        addr(&d),
        "GET",
        "/api/client/features?namePrefix=ban",
        &auth,
        "",
    );
    assert_eq!(json_of(&text)["features"].as_array().unwrap().len(), 1);

    let registration = r#"{"appName": "checkout-svc", "instanceId": "i-1",
        "sdkVersion": "unleash-client-node:6.12.2", "strategies": ["default"],
        "started": "2026-01-01T00:00:00Z", "interval": 15000}"#;
    let (status, _, text) = http(
        addr(&d),
        "POST",
        "/api/client/register",
        &auth,
        registration,
    );
    assert_eq!(status, 202, "{text}");
    let metrics = r#"{"appName": "checkout-svc", "instanceId": "i-1", "bucket": {
        "start": "2026-01-01T00:00:00Z", "stop": "2026-01-01T00:01:00Z",
        "toggles": {"banner": {"yes": 3, "no": 1, "variants": {"fancy": 3}},
                    "no-such-flag": {"yes": 5, "no": 0}}}}"#;
    for _ in 0..2 {
        let (status, _, text) = http(addr(&d), "POST", "/api/client/metrics", &auth, metrics);
        assert_eq!(status, 202, "{text}");
    }
    // A negative count is refused with the path to it; nothing of it is recorded.
    let (status, _, text) = http(
        addr(&d),
        "POST",
        "/api/client/metrics",
        &auth,
        r#"{"appName": "checkout-svc", "instanceId": "i-1",
            "bucket": {"toggles": {"checkout": {"yes": -1}}}}"#,
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("bucket.toggles.checkout.yes"), "{text}");
    let (status, _, text) = http(
        addr(&d),
        "POST",
        "/api/client/register",
        &auth,
        r#"{"appName": ""}"#,
    );
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("appName must be a non-empty string"),
        "{text}"
    );
    let (status, _, text) = http(
        addr(&d),
        "GET",
        "/api/v1/flags/clients",
        &[("Authorization", &format!("Bearer {bare}"))],
        "",
    );
    assert_eq!(status, 200, "{text}");
    let instances = json_of(&text)["instances"].clone();
    assert_eq!(instances.as_array().unwrap().len(), 1, "{text}");
    let instance = &instances[0];
    assert_eq!(instance["environment"], "production");
    assert_eq!(instance["sdkVersion"], "unleash-client-node:6.12.2");
    assert_eq!(instance["registered"], true);
    assert_eq!(
        instance["toggles"],
        json!({"banner": {"yes": 6, "no": 2, "variants": {"fancy": 6}}})
    );
}

/// A flagd file that flagd loads loads here too; a branch that names no variant is reported with
/// its path and fails only the evaluations that reach it; `--strict` refuses the file instead.
#[test]
fn a_flagd_branch_naming_no_variant_is_a_warning_and_strict_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let flagd = r#"{"flags": {
        "greeting": {"state": "ENABLED", "defaultVariant": "hi",
            "variants": {"hi": "hi", "hey": "hey"},
            "targeting": {"if": [{"==": [{"var": "plan"}, "pro"]}, "hey", "howdy"]}},
        "plain": {"state": "ENABLED", "defaultVariant": "on", "variants": {"on": true, "off": false}}}}"#;
    let file = write(dir.path(), "flags.flagd.json", flagd);
    let path = file.to_str().unwrap();
    let refused = d.fails(&[
        "flags", "apply", "-f", path, "--format", "flagd", "--strict",
    ]);
    assert!(
        refused.contains("flag `greeting` at targeting.if[2]: `howdy` names no variant"),
        "{refused}"
    );
    assert!(flag_keys(&d).is_empty(), "nothing applied");
    let out = d.cli(&["flags", "apply", "-f", path, "--format", "flagd"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: flag `greeting` at targeting.if[2]: `howdy` names no variant"),
        "{stderr}"
    );
    assert_eq!(flag_keys(&d), ["greeting", "plain"]);
    let bearer = format!("Bearer {}", d.token);
    let evaluate = |key: &str, plan: &str| {
        let body = json!({"context": {"targetingKey": "u1", "plan": plan}}).to_string();
        let path = format!("/ofrep/v1/evaluate/flags/{key}");
        json_of(
            &http(
                addr(&d),
                "POST",
                &path,
                &[("Authorization", &bearer)],
                &body,
            )
            .2,
        )
    };
    assert_eq!(evaluate("greeting", "pro")["value"], "hey");
    let bad = evaluate("greeting", "free");
    assert_eq!(bad["errorCode"], "GENERAL", "{bad}");
    assert_eq!(evaluate("plain", "free")["value"], true);
}

fn read_until(stream: &mut TcpStream, seen: &mut String, needle: &str) {
    let mut buf = [0u8; 4096];
    while !seen.contains(needle) {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "stream closed before `{needle}`: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

fn eval(args: &[&str]) -> Value {
    let out = std::process::Command::new(BIN)
        .args(["flags", "eval"])
        .args(args)
        // Nothing listens here: eval must not need a daemon.
        .env("SWITCHYARD_SERVER", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "flags eval {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_of(&String::from_utf8(out.stdout).unwrap())
}

#[test]
fn flags_eval_works_without_a_daemon_for_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let native = write(dir.path(), "flags.yaml", FLAGS);
    let details = eval(&[
        "--file",
        native.to_str().unwrap(),
        "--flag",
        "banner",
        "--type",
        "string",
        "--context",
        r#"{"targetingKey": "u1", "email": "ana@switchyard.dev"}"#,
    ]);
    assert_eq!(
        details,
        json!({"key": "banner", "value": "fancy", "variant": "fancy", "reason": "TARGETING_MATCH",
               "error_code": null, "error_message": null, "metadata": {}})
    );
    let mismatch = eval(&[
        "--file",
        native.to_str().unwrap(),
        "--flag",
        "banner",
        "--type",
        "boolean",
        "--default",
        "true",
    ]);
    assert_eq!(mismatch["error_code"], "TYPE_MISMATCH");
    assert_eq!(mismatch["value"], true, "the caller's default stands in");
    let missing = eval(&[
        "--file",
        native.to_str().unwrap(),
        "--flag",
        "nope",
        "--type",
        "integer",
    ]);
    assert_eq!(missing["error_code"], "FLAG_NOT_FOUND");

    let spec = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../switchyard-flags/tests/unleash-client-specification/01-simple-examples.json");
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(spec).unwrap()).unwrap();
    let unleash = write(dir.path(), "unleash.json", &spec["state"].to_string());
    let on = eval(&[
        "--file",
        unleash.to_str().unwrap(),
        "--format",
        "unleash",
        "--flag",
        "Feature.A",
        "--type",
        "boolean",
        "--context",
        r#"{"userId": "123"}"#,
    ]);
    assert_eq!(on["value"], true, "{on}");
    let off = eval(&[
        "--file",
        unleash.to_str().unwrap(),
        "--format",
        "unleash",
        "--flag",
        "Feature.B",
        "--type",
        "boolean",
    ]);
    assert_eq!(
        (off["value"].clone(), off["reason"].clone()),
        (json!(false), json!("DISABLED"))
    );

    let flagd = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../switchyard-flags/tests/flagd/testkit-flags.json");
    let details = eval(&[
        "--file",
        flagd.to_str().unwrap(),
        "--format",
        "flagd",
        "--flag",
        "boolean-flag",
        "--type",
        "boolean",
    ]);
    assert_eq!(
        (
            details["value"].clone(),
            details["variant"].clone(),
            details["reason"].clone()
        ),
        (json!(true), json!("on"), json!("STATIC"))
    );
}
