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

/// Most rows (or list items) in one statement built per chunk by [`shaped_chunks`]; at 9
/// bound values a row, far below SQLite's 32,766 and Postgres's 65,535.
pub const MAX_ROWS: usize = 256;

/// Splits `items` into chunks whose lengths come from a small fixed set: [`MAX_ROWS`] while
/// that many remain, then descending powers of two. A multi-row statement built per chunk
/// then has at most 9 distinct texts, which the connection's statement cache keeps prepared.
/// Chunks of whatever length a batch happened to have prepared a new statement of hundreds
/// of rows on every batch, and sqlx kept up to 100 of them per connection.
pub fn shaped_chunks<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    const { assert!(MAX_ROWS.is_power_of_two()) };
    let max = MAX_ROWS;
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = if rest.len() >= max {
            max
        } else {
            1 << rest.len().ilog2()
        };
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shaped_chunks_cover_every_item_in_order_with_power_of_two_lengths() {
        let lens = |n: usize| -> Vec<usize> {
            let items: Vec<usize> = (0..n).collect();
            let chunks: Vec<&[usize]> = shaped_chunks(&items).collect();
            assert_eq!(chunks.concat(), items);
            chunks.iter().map(|c| c.len()).collect()
        };
        assert_eq!(lens(0), Vec::<usize>::new());
        assert_eq!(lens(1), [1]);
        assert_eq!(lens(7), [4, 2, 1]);
        assert_eq!(MAX_ROWS, 256);
        assert_eq!(lens(256), [256]);
        assert_eq!(lens(600), [256, 256, 64, 16, 8]);
        assert!((1..2000).all(|n| {
            lens(n)
                .iter()
                .all(|l| l.is_power_of_two() && *l <= MAX_ROWS)
        }));
    }

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
