//! Accounts: people who sign in to PerSQL and own a namespace (and so a balance) of their
//! own. Sign-in goes through an [`IdentityProvider`]; today that is [`PasswordProvider`]
//! (email + argon2id password).
//!
//! Adding an upstream identity provider (GitHub, Google, any OIDC issuer) later: implement
//! a redirect to the provider and a callback that turns its answer into an [`Identity`]
//! (`provider` = e.g. `"oidc:https://accounts.google.com"`, `subject` = its stable `sub`,
//! `email` from its verified claims), then call [`Accounts::find_or_create`], which keys
//! accounts by `(provider, subject)` and creates the namespace on first sign-in. Sessions,
//! consent and everything after sign-in stay the same.

pub mod browse;
mod email;
pub mod limiter;
mod password;
pub mod sessions;

use async_trait::async_trait;
use persql_events::{ControlPlane, now_ms};
use sqlx::Row;

pub use email::Email;
pub use password::{MIN_NEW_CHARS, Password, PasswordProvider};

use persql_events::StoreError;
use persql_storage::StorageError;

use crate::{
    namespaces::{self, NamespaceError},
    slug::NamespaceSlug,
};

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Another account holds this identity (409 `account_exists`).
    #[error("an account with this identity exists")]
    Exists,
    /// A new password is too easy to guess (400 `weak_password`).
    #[error("{0}")]
    WeakPassword(String),
    /// The app holds no database in the account (404 `app_not_connected`).
    #[error("this app holds no database in the account")]
    NotConnected,
    /// The browser asked for a table the database does not have (404 `not_found`).
    #[error("no such table")]
    NoSuchTable,
    /// Looking up the app's database failed (500).
    #[error("looking up the database: {0}")]
    Lookup(String),
    /// Hashing a password failed (500).
    #[error("password hashing: {0}")]
    Hashing(String),
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AccountError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// A person as an identity provider vouches for them.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The provider's name, stored with the account (`password`).
    pub provider: &'static str,
    /// The provider's stable id for the person.
    pub subject: String,
    pub email: Email,
    /// Provider-specific secret to keep (the password provider's argon2 hash).
    pub password_hash: Option<String>,
}

/// Signs people in. Implementations must be slow for attackers, not for the server:
/// expensive work runs on the blocking pool.
#[async_trait]
pub trait IdentityProvider: Send + Sync {
    /// The name stored with accounts this provider created.
    fn name(&self) -> &'static str;
    /// The identity behind these credentials, or `None` when they are wrong.
    async fn verify(
        &self,
        cp: &ControlPlane,
        email: &Email,
        password: &Password,
    ) -> Result<Option<Identity>, AccountError>;
    /// A new identity for sign-up with these credentials.
    async fn enrol(&self, email: &Email, password: &Password) -> Result<Identity, AccountError>;
}

/// A signed-in person.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub namespace_id: String,
    pub namespace_slug: String,
}

/// What a sign-up did; the person is told the same in both cases.
#[derive(Debug)]
pub enum SignUp {
    /// A new account.
    Created(Account),
    /// The email already had an account; nothing changed.
    AlreadyRegistered,
}

/// Account lookups and creation.
pub struct Accounts {
    provider: Box<dyn IdentityProvider>,
}

const SELECT: &str = "SELECT a.id, a.email, a.namespace_id, n.slug FROM accounts a \
     JOIN namespaces n ON n.id = a.namespace_id";

fn account(r: &sqlx::any::AnyRow) -> Result<Account, sqlx::Error> {
    Ok(Account {
        id: r.try_get(0)?,
        email: r.try_get(1)?,
        namespace_id: r.try_get(2)?,
        namespace_slug: r.try_get(3)?,
    })
}

impl Accounts {
    pub fn new(provider: Box<dyn IdentityProvider>) -> Self {
        Self { provider }
    }

    /// The account with id `id`.
    pub async fn get(cp: &ControlPlane, id: &str) -> Result<Option<Account>, sqlx::Error> {
        let q = format!("{SELECT} WHERE a.id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(q))
            .bind(id)
            .fetch_optional(cp.pool())
            .await?;
        row.as_ref().map(account).transpose()
    }

    /// The account owning namespace `namespace_id`, if it is an account's namespace.
    pub async fn by_namespace(
        cp: &ControlPlane,
        namespace_id: &str,
    ) -> Result<Option<Account>, sqlx::Error> {
        let q = format!("{SELECT} WHERE a.namespace_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(q))
            .bind(namespace_id)
            .fetch_optional(cp.pool())
            .await?;
        row.as_ref().map(account).transpose()
    }

    /// Checks credentials; `None` when they are wrong (or nobody has that email).
    pub async fn sign_in(
        &self,
        cp: &ControlPlane,
        email: &Email,
        password: &Password,
    ) -> Result<Option<Account>, AccountError> {
        match self.provider.verify(cp, email, password).await? {
            Some(identity) => self.find_or_create(cp, identity).await.map(Some),
            None => Ok(None),
        }
    }

    /// Creates an account with a password, after checking its strength (400
    /// `weak_password`). A registered email is not an error: the caller answers both cases
    /// alike, so sign-up does not tell who has an account. Both cases hash the password, so
    /// they take as long.
    pub async fn sign_up(
        &self,
        cp: &ControlPlane,
        email: &Email,
        password: &Password,
    ) -> Result<SignUp, AccountError> {
        password.check_strength(email).await?;
        let identity = self.provider.enrol(email, password).await?;
        let taken = sqlx::query("SELECT 1 FROM accounts WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(cp.pool())
            .await?
            .is_some();
        if taken {
            return Ok(SignUp::AlreadyRegistered);
        }
        match self.find_or_create(cp, identity).await {
            Ok(account) => Ok(SignUp::Created(account)),
            // Lost a race with a sign-up of the same email.
            Err(AccountError::Exists) => Ok(SignUp::AlreadyRegistered),
            Err(e) => Err(e),
        }
    }

    /// The account of `identity` (by provider and subject), created with its own namespace
    /// on first sign-in.
    pub async fn find_or_create(
        &self,
        cp: &ControlPlane,
        identity: Identity,
    ) -> Result<Account, AccountError> {
        let q = format!("{SELECT} WHERE a.provider = $1 AND a.subject = $2");
        let existing = sqlx::query(sqlx::AssertSqlSafe(q))
            .bind(identity.provider)
            .bind(&identity.subject)
            .fetch_optional(cp.pool())
            .await?;
        if let Some(r) = existing {
            return Ok(account(&r)?);
        }
        let id = uuid::Uuid::now_v7().simple().to_string();
        // Account namespaces get a random slug: emails must not leak into NATS subjects.
        let slug = NamespaceSlug::parse(&format!("acct-{}", &id[id.len() - 12..]))
            .map_err(|e| StoreError::Apply(format!("account namespace slug: {e}")))?;
        let mut tx = cp.begin().await?;
        let namespace_id = namespaces::insert(&mut tx, cp.backend(), &slug).await?.id;
        let inserted = sqlx::query(
            "INSERT INTO accounts (id, email, provider, subject, password_hash, namespace_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(&id)
        .bind(identity.email.as_str())
        .bind(identity.provider)
        .bind(&identity.subject)
        .bind(identity.password_hash.as_deref())
        .bind(&namespace_id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(AccountError::Exists);
        }
        cp.commit(tx).await?;
        Ok(Account {
            id,
            email: identity.email.as_str().to_owned(),
            namespace_id,
            namespace_slug: slug.as_str().to_owned(),
        })
    }
}
