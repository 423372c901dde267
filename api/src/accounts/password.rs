//! The password identity provider: argon2id hashes (PHC strings), computed on the
//! blocking pool so sign-ins never stall the async workers; new passwords must pass a
//! strength check (length and zxcvbn's estimate, which knows common passwords).

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};
use async_trait::async_trait;
use persql_events::ControlPlane;
use sqlx::Row;

use super::{AccountError, Email, Identity, IdentityProvider};
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

    /// Refuses a password too weak for a new account (400 `weak_password`): shorter than
    /// [`MIN_NEW_CHARS`], or guessable in under 10^8 tries by zxcvbn's estimate (common
    /// passwords, words, repeats, sequences, dates and the email itself are cheap).
    pub async fn check_strength(&self, email: &Email) -> Result<(), AccountError> {
        if self.0.chars().count() < MIN_NEW_CHARS {
            return Err(weak(format!(
                "choose a password of at least {MIN_NEW_CHARS} characters"
            )));
        }
        let (typed, email) = (self.0.clone(), email.as_str().to_owned());
        // zxcvbn tries many patterns (milliseconds per password): off the async workers.
        let estimate = blocking(move || {
            let user = email.split('@').next().unwrap_or_default().to_owned();
            let e = zxcvbn::zxcvbn(&typed, &[&email, &user]);
            let hint = e
                .feedback()
                .and_then(|f| f.warning())
                .map(|w| w.to_string());
            (e.score(), hint)
        })
        .await?;
        match estimate {
            (score, _) if score >= MIN_SCORE => Ok(()),
            (_, hint) => Err(weak(format!(
                "this password is too easy to guess{}; a few unrelated words make a strong one",
                hint.map(|h| format!(" ({})", h.trim_end_matches('.')))
                    .unwrap_or_default()
            ))),
        }
    }
}

/// Fewest characters of a new password.
pub const MIN_NEW_CHARS: usize = 10;
/// Lowest zxcvbn score of a new password: 3 is "safely unguessable: moderate protection
/// from offline slow-hash scenario" (10^8 guesses or more).
const MIN_SCORE: zxcvbn::Score = zxcvbn::Score::Three;

fn weak(detail: String) -> AccountError {
    AccountError::WeakPassword(detail)
}

/// Email + password accounts.
#[derive(Debug, Default)]
pub struct PasswordProvider;

/// A hash that no password matches, checked when the email is unknown so a wrong email
/// costs as much time as a wrong password.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3P1bJmUj1FbD2wQGWdvqL2Bq1kqUl1Y4cXkC3m0X9gE";

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AccountError> {
    // argon2 is deliberately CPU- and memory-hard (tens of ms): off the async workers.
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AccountError::Hashing(format!("task: {e}")))
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
    ) -> Result<Option<Identity>, AccountError> {
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

    async fn enrol(&self, email: &Email, password: &Password) -> Result<Identity, AccountError> {
        let typed = password.0.clone();
        let hash = blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(typed.as_bytes(), &salt)
                .map(|h| h.to_string())
        })
        .await?
        .map_err(|e| AccountError::Hashing(e.to_string()))?;
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

    async fn strong(pw: &str) -> bool {
        let email = Email::parse("ada.lovelace@example.com").unwrap();
        Password::parse(pw)
            .unwrap()
            .check_strength(&email)
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn new_passwords_must_be_long_and_hard_to_guess() {
        for weak in [
            "aaaaaaaa",
            "aaaaaaaaaaaa",
            "password123",
            "1234567890",
            "qwertyuiop",
            "ada.lovelace@example.com",
        ] {
            assert!(!strong(weak).await, "{weak} passed");
        }
        for good in ["correct horse battery", "glass tulip ferry orbit"] {
            assert!(strong(good).await, "{good} refused");
        }
        let email = Email::parse("a@example.com").unwrap();
        let err = Password::parse("aaaaaaaaaaaa")
            .unwrap()
            .check_strength(&email)
            .await
            .unwrap_err();
        assert!(matches!(err, AccountError::WeakPassword(_)), "{err:?}");
    }

    #[test]
    fn short_passwords_are_refused_and_never_printed() {
        assert!(Password::parse("short").is_err());
        let p = Password::parse("long enough").unwrap();
        assert!(!format!("{p:?}").contains("long"));
    }
}
