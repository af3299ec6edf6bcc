//! [`Sessions`]: the dashboard's sign-ins. A browser signs in once with a token and then sends a
//! random session id (an `HttpOnly`, `SameSite=Strict` cookie) instead of it. A session keeps
//! its token and authenticates it again on every request, so revoking the token ends its
//! sessions at once. Sessions live in the memory of the daemon that made them: a restart signs
//! everybody out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::principal::Principal;
use super::role::Action;
use super::tokens::{AuthError, Tokens, random_hex};

/// How long a session lasts after it was made, however busy.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Sessions kept at most; signing in beyond this ends the oldest.
pub const MAX_SESSIONS: usize = 10_000;

/// Random bytes of a session id (hex in the cookie).
const ID_BYTES: usize = 32;

/// The sign-ins of one daemon.
#[derive(Debug, Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
}

#[derive(Debug)]
struct Session {
    token: String,
    made: Instant,
}

/// Why a sign-in was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(
        "a token of role `{0}` cannot sign in to the dashboard; sign in with a viewer, operator, deployer, flag-editor or admin token"
    )]
    Role(&'static str),
}

impl Sessions {
    /// Checks `token` and makes a session for it; returns the session id and who it is.
    ///
    /// # Errors
    /// An unknown or revoked token, or one whose role cannot read (SDK keys, proxies).
    pub fn sign_in(
        &self,
        tokens: &Tokens,
        token: &str,
    ) -> Result<(String, Principal), SignInError> {
        let token = token.trim();
        let principal = tokens.authenticate(token)?;
        if !principal.role.allows(Action::Read) {
            return Err(SignInError::Role(principal.role.as_str()));
        }
        let id = random_hex(ID_BYTES);
        let now = Instant::now();
        let mut live = self.lock();
        live.retain(|_, s| now.duration_since(s.made) < SESSION_LIFETIME);
        if live.len() >= MAX_SESSIONS {
            let oldest = live
                .iter()
                .min_by_key(|(_, s)| s.made)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                live.remove(&oldest);
            }
        }
        live.insert(
            id.clone(),
            Session {
                token: token.to_owned(),
                made: now,
            },
        );
        Ok((id, principal))
    }

    /// Who session `id` stands for now.
    ///
    /// # Errors
    /// [`AuthError::Invalid`] for an unknown or expired session, or one whose token was revoked
    /// (the session then ends).
    pub fn principal(&self, tokens: &Tokens, id: &str) -> Result<Principal, AuthError> {
        let mut live = self.lock();
        let session = live.get(id).ok_or(AuthError::Invalid)?;
        let principal = (session.made.elapsed() < SESSION_LIFETIME)
            .then(|| tokens.authenticate(&session.token).ok())
            .flatten();
        match principal {
            Some(p) => Ok(p),
            None => {
                live.remove(id);
                Err(AuthError::Invalid)
            }
        }
    }

    /// Ends session `id`; `false` when there was none.
    pub fn sign_out(&self, id: &str) -> bool {
        self.lock().remove(id).is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchyard_core::ports::Author;

    use super::*;
    use crate::auth::{NewToken, Role};

    async fn tokens() -> Tokens {
        let store = switchyard_store::SqliteStore::open_in_memory()
            .await
            .unwrap();
        let clock: Arc<dyn switchyard_core::Clock> =
            Arc::new(crate::testing::TestClock::at(1_700_000_000_000));
        Tokens::load(Arc::new(store), clock).await.unwrap()
    }

    async fn token(tokens: &Tokens, role: Role) -> String {
        let new = NewToken {
            name: format!("{role}-user"),
            role,
            apps: None,
            environments: if role == Role::Sdk {
                Some(["production".to_owned()].into())
            } else {
                None
            },
        };
        tokens
            .create(&new, &Author::system("test"))
            .await
            .unwrap()
            .token
    }

    #[tokio::test]
    async fn a_session_stands_for_its_token_until_the_token_is_revoked() {
        let tokens = tokens().await;
        let sessions = Sessions::default();
        let viewer = token(&tokens, Role::Viewer).await;
        let (id, principal) = sessions.sign_in(&tokens, &viewer).unwrap();
        assert_eq!(principal.name, "viewer-user");
        assert_eq!(id.len(), 2 * ID_BYTES);
        assert_eq!(sessions.principal(&tokens, &id).unwrap().role, Role::Viewer);
        let token_id = principal.token.unwrap();
        tokens
            .revoke(&token_id, &Author::system("test"))
            .await
            .unwrap();
        assert_eq!(sessions.principal(&tokens, &id), Err(AuthError::Invalid));
        assert!(!sessions.sign_out(&id), "a revoked token's session ended");
    }

    #[tokio::test]
    async fn only_tokens_that_read_sign_in_and_a_signed_out_session_is_gone() {
        let tokens = tokens().await;
        let sessions = Sessions::default();
        let sdk = token(&tokens, Role::Sdk).await;
        assert_eq!(
            sessions.sign_in(&tokens, &sdk).unwrap_err(),
            SignInError::Role("sdk")
        );
        assert_eq!(
            sessions.sign_in(&tokens, "sy_000000000000_00").unwrap_err(),
            SignInError::Auth(AuthError::Invalid)
        );
        let admin = token(&tokens, Role::Admin).await;
        let (id, _) = sessions.sign_in(&tokens, &format!(" {admin}\n")).unwrap();
        let (other, _) = sessions.sign_in(&tokens, &admin).unwrap();
        assert_ne!(id, other);
        assert!(sessions.sign_out(&id));
        assert_eq!(sessions.principal(&tokens, &id), Err(AuthError::Invalid));
        assert!(sessions.principal(&tokens, &other).is_ok());
        assert_eq!(sessions.principal(&tokens, "nope"), Err(AuthError::Invalid));
    }
}
