//! Compact in-memory store of many provisioned databases (slug + token: 36 bytes each).

use anyhow::{Context, ensure};

const SLUG_PREFIX: &str = "u_";
const TOKEN_PREFIX: &str = "psql_live_";
const SLUG_BYTES: usize = 12;
const TOKEN_BYTES: usize = 24;

/// The per-user databases of one namespace, each kept as the raw bytes behind its
/// `u_<24 hex>` slug and `psql_live_<48 hex>` token (36 bytes, versus ~100 as strings).
#[derive(Debug, Default)]
pub struct Fleet {
    namespace: String,
    entries: Vec<[u8; SLUG_BYTES + TOKEN_BYTES]>,
}

impl Fleet {
    /// An empty fleet in `namespace`, with room for `capacity` databases.
    pub fn with_capacity(namespace: String, capacity: usize) -> Self {
        Self {
            namespace,
            entries: Vec::with_capacity(capacity),
        }
    }

    /// Adds a database; fails if the slug or token is not in the per-user format.
    pub fn push(&mut self, slug: &str, token: &str) -> anyhow::Result<()> {
        let mut entry = [0u8; SLUG_BYTES + TOKEN_BYTES];
        let s = slug
            .strip_prefix(SLUG_PREFIX)
            .with_context(|| format!("unexpected per-user slug {slug}"))?;
        let t = token
            .strip_prefix(TOKEN_PREFIX)
            .context("unexpected token format")?;
        ensure!(s.len() == 2 * SLUG_BYTES && t.len() == 2 * TOKEN_BYTES);
        hex::decode_to_slice(s, &mut entry[..SLUG_BYTES])?;
        hex::decode_to_slice(t, &mut entry[SLUG_BYTES..])?;
        self.entries.push(entry);
        Ok(())
    }

    /// Number of databases.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Query URL under `base` and `authorization` header value of database `i`.
    pub fn query_target(&self, base: &str, i: usize) -> (String, String) {
        let e = &self.entries[i];
        let url = format!(
            "{base}/v1/databases/{}/{SLUG_PREFIX}{}/query",
            self.namespace,
            hex::encode(&e[..SLUG_BYTES])
        );
        let auth = format!("Bearer {TOKEN_PREFIX}{}", hex::encode(&e[SLUG_BYTES..]));
        (url, auth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_to_the_original_slug_and_token() {
        let slug = "u_0123456789abcdef01234567";
        let token = format!("psql_live_{}", "ab".repeat(24));
        let mut fleet = Fleet::with_capacity("acme".into(), 1);
        fleet.push(slug, &token).unwrap();
        let (url, auth) = fleet.query_target("http://h", 0);
        assert_eq!(url, format!("http://h/v1/databases/acme/{slug}/query"));
        assert_eq!(auth, format!("Bearer {token}"));
    }

    #[test]
    fn rejects_chosen_slugs_and_other_tokens() {
        let mut fleet = Fleet::default();
        assert!(fleet.push("notes", "psql_live_00").is_err());
        assert!(
            fleet
                .push("u_0123456789abcdef01234567", "psql_ws_00")
                .is_err()
        );
    }
}
