//! [`Policy`]: the rules, and the checks every place that runs a program or calls a host makes.

use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use ipnet::IpNet;

use crate::file::{self, PolicyFileError, RawRun};

/// Names no release may set whatever the policy says: they change what a program loads or runs
/// before its own code does (`*` at the end matches any rest).
pub const BUILT_IN_DENIED_ENV: &[&str] = &[
    "LD_*",
    "DYLD_*",
    "BASH_ENV",
    "ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "IFS",
    "PATH",
    "GCONV_PATH",
    "HOSTALIASES",
    "LOCALDOMAIN",
    "RES_OPTIONS",
    "MALLOC_*",
    "GLIBC_TUNABLES",
    "NODE_OPTIONS",
    "NODE_PATH",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PERL5LIB",
    "PERL5OPT",
    "PERLLIB",
    "RUBYLIB",
    "RUBYOPT",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
];

/// What may run, what may be set, what may be called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Programs (canonical paths) that may run.
    programs: Vec<PathBuf>,
    /// Directories (canonical) anything below which may run.
    directories: Vec<PathBuf>,
    /// Refused environment names, the built-in ones first.
    denied_env: Vec<String>,
    /// Address blocks calls may go to.
    networks: Vec<IpNet>,
    /// Host names calls may go to (lowercase); `*.x` entries are kept as `.x` suffixes.
    names: Vec<String>,
}

/// Something the policy does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error(
        "the policy does not let `{program}` run{}; the operator allows programs in the policy file's `run`",
        resolved.as_ref().map(|r| format!(" (it is {})", r.display())).unwrap_or_default()
    )]
    Program {
        program: String,
        resolved: Option<PathBuf>,
    },
    #[error("the policy refuses the environment variable `{name}` (matches `{rule}`)")]
    Env { name: String, rule: String },
    #[error(
        "the policy does not let calls reach `{host}` ({url}); the operator allows hosts in the policy file's `reach`"
    )]
    Host { url: String, host: String },
    #[error("`{url}` is not a URL with a host: {reason}")]
    BadUrl { url: String, reason: String },
}

impl Default for Policy {
    /// Nothing runs, the built-in variables are refused, calls reach loopback only.
    fn default() -> Self {
        Self {
            programs: Vec::new(),
            directories: Vec::new(),
            denied_env: BUILT_IN_DENIED_ENV
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            networks: loopback(),
            names: vec!["localhost".into()],
        }
    }
}

fn loopback() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect()
}

impl Policy {
    /// Reads a policy file.
    ///
    /// # Errors
    /// The file cannot be read, does not parse, names a program that cannot be found, a
    /// directory that does not exist, or a `reach` entry that is neither an address block nor a
    /// host name.
    pub fn load(path: &Path) -> Result<Policy, PolicyFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses policy text; `file` names it in errors.
    ///
    /// # Errors
    /// As [`Policy::load`].
    pub fn parse(text: &str, file: &Path) -> Result<Policy, PolicyFileError> {
        let raw = file::parse(text, file)?;
        let invalid = |path: String, message: String| PolicyFileError::Invalid {
            file: file.to_path_buf(),
            at: None,
            path,
            message,
        };
        let mut policy = Policy {
            networks: Vec::new(),
            names: Vec::new(),
            ..Policy::default()
        };
        for (i, run) in raw.run.iter().enumerate() {
            match run {
                RawRun::Program(p) => {
                    let resolved = resolve(p).ok_or_else(|| {
                        invalid(
                            format!("run[{i}]"),
                            format!("program `{p}` is not an executable file here (names are looked up on PATH)"),
                        )
                    })?;
                    policy.programs.push(resolved);
                }
                RawRun::Under(u) => {
                    let dir = std::fs::canonicalize(&u.under)
                        .ok()
                        .filter(|d| d.is_dir())
                        .ok_or_else(|| {
                            invalid(
                                format!("run[{i}].under"),
                                format!("`{}` is not a directory", u.under.display()),
                            )
                        })?;
                    policy.directories.push(dir);
                }
            }
        }
        for (i, name) in raw.env.deny.iter().enumerate() {
            let body = name.strip_suffix('*').unwrap_or(name);
            if body.is_empty() || body.contains(['=', '\0', '*']) {
                return Err(invalid(
                    format!("env.deny[{i}]"),
                    format!("`{name}` is not a variable name (a `*` may end it)"),
                ));
            }
            policy.denied_env.push(name.clone());
        }
        for (i, entry) in raw.reach.iter().enumerate() {
            if let Ok(net) = entry.parse::<IpNet>() {
                policy.networks.push(net);
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                policy.networks.push(IpNet::from(ip));
            } else if let Some(suffix) = entry.strip_prefix("*.").filter(|s| is_host_name(s)) {
                policy
                    .names
                    .push(format!(".{}", suffix.to_ascii_lowercase()));
            } else if is_host_name(entry) {
                policy.names.push(entry.to_ascii_lowercase());
            } else {
                return Err(invalid(
                    format!("reach[{i}]"),
                    format!(
                        "`{entry}` is neither an address block (10.0.0.0/8), an address, nor a host name"
                    ),
                ));
            }
        }
        Ok(policy)
    }

    /// This policy, also letting `program` run (the demo allows its own executable).
    #[must_use]
    pub fn allowing_program(mut self, program: &Path) -> Self {
        let resolved = std::fs::canonicalize(program).unwrap_or_else(|_| program.to_path_buf());
        self.programs.push(resolved);
        self
    }

    /// Whether `program` (a path, or a name looked up on the daemon's PATH, as a process is
    /// started) may run.
    ///
    /// # Errors
    /// [`Violation::Program`].
    pub fn check_program(&self, program: &str) -> Result<(), Violation> {
        let resolved = resolve(program);
        let allowed = resolved.as_ref().is_some_and(|p| {
            self.programs.iter().any(|a| a == p)
                || self.directories.iter().any(|d| p.starts_with(d))
        });
        if allowed {
            Ok(())
        } else {
            Err(Violation::Program {
                program: program.to_owned(),
                resolved,
            })
        }
    }

    /// Whether a release may set the environment variable `name`.
    ///
    /// # Errors
    /// [`Violation::Env`], naming the rule.
    pub fn check_env(&self, name: &str) -> Result<(), Violation> {
        let upper = name.to_ascii_uppercase();
        match self
            .denied_env
            .iter()
            .find(|rule| matches_rule(rule, &upper))
        {
            Some(rule) => Err(Violation::Env {
                name: name.to_owned(),
                rule: rule.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Whether a call may go to `url`: its host is an allowed name, or an address in an
    /// allowed block.
    ///
    /// # Errors
    /// [`Violation::Host`], or [`Violation::BadUrl`] for a URL without a host.
    pub fn check_url(&self, url: &str) -> Result<(), Violation> {
        let parsed = url::Url::parse(url).map_err(|e| Violation::BadUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        let allowed = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => self.allows_ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.allows_ip(IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) => self.allows_name(name),
            None => {
                return Err(Violation::BadUrl {
                    url: url.to_owned(),
                    reason: "it has no host".into(),
                });
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(Violation::Host {
                url: url.to_owned(),
                host: parsed.host_str().unwrap_or_default().to_owned(),
            })
        }
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        // An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is that IPv4 address.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.networks.iter().any(|n| n.contains(&ip))
    }

    fn allows_name(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.names
            .iter()
            .any(|n| *n == name || (n.starts_with('.') && name.ends_with(n.as_str())))
    }
}

/// `rule` (upper case, maybe ending in `*`) matches the upper-cased `name`.
fn matches_rule(rule: &str, name: &str) -> bool {
    let rule = rule.to_ascii_uppercase();
    match rule.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == rule,
    }
}

fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The canonical path of the executable `program` names: itself when it holds a `/`, else
/// the first match on the daemon's PATH, as `execvp` would pick.
fn resolve(program: &str) -> Option<PathBuf> {
    if program.is_empty() || program.contains('\0') {
        return None;
    }
    let candidate = if program.contains('/') {
        lexical(Path::new(program))?
    } else {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|p| is_executable(p))?
    };
    std::fs::canonicalize(candidate)
        .ok()
        .filter(|p| is_executable(p))
}

/// `path` made absolute (against the working directory), `.` and `..` resolved without
/// following links; canonicalising follows them afterwards.
fn lexical(path: &Path) -> Option<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests;
