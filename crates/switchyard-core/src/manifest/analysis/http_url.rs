//! Absolute `http://` URLs of metric sources, checked when a manifest is read so that a typo is
//! a located manifest error instead of a provider error at the first measurement.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::template::{Template, TemplateVars};

/// Checks that `text` is an absolute URL this build can call.
fn check(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|e| {
        format!("expected an absolute URL such as `http://127.0.0.1:9090`, got `{text}` ({e})")
    })?;
    match url.scheme() {
        "http" => {}
        // The HTTP client is built without TLS (one static binary, no system TLS stack); saying
        // so here beats a connection error at the first measurement.
        "https" => {
            return Err(format!(
                "`{text}`: https is not supported by this build (no TLS); use http:// or a local TLS-terminating proxy"
            ));
        }
        other => {
            return Err(format!(
                "`{text}`: expected an http:// URL, got scheme `{other}`"
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}`: the URL has no host"));
    }
    Ok(())
}

/// An absolute `http://` URL (the address of a Prometheus server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HttpUrl(String);

impl HttpUrl {
    /// # Errors
    /// Says why `text` is not an absolute `http://` URL with a host.
    pub fn new(text: impl Into<String>) -> Result<Self, String> {
        let text = text.into();
        check(&text)?;
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for HttpUrl {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        HttpUrl::new(text)
    }
}

impl From<HttpUrl> for String {
    fn from(u: HttpUrl) -> String {
        u.0
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An `http://` URL with placeholders (`http://metrics/api?app={{app}}`). Placeholder values
/// are names and versions, whose alphabet needs no escaping, so a template that renders into a
/// valid URL with example values does so with every real value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UrlTemplate(Template);

impl UrlTemplate {
    /// # Errors
    /// A bad placeholder, or a text that does not render into an absolute `http://` URL.
    pub fn new(text: &str) -> Result<Self, String> {
        let template = Template::parse(text)?;
        check(&template.render(&TemplateVars::EXAMPLE))?;
        Ok(Self(template))
    }

    pub fn template(&self) -> &Template {
        &self.0
    }
}

impl TryFrom<String> for UrlTemplate {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        UrlTemplate::new(&text)
    }
}

impl From<UrlTemplate> for String {
    fn from(u: UrlTemplate) -> String {
        u.0.into()
    }
}

impl fmt::Display for UrlTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_http_and_rejects_the_rest() {
        assert!(HttpUrl::new("http://127.0.0.1:9090").is_ok());
        assert!(HttpUrl::new("http://prometheus.internal/prefix/").is_ok());
        let e = HttpUrl::new("https://prom").unwrap_err();
        assert!(e.contains("no TLS"), "{e}");
        let e = HttpUrl::new("ftp://prom").unwrap_err();
        assert!(e.contains("scheme `ftp`"), "{e}");
        let e = HttpUrl::new("127.0.0.1:9090").unwrap_err();
        assert!(e.contains("expected"), "{e}");
        assert!(HttpUrl::new("http://").is_err());
    }

    #[test]
    fn url_templates_are_checked_with_example_values() {
        let u = UrlTemplate::new("http://m:8080/api?app={{app}}&v={{version}}").unwrap();
        assert_eq!(
            u.template().source(),
            "http://m:8080/api?app={{app}}&v={{version}}"
        );
        assert!(UrlTemplate::new("http://{{app}}:80/").is_ok());
        assert!(UrlTemplate::new("{{app}}/x").is_err());
        assert!(UrlTemplate::new("http://m/{{nope}}").is_err());
    }
}
