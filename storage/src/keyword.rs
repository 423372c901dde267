//! Statement-kind detection from the SQL text, for kinds the authorizer never sees.

use crate::{Role, StorageError};

/// Kinds refused before preparing. VACUUM reaches no authorizer callback at
/// all (verified in `exec` tests), and transaction control is refused here
/// as well as by the authorizer.
const REFUSED: &[&str] = &[
    "VACUUM",
    "ATTACH",
    "DETACH",
    "BEGIN",
    "COMMIT",
    "END",
    "ROLLBACK",
    "SAVEPOINT",
    "RELEASE",
];

/// Skips whitespace and comments, returning the rest.
fn skip_trivia(mut s: &str) -> &str {
    loop {
        let t = s.trim_start();
        if let Some(rest) = t.strip_prefix("--") {
            s = rest.find('\n').map_or("", |i| &rest[i + 1..]);
        } else if let Some(rest) = t.strip_prefix("/*") {
            s = rest.find("*/").map_or("", |i| &rest[i + 2..]);
        } else {
            return t;
        }
    }
}

/// The leading keyword of `sql` (uppercased), skipping `EXPLAIN [QUERY PLAN]`.
pub(crate) fn leading_keyword(sql: &str) -> Option<String> {
    let mut rest = sql;
    loop {
        rest = skip_trivia(rest);
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            return None;
        }
        let word = rest[..end].to_ascii_uppercase();
        if matches!(word.as_str(), "EXPLAIN" | "QUERY" | "PLAN") {
            rest = &rest[end..];
            continue;
        }
        return Some(word);
    }
}

/// Maintenance kinds reserved to admins; a bare `REINDEX` reaches no
/// authorizer callback (verified in the security tests).
const ADMIN_ONLY: &[&str] = &["REINDEX", "ANALYZE"];

/// Refuses statement kinds by their leading keyword.
pub(crate) fn check(sql: &str, role: Role) -> Result<(), StorageError> {
    match leading_keyword(sql) {
        None => Err(StorageError::Sql("empty statement".into())),
        Some(word) if REFUSED.contains(&word.as_str()) => Err(StorageError::StatementNotAllowed(
            format!("{word} is not allowed"),
        )),
        Some(word) if role != Role::Admin && ADMIN_ONLY.contains(&word.as_str()) => Err(
            StorageError::DdlNotAllowed(format!("{word} needs an admin token")),
        ),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_keyword_skips_comments_and_explain() {
        assert_eq!(
            leading_keyword("  -- hi\n /* x */ vacuum").as_deref(),
            Some("VACUUM")
        );
        assert_eq!(
            leading_keyword("EXPLAIN QUERY PLAN select 1").as_deref(),
            Some("SELECT")
        );
        assert_eq!(leading_keyword("/* unterminated"), None);
        assert_eq!(leading_keyword(" ;"), None);
    }

    #[test]
    fn check_refuses_vacuum_and_transaction_control() {
        for sql in [
            "VACUUM",
            "vacuum into '/tmp/x'",
            "/**/Begin",
            "commit",
            "END",
            "savepoint a",
        ] {
            let refused = check(sql, Role::Admin);
            assert!(
                matches!(refused, Err(StorageError::StatementNotAllowed(_))),
                "{sql}"
            );
        }
        assert!(check("SELECT 1", Role::Read).is_ok());
        assert!(matches!(
            check("-- nothing", Role::Admin),
            Err(StorageError::Sql(_))
        ));
    }

    #[test]
    fn check_reserves_reindex_and_analyze_to_admins() {
        assert!(matches!(
            check("reindex", Role::Write),
            Err(StorageError::DdlNotAllowed(_))
        ));
        assert!(check("ANALYZE", Role::Admin).is_ok());
    }
}
