//! `tls:` and `upstreamTls:` — TLS on an app's listeners and to its instances. The files are
//! read by each proxy on its own host, so their paths must be absolute.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `tls:` — TLS termination on the app's listeners (the blue-green preview listener too).
/// Every certificate is offered by SNI: a client naming a host gets the first certificate valid
/// for it, a client naming none (or an unknown one) gets the first. ALPN offers `h2` and
/// `http/1.1`. The proxy reloads the files when they change; a reload that fails keeps the
/// certificates in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListenerTls {
    pub certificates: Certificates,
}

/// At least one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<CertificateFiles>", into = "Vec<CertificateFiles>")]
pub struct Certificates(Vec<CertificateFiles>);

impl Certificates {
    pub fn as_slice(&self) -> &[CertificateFiles] {
        &self.0
    }
}

impl TryFrom<Vec<CertificateFiles>> for Certificates {
    type Error = String;
    fn try_from(v: Vec<CertificateFiles>) -> Result<Self, String> {
        if v.is_empty() {
            Err("expected at least one certificate (`cert` and `key` files)".to_owned())
        } else {
            Ok(Certificates(v))
        }
    }
}

impl From<Certificates> for Vec<CertificateFiles> {
    fn from(c: Certificates) -> Self {
        c.0
    }
}

/// A certificate chain (PEM, leaf first) and its private key (PEM: PKCS#8, PKCS#1 or SEC1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateFiles {
    pub cert: AbsolutePath,
    pub key: AbsolutePath,
}

/// `upstreamTls:` — the proxy speaks TLS to the app's instances and verifies their certificate
/// against `ca`, for the name `serverName` (default: the instance's IP address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpstreamTls {
    /// Trusted root certificates (PEM).
    pub ca: AbsolutePath,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<ServerName>,
}

/// An absolute file path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PathBuf", into = "PathBuf")]
pub struct AbsolutePath(PathBuf);

impl AbsolutePath {
    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

impl TryFrom<PathBuf> for AbsolutePath {
    type Error = String;
    fn try_from(p: PathBuf) -> Result<Self, String> {
        if p.is_absolute() {
            Ok(AbsolutePath(p))
        } else {
            Err(format!(
                "expected an absolute path (proxies read it on their own host), got `{}`",
                p.display()
            ))
        }
    }
}

impl From<AbsolutePath> for PathBuf {
    fn from(p: AbsolutePath) -> Self {
        p.0
    }
}

/// A DNS name (`api.internal`) or an IP address the upstream certificate must be valid for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServerName(String);

impl ServerName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ServerName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        let dns = s.len() <= 253 && s.split('.').all(label_ok);
        if dns || s.parse::<std::net::IpAddr>().is_ok() {
            Ok(ServerName(s))
        } else {
            Err(format!(
                "expected a DNS name or an IP address such as `api.internal`, got `{s}`"
            ))
        }
    }
}

impl From<ServerName> for String {
    fn from(s: ServerName) -> Self {
        s.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_be_absolute() {
        assert!(AbsolutePath::try_from(PathBuf::from("/etc/tls/a.pem")).is_ok());
        let e = AbsolutePath::try_from(PathBuf::from("tls/a.pem")).unwrap_err();
        assert!(e.contains("absolute path"), "{e}");
    }

    #[test]
    fn server_names() {
        for ok in ["api.internal", "localhost", "10.0.0.1", "::1", "a-b.c"] {
            assert!(ServerName::try_from(ok.to_owned()).is_ok(), "{ok}");
        }
        for bad in ["", "a..b", "-a.b", "a b", "a_b.c", "*.example.com"] {
            assert!(ServerName::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn at_least_one_certificate() {
        let e = serde_json::from_str::<ListenerTls>(r#"{"certificates":[]}"#).unwrap_err();
        assert!(e.to_string().contains("at least one certificate"), "{e}");
        let ok: ListenerTls =
            serde_json::from_str(r#"{"certificates":[{"cert":"/a.pem","key":"/a.key"}]}"#).unwrap();
        assert_eq!(ok.certificates.as_slice().len(), 1);
    }
}
