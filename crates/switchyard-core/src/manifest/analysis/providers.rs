//! The external metric providers of an AnalysisTemplate: `prometheus`, `web` and `command`.
//! Every field validates itself while deserialising, so errors carry the manifest's line,
//! column and field path.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::http_url::{HttpUrl, UrlTemplate};
use super::template::Template;
use crate::duration::serde_humantime_opt;

/// Time a Prometheus query may take when `timeout` is not given.
pub const DEFAULT_PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a web request may take when `timeout` is not given.
pub const DEFAULT_WEB_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a command may run when `timeout` is not given.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// `provider: {prometheus: {...}}`: an instant query against Prometheus' HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PrometheusProvider {
    /// Base URL of the server (`http://127.0.0.1:9090`); `/api/v1/query` is appended.
    pub address: HttpUrl,
    /// PromQL for `result`, rendered with `{{release}}` = `canary` and `{{version}}` = the
    /// canary's version.
    pub query: Template,
    /// PromQL for `baseline`, rendered with `{{release}}` = `stable` and `{{version}}` = the
    /// stable release's version. Without it conditions cannot use `baseline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_query: Option<Template>,
    /// Time for each query (default [`DEFAULT_PROMETHEUS_TIMEOUT`]).
    #[serde(
        default,
        with = "serde_humantime_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
}

impl PrometheusProvider {
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_PROMETHEUS_TIMEOUT)
    }
}

/// `provider: {web: {...}}`: an HTTP request whose JSON answer holds the value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebProvider {
    /// `http://` URL; placeholders are rendered for the canary.
    pub url: UrlTemplate,
    #[serde(default)]
    pub method: HttpMethod,
    /// Request headers; values may use placeholders.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<HeaderName, HeaderValue>,
    /// Request body, sent as is (set `Content-Type` in `headers`); may use placeholders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Template>,
    /// Time for the whole request (default [`DEFAULT_WEB_TIMEOUT`]).
    #[serde(
        default,
        with = "serde_humantime_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// RFC 6901 JSON pointer to the value in the answer (`/data/value`); empty: the whole body.
    #[serde(default)]
    pub json_path: JsonPointer,
}

impl WebProvider {
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_WEB_TIMEOUT)
    }
}

/// The HTTP method of a web provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Get,
    Post,
}

/// An HTTP header name (an RFC 9110 token).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HeaderName(String);

impl HeaderName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for HeaderName {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if text.is_empty() || !text.chars().all(token) {
            return Err(format!("`{text}` is not an HTTP header name"));
        }
        Ok(Self(text))
    }
}

impl From<HeaderName> for String {
    fn from(h: HeaderName) -> String {
        h.0
    }
}

/// An HTTP header value with placeholders; no control characters (which would split headers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HeaderValue(Template);

impl HeaderValue {
    pub fn template(&self) -> &Template {
        &self.0
    }
}

impl TryFrom<String> for HeaderValue {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        if text.chars().any(|c| c.is_control() && c != '\t') {
            return Err("a header value must not contain control characters".to_string());
        }
        Template::parse(&text).map(Self)
    }
}

impl From<HeaderValue> for String {
    fn from(h: HeaderValue) -> String {
        h.0.into()
    }
}

/// An RFC 6901 JSON pointer: empty (the whole document) or `/`-separated reference tokens in
/// which `~` is only written as `~0` or `~1`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JsonPointer(String);

impl JsonPointer {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for JsonPointer {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        if !text.is_empty() && !text.starts_with('/') {
            return Err(format!(
                "`{text}` is not a JSON pointer; it starts with `/`, as in `/data/value`"
            ));
        }
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
                return Err(format!(
                    "`{text}`: in a JSON pointer `~` is written `~0` and `/` inside a key `~1`"
                ));
            }
        }
        Ok(Self(text))
    }
}

impl From<JsonPointer> for String {
    fn from(p: JsonPointer) -> String {
        p.0
    }
}

impl fmt::Display for JsonPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `provider: {command: {...}}`: a program whose last line of output is the value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CommandProvider {
    /// Program and arguments, run without a shell; arguments may use placeholders.
    pub command: Argv,
    /// Extra environment; values may use placeholders.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<EnvName, Template>,
    /// Time the program may run before it is killed (default [`DEFAULT_COMMAND_TIMEOUT`]).
    #[serde(
        default,
        with = "serde_humantime_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
}

impl CommandProvider {
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_COMMAND_TIMEOUT)
    }
}

/// A program and its arguments: at least the program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Template>", into = "Vec<Template>")]
pub struct Argv(Vec<Template>);

impl Argv {
    pub fn program(&self) -> &Template {
        // The constructor refuses an empty list.
        &self.0[0]
    }

    pub fn args(&self) -> &[Template] {
        &self.0[1..]
    }
}

impl TryFrom<Vec<Template>> for Argv {
    type Error = String;
    fn try_from(argv: Vec<Template>) -> Result<Self, String> {
        if argv.first().is_none_or(|p| p.source().is_empty()) {
            return Err(
                "expected a program and its arguments, as in [\"./check.sh\", \"{{version}}\"]"
                    .to_string(),
            );
        }
        Ok(Self(argv))
    }
}

impl From<Argv> for Vec<Template> {
    fn from(a: Argv) -> Vec<Template> {
        a.0
    }
}

/// An environment variable name: not empty, no `=` or NUL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EnvName(String);

impl EnvName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EnvName {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        if text.is_empty() || text.contains(['=', '\0']) {
            return Err(format!("`{text}` is not an environment variable name"));
        }
        Ok(Self(text))
    }
}

impl From<EnvName> for String {
    fn from(e: EnvName) -> String {
        e.0
    }
}
