//! Placeholders for statements built at run time, per backend: anonymous `?` on SQLite,
//! numbered `$N` on Postgres. SQLite treats `$N` as a *named* parameter and finds each name
//! by a linear search while parsing and binding, which makes multi-row statements quadratic
//! (measured: a quarter of the query path's CPU went there); `?` costs O(1).

use crate::store::Backend;

impl Backend {
    /// The placeholder of parameter `n` (1-based).
    pub fn param(self, n: usize) -> String {
        match self {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => format!("${n}"),
        }
    }

    /// `n` comma-separated placeholders, numbered from `first`.
    pub fn list(self, first: usize, n: usize) -> String {
        (first..first + n)
            .map(|i| self.param(i))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `rows` parenthesised groups of `cols` placeholders, numbered from `first`, for
    /// `INSERT … VALUES`. Bind values row by row, column by column.
    pub fn rows(self, first: usize, rows: usize, cols: usize) -> String {
        (0..rows)
            .map(|r| format!("({})", self.list(first + r * cols, cols)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_numbers_placeholders_in_bind_order() {
        assert_eq!(Backend::Postgres.rows(2, 2, 2), "($2, $3), ($4, $5)");
        assert_eq!(Backend::Postgres.list(1, 3), "$1, $2, $3");
    }

    #[test]
    fn sqlite_uses_anonymous_placeholders() {
        assert_eq!(Backend::Sqlite.rows(1, 2, 3), "(?, ?, ?), (?, ?, ?)");
        assert_eq!(Backend::Sqlite.param(7), "?");
    }
}
