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

use crate::{error::ApiError, namespaces, slug::NamespaceSlug};

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
    ) -> Result<Option<Identity>, ApiError>;
    /// A new identity for sign-up with these credentials.
    async fn enrol(&self, email: &Email, password: &Password) -> Result<Identity, ApiError>;
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
    ) -> Result<Option<Account>, ApiError> {
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
    ) -> Result<SignUp, ApiError> {
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
            Err(ApiError::Conflict { .. }) => Ok(SignUp::AlreadyRegistered),
            Err(e) => Err(e),
        }
    }

    /// The account of `identity` (by provider and subject), created with its own namespace
    /// on first sign-in.
    pub async fn find_or_create(
        &self,
        cp: &ControlPlane,
        identity: Identity,
    ) -> Result<Account, ApiError> {
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
        let slug = NamespaceSlug::parse(&format!("acct-{}", &id[id.len() - 12..]))?;
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
            return Err(ApiError::Conflict {
                code: "account_exists",
                detail: "an account with this identity exists".into(),
            });
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
