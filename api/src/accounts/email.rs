//! `Email`: an account's email address, parsed at the edge (trimmed, lower-cased).

use crate::error::ApiError;

/// A plausible email address: `local@domain`, 3–254 characters, no spaces or controls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let s = s.trim().to_lowercase();
        let bad = || {
            ApiError::bad_request(
                "invalid_email",
                "enter an email address like name@example.com",
            )
        };
        if !(3..=254).contains(&s.len()) || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        match s.split_once('@') {
            Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
            {
                Ok(Self(s))
            }
            _ => Err(bad()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse(" Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a da@x.y",
            "a@b@c",
            "a\u{0}@b.c",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }
}
