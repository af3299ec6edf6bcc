#![allow(clippy::unwrap_used)]

use super::*;
use crate::manifest::app::{CanaryScale, RuntimeSpec, TrafficRouting};

const GOOD: &str = r#"apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {name: checkout}
spec:
  listen: 127.0.0.1:8080
  runtime: {process: {command: ["./checkout", "--port", "{port}"], instances: 2}}
  healthCheck: {path: /health, interval: 2s, timeout: 1s, healthyThreshold: 2, unhealthyThreshold: 2}
  strategy:
    canary:
      stickiness: {header: x-user-id}
      steps:
        - setWeight: 5
        - pause: {duration: 30s}
        - analysis: {templates: [error-budget]}
        - setWeight: 50
        - pause: {}
        - setWeight: 100
  rollbackPolicy: {errorRate: {max: 0.05}, latencyIncrease: {max: 1.5}, window: 1m, consecutiveFailures: 3}
---
apiVersion: switchyard.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: error-budget}
spec:
  metrics:
    - name: errors
      provider: {builtin: {metric: error_rate}}
      successCondition: result < 0.01
      interval: 10s
      count: 6
      failureLimit: 1
"#;

fn errors(text: &str) -> Vec<ManifestError> {
    load_str(text, Path::new("m.yaml")).unwrap_err().0
}

#[test]
fn loads_the_design_example() {
    let set = load_str(GOOD, Path::new("m.yaml")).unwrap();
    assert_eq!(set.apps.len(), 1);
    assert_eq!(set.templates.len(), 1);
    let app = &set.apps[0];
    assert_eq!(app.metadata.name.as_str(), "checkout");
    let Strategy::Canary(c) = &app.spec.strategy else {
        panic!("a canary")
    };
    assert_eq!(c.steps.len(), 6);
    assert!(matches!(c.steps[0], CanaryStep::SetWeight(w) if w.get() == 5));
    assert_eq!(set.templates[0].spec.metrics[0].count(), 6);
    set.check_references(&BTreeSet::new()).unwrap();
}

#[test]
fn unknown_field_names_line_column_and_path() {
    let text = GOOD.replace("healthyThreshold: 2,", "healthyThreshold: 2, bogus: 1,");
    let e = &errors(&text)[0];
    assert_eq!(e.line, Some(7));
    assert_eq!(e.path, "spec.healthCheck.bogus");
    let shown = e.to_string();
    assert!(shown.starts_with("m.yaml:7:"), "{shown}");
    assert!(shown.contains("unknown field `bogus`"), "{shown}");
}

#[test]
fn weight_out_of_range_is_located() {
    let text = GOOD.replace("setWeight: 50", "setWeight: 150");
    let e = &errors(&text)[0];
    assert_eq!(e.line, Some(15));
    assert_eq!(e.path, "spec.strategy.canary.steps[3].setWeight");
    assert!(
        e.to_string()
            .contains("expected a percentage from 0 to 100, got 150"),
        "{e}"
    );
}

#[test]
fn bad_condition_and_duration_are_located_in_the_second_document() {
    let text = GOOD
        .replace("result < 0.01", "result <<< 0.01")
        .replace("interval: 10s", "interval: ten");
    let e = &errors(&text)[0];
    // Values that fail their own validation are located at the object holding them.
    assert_eq!(e.line, Some(25));
    assert_eq!(e.path, "spec.metrics[0].successCondition");
    assert!(
        e.to_string().contains("expected a condition expression"),
        "{e}"
    );
    let text = GOOD.replace("interval: 10s", "interval: ten");
    let e = &errors(&text)[0];
    assert_eq!(e.line, Some(25));
    assert_eq!(e.path, "spec.metrics[0].interval");
    assert!(e.to_string().contains("expected a duration"), "{e}");
}

#[test]
fn every_bad_document_is_reported() {
    let text = GOOD
        .replace("setWeight: 5\n", "setWeight: -1\n")
        .replace("count: 6", "count: 0");
    let all = errors(&text);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1].path, "spec.metrics[0].count");
}

#[test]
fn api_version_and_kind_are_checked() {
    let e = &errors(&GOOD.replacen("switchyard.dev/v1alpha1", "v2", 1))[0];
    assert!(matches!(e.kind, ManifestErrorKind::ApiVersion { .. }));
    assert_eq!(e.path, "apiVersion");
    let e = &errors(&GOOD.replacen("kind: App", "kind: Ap", 1))[0];
    assert!(e.to_string().contains("unknown kind `Ap`"), "{e}");
    assert_eq!(
        e.line,
        Some(2),
        "located at the kind, not at the document's start"
    );
}

#[test]
fn second_document_error_carries_its_line() {
    let e = &errors(&GOOD.replacen("kind: AnalysisTemplate", "kind: Nope", 1))[0];
    assert_eq!(e.line, Some(21));
}

#[test]
fn cross_field_rules() {
    let e = &errors(&GOOD.replace("      successCondition: result < 0.01\n", ""))[0];
    assert!(matches!(e.kind, ManifestErrorKind::NoCondition));
    let e = &errors(&GOOD.replace("      interval: 10s\n", ""))[0];
    assert!(matches!(e.kind, ManifestErrorKind::CountWithoutInterval));
    let text = GOOD.replace(
        "analysis: {templates: [error-budget]}",
        "analysis: {templates: []}",
    );
    assert!(matches!(
        errors(&text)[0].kind,
        ManifestErrorKind::NoTemplates
    ));
}

#[test]
fn duplicates_and_missing_references() {
    let twice = format!("{GOOD}---\n{}", GOOD.split("---\n").nth(1).unwrap());
    assert!(matches!(
        errors(&twice)[0].kind,
        ManifestErrorKind::Duplicate { .. }
    ));
    let only_app = GOOD.split("---\n").next().unwrap();
    let set = load_str(only_app, Path::new("m.yaml")).unwrap();
    let e = set.check_references(&BTreeSet::new()).unwrap_err();
    assert_eq!(
        e.0[0].path,
        "spec.strategy.canary.steps[2].analysis.templates[0]"
    );
    let applied = BTreeSet::from(["error-budget".to_string()]);
    set.check_references(&applied).unwrap();
}

#[test]
fn a_document_defined_in_two_files_is_an_error_in_the_second() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), GOOD).unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        GOOD.split("---\n").next().unwrap(),
    )
    .unwrap();
    let e = load_dir(dir.path()).unwrap_err().0;
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].file, dir.path().join("b.yaml"));
    assert!(
        e[0].to_string().contains("App `checkout` is defined twice"),
        "{}",
        e[0]
    );

    let mut set = load_str(GOOD, Path::new("a.yaml")).unwrap();
    let other = load_str(GOOD.split("---\n").nth(1).unwrap(), Path::new("t.yaml")).unwrap();
    let e = set.merge(other, Path::new("t.yaml")).unwrap_err().0;
    assert!(
        matches!(
            &e[0].kind,
            ManifestErrorKind::Duplicate {
                kind: "AnalysisTemplate",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn syntax_error_is_located() {
    let e = &errors("apiVersion: switchyard.dev/v1alpha1\nkind: App\nmetadata: {name: x\n")[0];
    assert!(e.line.is_some(), "{e}");
}

#[test]
fn runtime_needs_exactly_one_kind() {
    let text = GOOD.replace("runtime: {process:", "runtime: {docker:");
    let e = &errors(&text)[0];
    assert_eq!(e.path, "spec.runtime");
    assert!(e.to_string().contains("unknown variant `docker`"), "{e}");
}

#[test]
fn the_shipped_example_is_valid() {
    let text = include_str!("../../../../../examples/shop.yaml");
    let set = load_str(text, Path::new("examples/shop.yaml")).unwrap();
    set.check_references(&BTreeSet::new()).unwrap();
    let text = include_str!("../../../../../examples/experiments.yaml");
    let set = load_str(text, Path::new("examples/experiments.yaml")).unwrap();
    assert_eq!(set.experiments.len(), 2);
    let text = include_str!("../../../../../examples/pipeline.yaml");
    let set = load_str(text, Path::new("examples/pipeline.yaml")).unwrap();
    set.check_fleet_references(&Default::default()).unwrap();
    assert_eq!(
        (
            set.pipelines.len(),
            set.windows.len(),
            set.notifiers.len(),
            set.apps.len()
        ),
        (1, 1, 3, 4)
    );
}

#[test]
fn notifiers_need_one_sink_a_real_url_and_a_variable_name_for_their_key() {
    let doc = |spec: &str| {
        format!(
            "apiVersion: switchyard.dev/v1alpha1\nkind: Notifier\nmetadata: {{name: ops}}\nspec:\n{spec}"
        )
    };
    let e = errors(&doc("  events: [rollout.rolled_back]\n"));
    assert_eq!(e[0].path, "spec");
    assert!(
        e[0].to_string()
            .contains("exactly one of `webhook`, `slack` or `cdevents`"),
        "{}",
        e[0]
    );
    let e = errors(&doc(
        "  slack: {url: 'https://a.example/x'}\n  cdevents: {url: 'http://b.example/'}\n",
    ));
    assert!(e[0].to_string().contains("exactly one of"), "{}", e[0]);
    let e = errors(&doc("  slack: {url: 'ftp://a.example/x'}\n"));
    assert_eq!((e[0].path.as_str(), e[0].line), ("spec.slack.url", Some(5)));
    assert!(
        e[0].to_string()
            .contains("expected an http:// or https:// URL"),
        "{}",
        e[0]
    );
    let e = errors(&doc(
        "  webhook: {url: 'https://a.example/x', secretEnv: 'my key'}\n",
    ));
    assert_eq!(e[0].path, "spec.webhook.secretEnv");
    let e = errors(&doc(
        "  slack: {url: 'https://a.example/x'}\n  events: [rollout.exploded]\n",
    ));
    assert_eq!(e[0].path, "spec.events[0]");
    assert!(
        e[0].to_string()
            .contains("unknown variant `rollout.exploded`"),
        "{}",
        e[0]
    );
    // An app naming a notifier that is nowhere.
    let app = GOOD.replace(
        "  listen: 127.0.0.1:8080\n",
        "  listen: 127.0.0.1:8080\n  notifiers: [pager]\n",
    );
    let set = load_str(&app, Path::new("m.yaml")).unwrap();
    let e = set
        .check_fleet_references(&Default::default())
        .unwrap_err()
        .0;
    assert_eq!(
        (e[0].path.as_str(), e[0].line),
        ("spec.notifiers[0]", Some(6))
    );
    assert!(
        e[0].to_string().contains("refers to Notifier `pager`"),
        "{}",
        e[0]
    );
}

#[test]
fn approval_bake_and_background_analysis() {
    let text = GOOD
        .replace("        - pause: {}\n", "        - approval: {timeout: 1h, onTimeout: approve}\n        - bake: {duration: 5m, templates: [error-budget]}\n")
        .replace("      stickiness: {header: x-user-id}\n", "      stickiness: {header: x-user-id}\n      scaleDownDelay: 30s\n      analysis: {templates: [error-budget], startingStep: 1}\n");
    let set = load_str(&text, Path::new("m.yaml")).unwrap();
    let Strategy::Canary(c) = &set.apps[0].spec.strategy else {
        panic!("a canary")
    };
    assert!(
        matches!(&c.steps[4], CanaryStep::Approval(a) if a.require_reason && a.timeout.is_some())
    );
    assert!(matches!(&c.steps[5], CanaryStep::Bake(b) if b.templates.len() == 1));
    assert_eq!(c.analysis.as_ref().unwrap().starting_step, 1);
    assert_eq!(c.template_refs().len(), 3);
    let only_app = text.split("---\n").next().unwrap();
    let e = load_str(only_app, Path::new("m.yaml"))
        .unwrap()
        .check_references(&BTreeSet::new())
        .unwrap_err();
    let paths: Vec<&str> = e.0.iter().map(|e| e.path.as_str()).collect();
    assert!(
        paths.contains(&"spec.strategy.canary.steps[5].bake.templates[0]"),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"spec.strategy.canary.analysis.templates[0]"),
        "{paths:?}"
    );
    let bad = text.replace("startingStep: 1", "startingStep: 9");
    assert!(matches!(
        errors(&bad)[0].kind,
        ManifestErrorKind::StartingStep { steps: 7 }
    ));
    let bad = text.replace("onTimeout: approve", "onTimeout: maybe");
    assert!(
        errors(&bad)[0]
            .to_string()
            .contains("unknown variant `maybe`")
    );
}

const PROVIDERS: &str = r#"apiVersion: switchyard.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: external}
spec:
  metrics:
    - name: prom
      provider:
        prometheus:
          address: http://127.0.0.1:9090
          query: sum(rate(http_requests_total{app="{{app}}",version="{{version}}",code=~"5.."}[1m]))
          baselineQuery: sum(rate(http_requests_total{app="{{app}}",version="{{version}}"}[1m]))
          timeout: 3s
      successCondition: result <= baseline * 1.2
    - name: web
      provider:
        web:
          url: http://metrics.internal:8080/api/{{app}}?version={{version}}
          method: POST
          headers: {Authorization: "Bearer abc", X-Release: "{{release}}"}
          body: '{"version": "{{version}}"}'
          jsonPath: /data/value
      successCondition: result < 0.01
    - name: script
      provider: {command: {command: [./check.sh, "{{app}}", "{{canary_version}}"], env: {LIMIT: "5"}}}
      successCondition: result == 0
"#;

#[test]
fn external_providers_load_with_their_defaults() {
    use crate::manifest::analysis::{HttpMethod, ProviderSpec, TemplateVars};
    let set = load_str(PROVIDERS, Path::new("p.yaml")).unwrap();
    let metrics = &set.templates[0].spec.metrics;
    let vars = TemplateVars {
        app: "shop",
        release: "stable",
        version: "v1",
        canary_version: "v2",
        stable_version: "v1",
        namespace: "",
    };
    let ProviderSpec::Prometheus(p) = metrics[0].provider.as_ref().unwrap() else {
        panic!("{:?}", metrics[0].provider);
    };
    assert_eq!(p.address.as_str(), "http://127.0.0.1:9090");
    assert_eq!(
        p.baseline_query.as_ref().unwrap().render(&vars),
        r#"sum(rate(http_requests_total{app="shop",version="v1"}[1m]))"#
    );
    assert_eq!(p.timeout(), std::time::Duration::from_secs(3));
    let ProviderSpec::Web(w) = metrics[1].provider.as_ref().unwrap() else {
        panic!("{:?}", metrics[1].provider);
    };
    assert_eq!(w.method, HttpMethod::Post);
    assert_eq!(
        w.url.template().render(&vars),
        "http://metrics.internal:8080/api/shop?version=v1"
    );
    assert_eq!(w.json_path.as_str(), "/data/value");
    assert_eq!(w.headers.len(), 2);
    assert_eq!(w.timeout(), crate::manifest::analysis::DEFAULT_WEB_TIMEOUT);
    let ProviderSpec::Command(c) = metrics[2].provider.as_ref().unwrap() else {
        panic!("{:?}", metrics[2].provider);
    };
    assert_eq!(c.command.program().source(), "./check.sh");
    assert_eq!(c.command.args()[1].render(&vars), "v2");
    assert_eq!(
        c.timeout(),
        crate::manifest::analysis::DEFAULT_COMMAND_TIMEOUT
    );
    assert_eq!(metrics[2].provider.as_ref().unwrap().kind(), "command");
    // Rollouts snapshot their templates as JSON: providers survive the round trip.
    for m in metrics {
        let json = serde_json::to_string(&m.provider).unwrap();
        assert_eq!(
            serde_json::from_str::<Option<ProviderSpec>>(&json).unwrap(),
            m.provider,
            "{json}"
        );
    }
}

#[test]
fn bad_provider_fields_are_located() {
    let cases = [
        (
            PROVIDERS.replace("http://127.0.0.1:9090", "https://prom:9090"),
            "spec.metrics[0].provider.prometheus.address",
            "https is not supported by this build",
        ),
        (
            PROVIDERS.replace("address: http://127.0.0.1:9090", "address: prom:9090x"),
            "spec.metrics[0].provider.prometheus.address",
            "expected an http:// URL",
        ),
        (
            PROVIDERS.replacen(
                r#"version="{{version}}",code"#,
                r#"version="{{verison}}",code"#,
                1,
            ),
            "spec.metrics[0].provider.prometheus.query",
            "unknown placeholder `{{verison}}`",
        ),
        (
            PROVIDERS.replace("timeout: 3s", "timeout: soon"),
            "spec.metrics[0].provider.prometheus.timeout",
            "expected a duration",
        ),
        (
            PROVIDERS.replace("jsonPath: /data/value", "jsonPath: data.value"),
            "spec.metrics[1].provider.web.jsonPath",
            "is not a JSON pointer",
        ),
        (
            PROVIDERS.replace("jsonPath: /data/value", "json_path: /data/value"),
            "spec.metrics[1].provider.web.json_path",
            "unknown field `json_path`",
        ),
        (
            PROVIDERS.replace("method: POST", "method: DELETE"),
            "spec.metrics[1].provider.web.method",
            "unknown variant `DELETE`",
        ),
        (
            PROVIDERS.replace("url: http://metrics.internal:8080/", "url: /"),
            "spec.metrics[1].provider.web.url",
            "expected an absolute URL",
        ),
        (
            PROVIDERS.replace("X-Release:", "X Release:"),
            "spec.metrics[1].provider.web.headers.X Release",
            "is not an HTTP header name",
        ),
        (
            PROVIDERS.replace(r#"[./check.sh, "{{app}}", "{{canary_version}}"]"#, "[]"),
            "spec.metrics[2].provider.command.command",
            "expected a program and its arguments",
        ),
        (
            PROVIDERS.replace("provider: {command:", "provider: {datadog:"),
            "spec.metrics[2].provider",
            "unknown variant `datadog`, expected one of `builtin`, `prometheus`, `web`, `command`",
        ),
        (
            PROVIDERS.replace(
                "      provider:\n        web:",
                "      provider:\n        builtin: {metric: rps}\n        web:",
            ),
            "spec.metrics[1].provider",
            "found both `builtin` and `web`",
        ),
    ];
    for (text, path, message) in cases {
        let all = errors(&text);
        let e = &all[0];
        assert_eq!(e.path, path, "{e}");
        assert!(e.line.is_some() && e.column.is_some(), "{e}");
        let shown = e.to_string();
        assert!(shown.starts_with("m.yaml:"), "{shown}");
        assert!(shown.contains(message), "{shown} should contain {message}");
    }
}

#[test]
fn blue_green_strategy() {
    let text = GOOD.replace(
        "    canary:\n      stickiness: {header: x-user-id}\n      steps:\n        - setWeight: 5\n        - pause: {duration: 30s}\n        - analysis: {templates: [error-budget]}\n        - setWeight: 50\n        - pause: {}\n        - setWeight: 100\n",
        "    blueGreen:\n      previewListen: 127.0.0.1:8081\n      smokeTests: [{path: /health, expectStatus: 204, expectBody: ok}]\n      prePromotionAnalysis: {templates: [error-budget]}\n      autoPromotionAfter: 1m\n",
    );
    let set = load_str(&text, Path::new("m.yaml")).unwrap();
    let Strategy::BlueGreen(b) = &set.apps[0].spec.strategy else {
        panic!("blue-green")
    };
    assert_eq!(b.smoke_tests[0].expect_status, 204);
    assert_eq!(
        b.scale_down_delay,
        std::time::Duration::from_secs(30),
        "Argo's default"
    );
    assert_eq!(set.apps[0].spec.strategy.template_refs().len(), 1);
    let same = text.replace(
        "previewListen: 127.0.0.1:8081",
        "previewListen: 127.0.0.1:8080",
    );
    assert!(matches!(
        errors(&same)[0].kind,
        ManifestErrorKind::PreviewOnListen
    ));
    let bad = text.replace(
        "smokeTests: [{path: /health,",
        "smokeTests: [{path: health,",
    );
    assert!(
        errors(&bad)[0].to_string().contains("absolute path"),
        "{}",
        errors(&bad)[0]
    );
}

#[test]
fn judge_metrics() {
    let judge = GOOD.replace(
        "      provider: {builtin: {metric: error_rate}}\n      successCondition: result < 0.01\n",
        "      judge: {compare: error_rate, margin: 0.01, maxDuration: 10m, onTimeout: pass}\n",
    );
    let set = load_str(&judge, Path::new("m.yaml")).unwrap();
    let j = set.templates[0].spec.metrics[0].judge.as_ref().unwrap();
    assert_eq!(j.margin, 0.01);
    assert_eq!(j.alpha, 0.01, "default alpha");
    let both = judge.replace(
        "      interval: 10s\n",
        "      interval: 10s\n      successCondition: result < 1\n",
    );
    assert!(matches!(
        errors(&both)[0].kind,
        ManifestErrorKind::JudgeWithConditions
    ));
    let range = judge.replace("margin: 0.01", "margin: 2");
    let e = &errors(&range)[0];
    assert_eq!(e.path, "spec.metrics[0].judge.margin");
    assert!(e.to_string().contains("2 is out of range"), "{e}");
    let no_interval = judge.replace("      interval: 10s\n      count: 6\n", "");
    assert!(matches!(
        errors(&no_interval)[0].kind,
        ManifestErrorKind::JudgeWithoutInterval
    ));
    let nothing = GOOD.replace("      provider: {builtin: {metric: error_rate}}\n", "");
    assert!(matches!(
        errors(&nothing)[0].kind,
        ManifestErrorKind::NoProvider
    ));
}

#[test]
fn webhooks() {
    let hooks = "  webhooks:\n    - {name: gate, type: confirm-rollout, url: 'http://127.0.0.1:9000/ok', retries: 2, metadata: {team: pay}}\n  healthCheck:";
    let text = GOOD.replacen("  healthCheck:", hooks, 1);
    let set = load_str(&text, Path::new("m.yaml")).unwrap();
    let h = &set.apps[0].spec.webhooks[0];
    assert_eq!(h.kind, crate::manifest::app::WebhookKind::ConfirmRollout);
    assert_eq!(h.timeout, std::time::Duration::from_secs(10));
    let e = &errors(&text.replace("confirm-rollout", "confirm-everything"))[0];
    assert!(
        e.to_string()
            .contains("unknown variant `confirm-everything`"),
        "{e}"
    );
    let e = &errors(&text.replace("http://127.0.0.1:9000/ok", "ftp://x"))[0];
    assert_eq!(e.path, "spec.webhooks[0].url");
}

const CANARY_STEPS: &str = "    canary:\n      stickiness: {header: x-user-id}\n      steps:\n        - setWeight: 5\n        - pause: {duration: 30s}\n        - analysis: {templates: [error-budget]}\n        - setWeight: 50\n        - pause: {}\n        - setWeight: 100\n";

#[test]
fn rolling_strategy() {
    let text = GOOD.replace(
        CANARY_STEPS,
        "    rolling:\n      maxSurge: 1\n      maxUnavailable: \"0%\"\n      analysis: {templates: [error-budget]}\n",
    );
    let set = load_str(&text, Path::new("m.yaml")).unwrap();
    let Strategy::Rolling(r) = &set.apps[0].spec.strategy else {
        panic!("rolling")
    };
    assert_eq!(r.limits(2), (1, 0));
    assert_eq!(r.batches(2, 2), vec![(1, 1), (2, 0)]);
    assert_eq!(
        set.apps[0].spec.strategy.template_refs()[0].0,
        "spec.strategy.rolling.analysis.templates[0]"
    );

    let defaults = GOOD.replace(CANARY_STEPS, "    rolling: {}\n");
    let set = load_str(&defaults, Path::new("m.yaml")).unwrap();
    let Strategy::Rolling(r) = &set.apps[0].spec.strategy else {
        panic!("rolling")
    };
    assert_eq!(r.limits(4), (1, 1), "Kubernetes' 25% and 25%");

    let stuck = text.replace("maxSurge: 1", "maxSurge: 0");
    let e = &errors(&stuck)[0];
    assert!(
        matches!(e.kind, ManifestErrorKind::NoRollingProgress),
        "{e}"
    );
    assert_eq!(e.path, "spec.strategy.rolling");

    let bad = text.replace("maxUnavailable: \"0%\"", "maxUnavailable: \"half\"");
    let e = &errors(&bad)[0];
    assert_eq!(e.path, "spec.strategy.rolling.maxUnavailable");
    assert!(e.to_string().contains("\"25%\""), "{e}");
    assert_eq!(e.line, Some(11));

    let fixed = text.replace(
        "runtime: {process: {command: [\"./checkout\", \"--port\", \"{port}\"], instances: 2}}",
        "runtime: {static: {releases: {v1: [\"127.0.0.1:9000\"]}}}",
    );
    let e = &errors(&fixed)[0];
    assert!(
        matches!(e.kind, ManifestErrorKind::StaticScale { .. }),
        "{e}"
    );
}

#[test]
fn set_canary_scale_step() {
    let text = GOOD.replace(
        "        - setWeight: 5\n",
        "        - setCanaryScale: {replicas: 1}\n        - setWeight: 5\n        - setCanaryScale: {weight: 50}\n",
    );
    let set = load_str(&text, Path::new("m.yaml")).unwrap();
    let Strategy::Canary(c) = &set.apps[0].spec.strategy else {
        panic!("canary")
    };
    assert_eq!(
        c.steps[0],
        CanaryStep::SetCanaryScale(CanaryScale::Replicas(1))
    );
    assert!(matches!(
        c.steps[2],
        CanaryStep::SetCanaryScale(CanaryScale::Weight(w)) if w.get() == 50
    ));

    let zero = text.replace("{replicas: 1}", "{replicas: 0}");
    let e = &errors(&zero)[0];
    assert_eq!(
        e.path,
        "spec.strategy.canary.steps[0].setCanaryScale.replicas"
    );
    assert!(e.to_string().contains("from 1 to 64"), "{e}");

    let both = text.replace("{replicas: 1}", "{replicas: 1, weight: 5}");
    assert!(
        errors(&both)[0].to_string().contains("found both"),
        "{}",
        errors(&both)[0]
    );
}

/// The (line, column, path) of the only error of `text`.
fn only(text: &str) -> (usize, usize, String, String) {
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e:?}");
    let e = &e[0];
    (
        e.line.unwrap(),
        e.column.unwrap(),
        e.path.clone(),
        e.kind.to_string(),
    )
}

const SHORT: &str = "apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {name: shop}
spec:
  listen: 127.0.0.1:8080
  runtime: {process: {command: [shop]}}
  healthCheck: {path: /health}
  strategy:
    canary:
      steps:
        - setWeight: 5
";

#[test]
fn checks_after_parsing_are_located_at_the_offending_key_not_at_1_1() {
    let (line, _, path, _) = only(&SHORT.replace("kind: App", "kind: Ap"));
    assert_eq!((line, path.as_str()), (2, "kind"));

    let (line, _, path, what) = only(
        &SHORT
            .replace("        - setWeight: 5\n", "")
            .replace("      steps:\n", "      steps: []\n"),
    );
    assert_eq!((line, path.as_str()), (10, "spec.strategy.canary.steps"));
    assert!(what.contains("at least one step"), "{what}");

    let rolling = SHORT.replace(
        "    canary:\n      steps:\n        - setWeight: 5\n",
        "    rolling: {maxSurge: 0, maxUnavailable: 0}\n",
    );
    let (line, _, path, _) = only(&rolling);
    assert_eq!((line, path.as_str()), (9, "spec.strategy.rolling"));

    let scale = SHORT
        .replace("{process: {command: [shop]}}", "{static: {}}")
        .replace("- setWeight: 5", "- setCanaryScale: {replicas: 2}");
    let (line, _, path, _) = only(&scale);
    assert_eq!(
        (line, path.as_str()),
        (11, "spec.strategy.canary.steps[0].setCanaryScale")
    );
}

#[test]
fn a_missing_template_is_located_at_its_name() {
    let text = SHORT.replace(
        "        - setWeight: 5\n",
        "        - setWeight: 5\n        - analysis: {templates: [nope]}\n",
    );
    let set = load_str(&text, Path::new("m.yaml")).unwrap();
    let e = set.check_references(&BTreeSet::new()).unwrap_err().0;
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].line, Some(12), "{}", e[0]);
    assert!(e[0].to_string().starts_with("m.yaml:12:"), "{}", e[0]);
}

#[test]
fn a_duplicate_name_is_located_at_the_second_definition() {
    let text = format!("{SHORT}---\n{SHORT}");
    let (line, _, path, what) = only(&text);
    assert_eq!((line, path.as_str()), (15, "metadata.name"));
    assert!(what.contains("defined twice"), "{what}");
}

#[test]
fn rates_of_the_rollback_policy_are_between_0_and_1() {
    let text = format!("{SHORT}  rollbackPolicy: {{errorRate: {{max: 1.5}}}}\n");
    let (line, _, path, what) = only(&text);
    assert_eq!(line, 12);
    assert_eq!(path, "spec.rollbackPolicy.errorRate.max");
    assert!(what.contains("rate from 0 to 1"), "{what}");
    let text = format!("{SHORT}  rollbackPolicy: {{successRate: {{min: -0.1}}}}\n");
    assert!(only(&text).3.contains("rate from 0 to 1"));
    let text = format!(
        "{SHORT}  rollbackPolicy: {{latencyIncrease: {{max: 1.5}}, errorRate: {{max: 1}}}}\n"
    );
    load_str(&text, Path::new("m.yaml")).unwrap();
}

#[test]
fn an_empty_file_is_an_error() {
    for text in ["", "\n", "# only a comment\n", "---\n"] {
        let e = errors(text);
        assert!(
            matches!(e[0].kind, ManifestErrorKind::EmptyFile),
            "{text:?}: {e:?}"
        );
    }
}

#[test]
fn durations_past_a_year_are_refused() {
    let text = SHORT.replace("- setWeight: 5", "- pause: {duration: 20000y}");
    let (_, _, path, what) = only(&text);
    assert_eq!(path, "spec.strategy.canary.steps[0].pause.duration");
    assert!(what.contains("longest duration"), "{what}");
}

const KUBE: &str = "apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {name: shop}
spec:
  runtime:
    kubernetes:
      namespace: shop
      port: 8080
      trafficRouting: {gatewayAPI: {httpRoute: shop}}
      template:
        spec:
          containers:
          - name: web
            image: shop:{version}
            readinessProbe: {httpGet: {path: /health, port: 8080}, periodSeconds: 2}
  strategy:
    canary:
      steps:
        - setWeight: 5
";

#[test]
fn a_kubernetes_app_loads_without_a_listener() {
    let set = load_str(KUBE, Path::new("m.yaml")).unwrap();
    let app = &set.apps[0];
    assert_eq!(app.spec.listen, None);
    let RuntimeSpec::Kubernetes(k) = &app.spec.runtime else {
        panic!("kubernetes")
    };
    assert_eq!(k.replicas.get(), 1);
    assert_eq!(k.service_port, 80);
    assert!(matches!(
        k.traffic_routing,
        Some(TrafficRouting::GatewayApi(_))
    ));
}

#[test]
fn a_bad_pod_template_is_located_with_its_field_path() {
    // At the object that holds the template (as other values that fail their own checks), with
    // the path inside the template in the message.
    let (line, _, path, what) = only(&KUBE.replace("periodSeconds: 2", "periodSecond: 2"));
    assert_eq!(
        (line, path.as_str()),
        (7, "spec.runtime.kubernetes.template")
    );
    assert!(
        what.contains("`spec.containers[0].readinessProbe.periodSecond` is not a field"),
        "{what}"
    );
    let (_, _, _, what) = only(&KUBE.replace("port: 8080}", "port: [8080]}"));
    assert!(
        what.contains("spec.containers[0].readinessProbe.httpGet.port"),
        "{what}"
    );
}

#[test]
fn kubernetes_names_listeners_and_previews_are_checked() {
    let (line, _, path, what) = only(&KUBE.replace("{name: shop}", "{name: Shop_1}"));
    assert_eq!((line, path.as_str()), (3, "metadata.name"));
    assert!(what.contains("DNS-1123"), "{what}");
    let (_, _, path, _) = only(&KUBE.replace(
        "spec:\n  runtime:",
        "spec:\n  listen: 127.0.0.1:1\n  runtime:",
    ));
    assert_eq!(path, "spec.listen");
    let (_, _, path, _) = only(&SHORT.replace("  listen: 127.0.0.1:8080\n", ""));
    assert_eq!(path, "spec.listen");
    let bg = KUBE.replace(
        "    canary:\n      steps:\n        - setWeight: 5\n",
        "    blueGreen: {previewListen: 127.0.0.1:9}\n",
    );
    let (_, _, path, what) = only(&bg);
    assert_eq!(path, "spec.strategy.blueGreen.previewListen");
    assert!(what.contains("shop-preview"), "{what}");
    let no_router = KUBE.replace(
        "      trafficRouting: {gatewayAPI: {httpRoute: shop}}\n",
        "",
    );
    load_str(&no_router, Path::new("m.yaml")).expect("weights by replica counts");
    let mirror = no_router.replace(
        "        - setWeight: 5\n",
        "        - setWeight: 5\n        - setMirror: {percent: 5}\n",
    );
    let (_, _, path, what) = only(&mirror);
    assert_eq!(path, "spec.strategy.canary.steps[1]");
    assert!(what.contains("need a router"), "{what}");
}

#[test]
fn adaptive_steps_are_checked_where_they_are_written() {
    let adaptive = GOOD.replace(
        "        - setWeight: 5\n",
        "        - adaptive: {maxWeight: 30, errorBudget: 20}\n",
    );
    let set = load_str(&adaptive, Path::new("m.yaml")).unwrap();
    let Strategy::Canary(c) = &set.apps[0].spec.strategy else {
        panic!("canary")
    };
    let CanaryStep::Adaptive(a) = &c.steps[0] else {
        panic!("adaptive")
    };
    assert_eq!((a.min_weight.get(), a.max_weight.get()), (1, 30));
    assert_eq!(
        a.interval,
        std::time::Duration::from_secs(5),
        "default interval"
    );
    for (bad, path) in [
        ("maxWeight: 30, minWeight: 40", "minWeight"),
        ("maxWeight: 100", "maxWeight"),
        ("maxWeight: 30, minWeight: 0", "minWeight"),
        ("maxWeight: 30, errorBudget: 0", "errorBudget"),
        ("maxWeight: 30, alpha: 0.9", "alpha"),
    ] {
        let text = GOOD.replace(
            "        - setWeight: 5\n",
            &format!("        - adaptive: {{{bad}}}\n"),
        );
        let e = &errors(&text)[0];
        assert_eq!(
            e.path,
            format!("spec.strategy.canary.steps[0].adaptive.{path}"),
            "{bad}"
        );
        assert!(e.to_string().contains("out of range"), "{e}");
    }
    // The plan belongs to the step: a template's judge may not carry one.
    let in_template = GOOD.replace(
        "      provider: {builtin: {metric: error_rate}}\n      successCondition: result < 0.01\n",
        "      judge: {compare: error_rate, adaptive: {minWeight: 1, maxWeight: 20, errorBudget: 5}}\n",
    );
    let e = &errors(&in_template)[0];
    assert_eq!(e.path, "spec.metrics[0].judge.adaptive");
    assert!(e.to_string().contains("`adaptive` canary step"), "{e}");
    // A cluster app's traffic never reaches the built-in telemetry: a source is required.
    let in_cluster = KUBE.replace("        - setWeight: 5\n", "        - adaptive: {}\n");
    let e = &errors(&in_cluster)[0];
    assert_eq!(e.path, "spec.strategy.canary.steps[0].adaptive.source");
    let with_source = in_cluster.replace(
        "adaptive: {}",
        "adaptive: {source: {prometheus: {address: 'http://127.0.0.1:9090', requests: 'sum(r)', errors: 'sum(e)'}}}",
    );
    load_str(&with_source, Path::new("m.yaml")).unwrap();
}

const PIPELINE: &str = r#"apiVersion: switchyard.dev/v1alpha1
kind: Pipeline
metadata: {name: shop}
spec:
  stages:
    - name: staging
      targets: [shop-staging]
    - name: prod
      soak: 10m
      approval: {role: deployer}
      windows: [business-hours]
      onFailure: cascade
      waves:
        - targets: [shop-eu]
        - targets: [shop-us]
---
apiVersion: switchyard.dev/v1alpha1
kind: DeploymentWindow
metadata: {name: business-hours}
spec:
  timeZone: Europe/Berlin
  appliesTo: {environments: [production]}
  allow: [{days: [mon, tue, wed, thu], start: "09:00", end: "16:00"}]
"#;

#[test]
fn loads_a_pipeline_and_a_window_and_checks_their_references() {
    use crate::manifest::pipeline::FailurePolicy;
    let set = load_str(PIPELINE, Path::new("p.yaml")).unwrap();
    let p = &set.pipelines[0];
    assert_eq!(p.spec.stages[1].wave_targets().len(), 2);
    assert_eq!(p.spec.stages[1].on_failure, FailurePolicy::Cascade);
    assert_eq!(p.spec.stages[0].on_failure, FailurePolicy::Rollback);
    assert_eq!(set.windows.len(), 1);
    let apps: BTreeSet<String> = ["shop-staging", "shop-eu"].map(String::from).into();
    let applied = [("App", apps)].into_iter().collect();
    let e = set.check_fleet_references(&applied).unwrap_err().0;
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].path, "spec.stages[1].waves[1].targets[0]");
    assert_eq!((e[0].line, e[0].column), (Some(15), Some(21)));
    assert!(
        e[0].to_string().contains("refers to App `shop-us`"),
        "{}",
        e[0]
    );
}

#[test]
fn a_pipeline_with_an_app_twice_or_no_targets_is_refused_where_it_is_wrong() {
    let twice = PIPELINE.replace("[shop-us]", "[shop-staging]");
    let e = errors(&twice);
    assert_eq!(e[0].path, "spec.stages[1].waves[1].targets[0]");
    assert!(e[0].to_string().contains("is a target twice"), "{}", e[0]);
    let empty = PIPELINE.replace("      targets: [shop-staging]\n", "");
    let e = errors(&empty);
    assert_eq!(e[0].path, "spec.stages[0]");
    assert!(
        e[0].to_string().contains("needs `targets` or `waves`"),
        "{}",
        e[0]
    );
    let bad_policy = PIPELINE.replace("onFailure: cascade", "onFailure: retry");
    let e = errors(&bad_policy);
    assert_eq!(e[0].path, "spec.stages[1].onFailure");
    assert_eq!(e[0].line, Some(12));
}
