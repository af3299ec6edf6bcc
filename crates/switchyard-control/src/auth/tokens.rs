//! [`Tokens`]: API tokens — created with a random secret shown once, stored as the secret's
//! SHA-256, checked on every request from an in-memory copy, revoked (never deleted). Every
//! creation and revocation is an event in the audit log, in the same transaction.
//!
//! A token reads `sy_<id>_<secret>`: `id` (12 hex digits) is public and names the token in lists
//! and audit entries; `secret` is 64 hex digits (256 random bits).

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rand::RngCore as _;
use serde::Serialize;
use sha2::{Digest, Sha256};
use switchyard_core::ports::{Author, EventKind, NewEvent, StoreError, TokenRecord, TokenStore};
use switchyard_core::{AppName, Clock, NameError, ObjectName};

use super::principal::Principal;
use super::role::Role;

const PREFIX: &str = "sy_";
const ID_BYTES: usize = 6;
const SECRET_BYTES: usize = 32;

/// What a new token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// Who it stands for (the actor of what is done with it).
    pub name: String,
    pub role: Role,
    /// Limited to these apps; every app when `None`.
    pub apps: Option<BTreeSet<String>>,
    /// Limited to these environments; every environment when `None`.
    pub environments: Option<BTreeSet<String>>,
}

/// A token just created: its record and the token itself, shown this once.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedToken {
    pub token: String,
    #[serde(flatten)]
    pub record: TokenRecord,
}

/// Why a token could not be created or revoked.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token name `{name}` {source}")]
    InvalidName {
        name: String,
        #[source]
        source: NameError,
    },
    #[error("app `{name}` in the token's scope {source}")]
    InvalidApp {
        name: String,
        #[source]
        source: NameError,
    },
    #[error("environment `{0}` in the token's scope must be 1-63 letters, digits, `-`, `_` or `.`")]
    InvalidEnvironment(String),
    #[error("an sdk token serves exactly one environment; give it one --env")]
    SdkEnvironment,
    #[error("an sdk token is not limited to apps; drop --app")]
    SdkApps,
    #[error("a proxy token serves every app and environment; drop --app and --env")]
    ProxyScope,
    #[error("token `{0}` does not exist")]
    Unknown(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for TokenError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownToken(id) => TokenError::Unknown(id),
            e => TokenError::Store(e),
        }
    }
}

/// Why a request is not authenticated. The message never says which part was wrong beyond
/// "unknown or revoked", so probing learns nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "no token: send `Authorization: Bearer TOKEN` (`switchyard token create`, or the admin token in the data directory's admin.token)"
    )]
    Missing,
    #[error("the token is not one of this daemon's (unknown, malformed or revoked)")]
    Invalid,
}

/// The tokens of the daemon.
pub struct Tokens {
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    /// Unrevoked tokens by id.
    live: ArcSwap<HashMap<String, TokenRecord>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("live", &self.live.load().len())
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Loads the stored tokens.
    ///
    /// # Errors
    /// The store cannot list them.
    pub async fn load(
        store: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Tokens, StoreError> {
        let tokens = Tokens {
            store,
            clock,
            live: ArcSwap::default(),
        };
        tokens.reload().await?;
        Ok(tokens)
    }

    /// Reads the stored tokens again (another replica created or revoked one).
    ///
    /// # Errors
    /// The store cannot list them; the tokens in force stay then.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let live = self
            .store
            .tokens()
            .await?
            .into_iter()
            .filter(|t| t.revoked_at.is_none())
            .map(|t| (t.id.clone(), t))
            .collect();
        self.live.store(Arc::new(live));
        Ok(())
    }

    /// The first admin token, when the daemon has no token at all; `None` otherwise.
    ///
    /// # Errors
    /// The store fails.
    pub async fn bootstrap(&self) -> Result<Option<CreatedToken>, TokenError> {
        if !self.store.tokens().await?.is_empty() {
            return Ok(None);
        }
        let admin = NewToken {
            name: "admin".into(),
            role: Role::Admin,
            apps: None,
            environments: None,
        };
        self.create(&admin, &Author::system("switchyard serve"))
            .await
            .map(Some)
    }

    /// Creates a token; its secret is in the result and nowhere else.
    ///
    /// # Errors
    /// An invalid name or scope; store failures.
    pub async fn create(&self, new: &NewToken, by: &Author) -> Result<CreatedToken, TokenError> {
        check(new)?;
        let (id, secret) = (random_hex(ID_BYTES), random_hex(SECRET_BYTES));
        let record = TokenRecord {
            id: id.clone(),
            name: new.name.clone(),
            role: new.role.as_str().to_owned(),
            apps: new.apps.clone(),
            environments: new.environments.clone(),
            secret_hash: sha256_hex(secret.as_bytes()),
            created_at: self.clock.now(),
            created_by: by.actor.clone(),
            revoked_at: None,
            revoked_by: None,
        };
        let event = self.event(
            EventKind::TokenCreated,
            by,
            format!("token {id} created for {} with role {}", new.name, new.role),
            &record,
        );
        self.store.create_token(&record, &[event]).await?;
        self.reload().await?;
        Ok(CreatedToken {
            token: format!("{PREFIX}{id}_{secret}"),
            record,
        })
    }

    /// Every token, revoked ones included (never their secrets).
    ///
    /// # Errors
    /// Store failures.
    pub async fn list(&self) -> Result<Vec<TokenRecord>, TokenError> {
        Ok(self.store.tokens().await?)
    }

    /// Revokes token `id`; requests with it fail from now on. Returns `false` when it was
    /// revoked already.
    ///
    /// # Errors
    /// `Unknown`; store failures.
    pub async fn revoke(&self, id: &str, by: &Author) -> Result<bool, TokenError> {
        let reason = format!("token {id} revoked");
        let event = NewEvent {
            at: self.clock.now(),
            app: None,
            rollout: None,
            kind: EventKind::TokenRevoked,
            actor: by.actor.clone(),
            source: by.source.clone(),
            reason,
            data: serde_json::json!({"token": id}),
        };
        let revoked = self
            .store
            .revoke_token(id, &by.actor, self.clock.now(), &[event])
            .await?;
        self.reload().await?;
        Ok(revoked)
    }

    /// The principal a bearer token stands for.
    ///
    /// # Errors
    /// [`AuthError::Invalid`] for anything but an unrevoked token of this daemon.
    pub fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let (id, secret) = token
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('_'))
            .ok_or(AuthError::Invalid)?;
        let live = self.live.load();
        let record = live.get(id).ok_or(AuthError::Invalid)?;
        if !same(&sha256_hex(secret.as_bytes()), &record.secret_hash) {
            return Err(AuthError::Invalid);
        }
        let role = record.role.parse().map_err(|_| AuthError::Invalid)?;
        Ok(Principal {
            name: record.name.clone(),
            role,
            apps: record.apps.clone(),
            environments: record.environments.clone(),
            token: Some(record.id.clone()),
        })
    }

    fn event(
        &self,
        kind: EventKind,
        by: &Author,
        reason: String,
        record: &TokenRecord,
    ) -> NewEvent {
        NewEvent {
            at: self.clock.now(),
            app: None,
            rollout: None,
            kind,
            actor: by.actor.clone(),
            source: by.source.clone(),
            reason,
            data: serde_json::json!({
                "token": record.id,
                "name": record.name,
                "role": record.role,
                "apps": record.apps,
                "environments": record.environments,
            }),
        }
    }
}

/// Checks a new token's name and scope.
fn check(new: &NewToken) -> Result<(), TokenError> {
    ObjectName::new(new.name.clone()).map_err(|source| TokenError::InvalidName {
        name: new.name.clone(),
        source,
    })?;
    for app in new.apps.iter().flatten() {
        AppName::new(app.clone()).map_err(|source| TokenError::InvalidApp {
            name: app.clone(),
            source,
        })?;
    }
    for env in new.environments.iter().flatten() {
        let ok = (1..=63).contains(&env.len())
            && env
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(TokenError::InvalidEnvironment(env.clone()));
        }
    }
    if new.role == Role::Sdk {
        if new.environments.as_ref().is_none_or(|e| e.len() != 1) {
            return Err(TokenError::SdkEnvironment);
        }
        if new.apps.is_some() {
            return Err(TokenError::SdkApps);
        }
    }
    if new.role == Role::Proxy && (new.apps.is_some() || new.environments.is_some()) {
        return Err(TokenError::ProxyScope);
    }
    Ok(())
}

pub(super) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // ThreadRng: ChaCha12, seeded and reseeded from the operating system.
    rand::rng().fill_bytes(&mut buf);
    hex(&buf)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Equality in time independent of where the strings differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests;
