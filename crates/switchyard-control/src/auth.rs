//! Who may do what: roles, the actions they allow, scopes (apps and environments), and the
//! principals requests act as.
//!
//! - [`role`]: [`Role`] and [`Action`], and which role allows which action.
//! - [`principal`]: [`Principal`], the authenticated caller, and [`Forbidden`].
//! - [`tokens`]: [`Tokens`], creating, listing, revoking and checking API tokens.
//! - [`sessions`]: [`Sessions`], the dashboard's sign-ins: a cookie standing for a token.

pub mod principal;
pub mod role;
pub mod sessions;
pub mod tokens;

pub use principal::{Forbidden, Principal, Scope};
pub use role::{Action, Role};
pub use sessions::{Sessions, SignInError};
pub use tokens::{AuthError, CreatedToken, NewToken, TokenError, Tokens};
