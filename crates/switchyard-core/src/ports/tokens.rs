//! API tokens as stored: who a token stands for, what it may do, and the hash of its secret.
//! The secret itself is never stored; it is shown once, when the token is created.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::store::{NewEvent, StoreError};
use crate::time::Timestamp;

/// Stored tokens. Creating and revoking one appends its audit events in the same transaction.
#[async_trait::async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// Stores a new token and appends `events`.
    ///
    /// # Errors
    /// `TokenExists` when the id is taken; backend failures.
    async fn create_token(
        &self,
        token: &TokenRecord,
        events: &[NewEvent],
    ) -> Result<(), StoreError>;

    /// Every token, revoked ones included, oldest first.
    ///
    /// # Errors
    /// Backend failures; a stored scope that does not read back (`Corrupt`).
    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;

    /// Marks token `id` revoked at `at` by `by` and appends `events`. Returns `false` when it
    /// was revoked already (nothing is written then).
    ///
    /// # Errors
    /// `UnknownToken`; backend failures.
    async fn revoke_token(
        &self,
        id: &str,
        by: &str,
        at: Timestamp,
        events: &[NewEvent],
    ) -> Result<bool, StoreError>;
}

/// A token as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The public part of the token, shown in lists and audit entries.
    pub id: String,
    /// Who the token stands for: the actor of everything done with it.
    pub name: String,
    /// The role's name (`viewer`, `operator`, `deployer`, `flag-editor`, `admin`, `sdk`).
    pub role: String,
    /// The apps it may act on; every app when `None`.
    pub apps: Option<BTreeSet<String>>,
    /// The environments it may act on; every environment when `None`.
    pub environments: Option<BTreeSet<String>>,
    /// Lowercase hex SHA-256 of the secret part.
    pub secret_hash: String,
    pub created_at: Timestamp,
    pub created_by: String,
    pub revoked_at: Option<Timestamp>,
    pub revoked_by: Option<String>,
}
