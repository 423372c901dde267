//! The password identity provider: argon2id hashes (PHC strings), computed on the
//! blocking pool so sign-ins never stall the async workers.

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};
use async_trait::async_trait;
use persql_events::ControlPlane;
use sqlx::Row;

use super::{Email, Identity, IdentityProvider};
use crate::error::ApiError;

/// A password as typed: 8–1024 characters. `Debug` never prints it.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let n = s.chars().count();
        if !(8..=1024).contains(&n) {
            return Err(ApiError::bad_request(
                "invalid_password",
                "a password is 8 to 1024 characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

/// Email + password accounts.
#[derive(Debug, Default)]
pub struct PasswordProvider;

/// A hash that no password matches, checked when the email is unknown so a wrong email
/// costs as much time as a wrong password.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3P1bJmUj1FbD2wQGWdvqL2Bq1kqUl1Y4cXkC3m0X9gE";

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    // argon2 is deliberately CPU- and memory-hard (tens of ms): off the async workers.
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("password hashing task: {e}")))
}

#[async_trait]
impl IdentityProvider for PasswordProvider {
    fn name(&self) -> &'static str {
        "password"
    }

    async fn verify(
        &self,
        cp: &ControlPlane,
        email: &Email,
        password: &Password,
    ) -> Result<Option<Identity>, ApiError> {
        let row = sqlx::query(
            "SELECT password_hash FROM accounts WHERE email = $1 AND provider = 'password'",
        )
        .bind(email.as_str())
        .fetch_optional(cp.pool())
        .await?;
        let stored: Option<String> = match &row {
            Some(r) => r.try_get(0)?,
            None => None,
        };
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let typed = password.0.clone();
        let ok = blocking(move || {
            PasswordHash::new(&hash)
                .map(|h| {
                    Argon2::default()
                        .verify_password(typed.as_bytes(), &h)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await?;
        Ok((ok && known).then(|| Identity {
            provider: self.name(),
            subject: email.as_str().to_owned(),
            email: email.clone(),
            password_hash: None,
        }))
    }

    async fn enrol(&self, email: &Email, password: &Password) -> Result<Identity, ApiError> {
        let typed = password.0.clone();
        let hash = blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(typed.as_bytes(), &salt)
                .map(|h| h.to_string())
        })
        .await?
        .map_err(|e| ApiError::Internal(format!("hashing a password: {e}")))?;
        Ok(Identity {
            provider: self.name(),
            subject: email.as_str().to_owned(),
            email: email.clone(),
            password_hash: Some(hash),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn enrolled_hashes_are_argon2id_and_verify() {
        let email = Email::parse("ada@example.com").unwrap();
        let pw = Password::parse("correct horse").unwrap();
        let id = PasswordProvider.enrol(&email, &pw).await.unwrap();
        let hash = id.password_hash.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong horse", &parsed)
                .is_err()
        );
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[test]
    fn short_passwords_are_refused_and_never_printed() {
        assert!(Password::parse("short").is_err());
        let p = Password::parse("long enough").unwrap();
        assert!(!format!("{p:?}").contains("long"));
    }
}
