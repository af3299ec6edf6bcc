//! The operator's policy at apply time: every program, environment variable and host a set of
//! manifests names, checked before anything is stored, each refusal with the document and
//! field it comes from. What only renders at run time (templated programs and URLs) is checked
//! again where it runs.

use switchyard_core::manifest::analysis::{ProviderSpec, TemplateVars};
use switchyard_core::manifest::app::RuntimeSpec;
use switchyard_core::manifest::{AnalysisTemplate, App, ManifestSet};
use switchyard_policy::{Policy, Violation};

/// One thing a manifest names that the policy does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyProblem {
    /// `App`, `AnalysisTemplate`.
    pub kind: &'static str,
    pub name: String,
    /// Field path inside the document, such as `spec.runtime.process.command[0]`.
    pub path: String,
    pub violation: Violation,
}

impl std::fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} `{}`: {}: {}",
            self.kind, self.name, self.path, self.violation
        )
    }
}

/// Every problem of `set` under `policy`.
pub(crate) fn check(policy: &Policy, set: &ManifestSet) -> Vec<PolicyProblem> {
    let mut problems = Vec::new();
    for app in &set.apps {
        check_app(policy, app, &mut problems);
    }
    for template in &set.templates {
        check_template(policy, template, &mut problems);
    }
    for notifier in &set.notifiers {
        let spec = &notifier.spec;
        let sinks = [
            ("spec.webhook.url", spec.webhook.as_ref().map(|w| &w.url)),
            ("spec.slack.url", spec.slack.as_ref().map(|s| &s.url)),
            ("spec.cdevents.url", spec.cdevents.as_ref().map(|c| &c.url)),
        ];
        for (path, url) in sinks {
            if let Some(Err(violation)) = url.map(|u| policy.check_url(u.as_str())) {
                problems.push(PolicyProblem {
                    kind: "Notifier",
                    name: notifier.metadata.name.to_string(),
                    path: path.into(),
                    violation,
                });
            }
        }
    }
    problems
}

fn check_app(policy: &Policy, app: &App, out: &mut Vec<PolicyProblem>) {
    let mut push = |path: String, violation| {
        out.push(PolicyProblem {
            kind: "App",
            name: app.metadata.name.to_string(),
            path,
            violation,
        });
    };
    if let RuntimeSpec::Process(p) = &app.spec.runtime {
        if let Some(program) = p.command.argv().first() {
            if let Err(v) = policy.check_program(program) {
                push("spec.runtime.process.command[0]".into(), v);
            }
        }
        for name in p.env.keys() {
            if let Err(v) = policy.check_env(name) {
                push(format!("spec.runtime.process.env.{name}"), v);
            }
        }
    }
    for (i, hook) in app.spec.webhooks.iter().enumerate() {
        if let Err(v) = policy.check_url(hook.url.as_str()) {
            push(format!("spec.webhooks[{i}].url"), v);
        }
    }
}

fn check_template(policy: &Policy, template: &AnalysisTemplate, out: &mut Vec<PolicyProblem>) {
    let mut push = |path: String, violation| {
        out.push(PolicyProblem {
            kind: "AnalysisTemplate",
            name: template.metadata.name.to_string(),
            path,
            violation,
        });
    };
    for (i, metric) in template.spec.metrics.iter().enumerate() {
        let at = format!("spec.metrics[{i}].provider");
        match &metric.provider {
            Some(ProviderSpec::Command(c)) => {
                let program = c.command.program();
                // A templated program is only known when it runs; the runner checks it then.
                if !program.has_placeholders() {
                    if let Err(v) = policy.check_program(&program.render(&TemplateVars::EXAMPLE)) {
                        push(format!("{at}.command.command[0]"), v);
                    }
                }
                for name in c.env.keys() {
                    if let Err(v) = policy.check_env(name.as_str()) {
                        push(format!("{at}.command.env.{}", name.as_str()), v);
                    }
                }
            }
            Some(ProviderSpec::Prometheus(p)) => {
                if let Err(v) = policy.check_url(p.address.as_str()) {
                    push(format!("{at}.prometheus.address"), v);
                }
            }
            Some(ProviderSpec::Web(w)) => {
                let url = w.url.template();
                if !url.has_placeholders() {
                    if let Err(v) = policy.check_url(&url.render(&TemplateVars::EXAMPLE)) {
                        push(format!("{at}.web.url"), v);
                    }
                }
            }
            Some(ProviderSpec::Builtin(_)) | None => {}
        }
    }
}
