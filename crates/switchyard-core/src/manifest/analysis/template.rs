//! Strings with `{{placeholder}}`s (Prometheus queries, URLs, request bodies, command
//! arguments): checked when a manifest is read, filled in at each measurement.
//!
//! Unknown placeholders are manifest errors rather than text passed through, so a typo such as
//! `{{verison}}` cannot turn into a query that silently matches nothing.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The placeholders a template may use.
pub const PLACEHOLDERS: &[&str] = &[
    "app",
    "release",
    "version",
    "canary_version",
    "stable_version",
    "namespace",
];

/// The values of the placeholders at one measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateVars<'a> {
    /// `{{app}}`: the app's name.
    pub app: &'a str,
    /// `{{release}}`: the role of the release being measured, `canary` or `stable`.
    pub release: &'a str,
    /// `{{version}}`: the version of the release being measured.
    pub version: &'a str,
    /// `{{canary_version}}`: the canary's version, whichever release is measured.
    pub canary_version: &'a str,
    /// `{{stable_version}}`: the stable release's version, whichever release is measured.
    pub stable_version: &'a str,
    /// `{{namespace}}`: the Kubernetes namespace of a `kubernetes` app (empty for others).
    pub namespace: &'a str,
}

impl TemplateVars<'_> {
    /// Values used to check that a template renders into something valid (a URL) when a manifest
    /// is read, before any real value is known. They use the alphabet of real names.
    pub const EXAMPLE: TemplateVars<'static> = TemplateVars {
        app: "app",
        release: "canary",
        version: "v1",
        canary_version: "v1",
        stable_version: "v0",
        namespace: "default",
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    App,
    Release,
    Version,
    CanaryVersion,
    StableVersion,
    Namespace,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Placeholder),
}

/// A parsed template together with its source text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

impl Template {
    /// Parses `source`; `{{ name }}` may have spaces inside the braces.
    ///
    /// # Errors
    /// A `{{` without its `}}`, or a placeholder that is not one of [`PLACEHOLDERS`].
    pub fn parse(source: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(format!("`{{{{` without a closing `}}}}` in `{source}`"));
            };
            let name = after[..close].trim();
            let var = match name {
                "app" => Placeholder::App,
                "release" => Placeholder::Release,
                "version" => Placeholder::Version,
                "canary_version" => Placeholder::CanaryVersion,
                "stable_version" => Placeholder::StableVersion,
                "namespace" => Placeholder::Namespace,
                other => {
                    return Err(format!(
                        "unknown placeholder `{{{{{other}}}}}`; expected one of: {}",
                        PLACEHOLDERS.join(", ")
                    ));
                }
            };
            parts.push(Part::Var(var));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Self {
            source: source.to_string(),
            parts,
        })
    }

    /// The text the template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The template with its placeholders replaced by `vars`.
    /// Whether any part is a placeholder (the text is only known when rendered).
    pub fn has_placeholders(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Var(_)))
    }

    pub fn render(&self, vars: &TemplateVars<'_>) -> String {
        let mut out = String::with_capacity(self.source.len());
        for part in &self.parts {
            out.push_str(match part {
                Part::Text(text) => text,
                Part::Var(Placeholder::App) => vars.app,
                Part::Var(Placeholder::Release) => vars.release,
                Part::Var(Placeholder::Version) => vars.version,
                Part::Var(Placeholder::CanaryVersion) => vars.canary_version,
                Part::Var(Placeholder::StableVersion) => vars.stable_version,
                Part::Var(Placeholder::Namespace) => vars.namespace,
            });
        }
        out
    }
}

impl TryFrom<String> for Template {
    type Error = String;
    fn try_from(source: String) -> Result<Self, String> {
        Template::parse(&source)
    }
}

impl From<Template> for String {
    fn from(t: Template) -> String {
        t.source
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARS: TemplateVars<'static> = TemplateVars {
        app: "shop",
        release: "canary",
        version: "v2",
        canary_version: "v2",
        stable_version: "v1",
        namespace: "shop",
    };

    #[test]
    fn fills_every_placeholder_and_keeps_promql_braces() {
        let t = Template::parse(
            r#"sum(rate(http_requests_total{app="{{app}}",version="{{ version }}",role="{{release}}"}[1m])) / {{stable_version}}{{canary_version}}"#,
        )
        .unwrap();
        assert_eq!(
            t.render(&VARS),
            r#"sum(rate(http_requests_total{app="shop",version="v2",role="canary"}[1m])) / v1v2"#
        );
        assert_eq!(Template::parse("").unwrap().render(&VARS), "");
        assert_eq!(Template::parse("up").unwrap().render(&VARS), "up");
    }

    #[test]
    fn unknown_and_unclosed_placeholders_are_errors() {
        let e = Template::parse("x{{verison}}").unwrap_err();
        assert!(e.contains("unknown placeholder `{{verison}}`"), "{e}");
        assert!(e.contains("canary_version"), "{e}");
        let e = Template::parse("x{{app").unwrap_err();
        assert!(e.contains("without a closing `}}`"), "{e}");
    }

    #[test]
    fn serialises_as_its_source() {
        let t = Template::parse("a{{app}}").unwrap();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#""a{{app}}""#);
        assert_eq!(serde_json::from_str::<Template>(&json).unwrap(), t);
    }
}
