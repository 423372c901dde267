//! Parsed identifiers from the edge: namespace and database slugs, subjects.

use crate::error::ApiError;

fn valid_slug(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// A namespace slug: 1–63 of `[a-z0-9-]`, starting with a letter. Safe in NATS subjects
/// and URLs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceSlug(String);

/// `s` as a slug of `what`, or 400 `invalid_slug`.
fn parse_slug(s: &str, what: &str) -> Result<String, ApiError> {
    if valid_slug(s) {
        Ok(s.to_owned())
    } else {
        Err(ApiError::bad_request(
            "invalid_slug",
            format!("a {what} slug is 1-63 characters of a-z, 0-9 and '-', starting with a letter"),
        ))
    }
}

impl NamespaceSlug {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        parse_slug(s, "namespace").map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A database slug chosen by a workspace: same rules as namespace slugs. Per-user databases
/// get `u_<hash>` slugs (with `_`, which chosen slugs cannot contain).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseSlug(String);

impl DatabaseSlug {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        parse_slug(s, "database").map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// True when `s` could name a database in a path (chosen or per-user slug).
pub fn is_database_path_segment(s: &str) -> bool {
    valid_slug(s)
        || (s.len() == 26
            && s.starts_with("u_")
            && s[2..]
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()))
}

/// The app's identifier for one of its users: 1–256 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject(String);

impl Subject {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let n = s.chars().count();
        if n == 0 || n > 256 {
            return Err(ApiError::bad_request(
                "invalid_subject",
                "subject must be 1-256 characters",
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(ApiError::bad_request(
                "invalid_subject",
                "subject must not contain control characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_accept_simple_names() {
        assert!(NamespaceSlug::parse("acme").is_ok());
        assert!(DatabaseSlug::parse("app-template2").is_ok());
    }

    #[test]
    fn slugs_reject_path_tricks_and_odd_characters() {
        for bad in [
            "",
            "..",
            "a/b",
            "A",
            "1abc",
            "-x",
            "a.b",
            "a_b",
            "é",
            &"a".repeat(64),
        ] {
            assert!(NamespaceSlug::parse(bad).is_err(), "{bad:?}");
            assert!(DatabaseSlug::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn per_user_slugs_are_valid_path_segments() {
        assert!(is_database_path_segment("u_0123456789abcdef01234567"));
        assert!(!is_database_path_segment("u_0123456789ABCDEF01234567"));
        assert!(!is_database_path_segment("u_../../etc"));
    }

    #[test]
    fn subject_length_is_bounded() {
        assert!(Subject::parse("").is_err());
        assert!(Subject::parse(&"x".repeat(256)).is_ok());
        assert!(Subject::parse(&"x".repeat(257)).is_err());
        assert!(Subject::parse(&"é".repeat(256)).is_ok());
        assert!(Subject::parse("a\nb").is_err());
    }
}
