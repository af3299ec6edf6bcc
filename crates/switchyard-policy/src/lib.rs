//! The operator's policy, read from a file on the daemon's machine (`switchyard serve
//! --policy FILE`): which programs a `process` runtime or a `command` provider may run, which
//! environment variable names no release may set, and which hosts webhooks and metric
//! providers may call. The API can only reference what it allows; nothing an API caller sends
//! can widen it.
//!
//! Without a file the policy runs nothing, refuses the built-in dangerous variables and reaches
//! loopback only.
//!
//! - [`policy`]: [`Policy`], loading it and checking programs, variables and URLs.
//! - [`file`]: the file's format.

pub mod file;
pub mod policy;

pub use file::PolicyFileError;
pub use policy::{BUILT_IN_DENIED_ENV, Policy, Violation};
