//! The OAuth app registry: apps registered by a workspace, public or confidential, with
//! their exact redirect URIs. Client secrets are stored as SHA-256 hashes only.

use persql_events::{ControlPlane, now_ms};
use rand::RngCore;
use sqlx::Row;

use super::redirect::RedirectUri;
use crate::tokens;

/// Whether the app can keep a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientType {
    /// A browser or mobile app: PKCE only, no secret.
    Public,
    /// A server: PKCE and a client secret.
    Confidential,
}

impl ClientType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Self::Public),
            "confidential" => Some(Self::Confidential),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Confidential => "confidential",
        }
    }
}

/// A registered app.
#[derive(Clone, Debug)]
pub struct OAuthApp {
    pub client_id: String,
    /// The developer's namespace: pays for the app's calls and its databases' storage.
    pub namespace_id: String,
    pub namespace_slug: String,
    pub name: String,
    pub client_type: ClientType,
    secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
}

impl OAuthApp {
    /// The registered redirect URI equal to `presented`, if any (exact match).
    pub fn redirect_uri(&self, presented: &str) -> Option<RedirectUri> {
        self.redirect_uris
            .iter()
            .find(|r| r.as_str() == presented)
            .and_then(|r| RedirectUri::parse(r).ok())
    }

    /// True when `presented` is this confidential app's secret (public apps have none).
    pub fn secret_matches(&self, presented: Option<&str>) -> bool {
        match (&self.secret_hash, presented) {
            (Some(h), Some(p)) => constant_time_eq(h.as_bytes(), tokens::hash(p).as_bytes()),
            _ => false,
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new app to store.
#[derive(Debug)]
pub struct NewApp<'a> {
    pub namespace_id: &'a str,
    pub name: &'a str,
    pub client_type: ClientType,
    pub redirect_uris: &'a [RedirectUri],
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Stores an app; returns its client id and, for confidential apps, the secret (shown once).
pub async fn register(
    cp: &ControlPlane,
    new: &NewApp<'_>,
) -> Result<(String, Option<String>), sqlx::Error> {
    let client_id = format!("psqlrp_{}", random_hex(12));
    let secret =
        (new.client_type == ClientType::Confidential).then(|| format!("psqlrs_{}", random_hex(24)));
    let uris: Vec<&str> = new.redirect_uris.iter().map(RedirectUri::as_str).collect();
    sqlx::query(
        "INSERT INTO oauth_apps (client_id, namespace_id, name, client_type, secret_hash, redirect_uris, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&client_id)
    .bind(new.namespace_id)
    .bind(new.name)
    .bind(new.client_type.as_str())
    .bind(secret.as_deref().map(tokens::hash))
    .bind(serde_json::to_string(&uris).unwrap_or_else(|_| "[]".into()))
    .bind(now_ms())
    .execute(cp.pool())
    .await?;
    Ok((client_id, secret))
}

/// The app `client_id`, if registered.
pub async fn find(cp: &ControlPlane, client_id: &str) -> Result<Option<OAuthApp>, sqlx::Error> {
    if !client_id.starts_with("psqlrp_") || client_id.len() > 64 {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT a.client_id, a.namespace_id, n.slug, a.name, a.client_type, a.secret_hash, a.redirect_uris \
         FROM oauth_apps a JOIN namespaces n ON n.id = a.namespace_id WHERE a.client_id = $1",
    )
    .bind(client_id)
    .fetch_optional(cp.pool())
    .await?;
    let Some(r) = row else { return Ok(None) };
    let ty: String = r.try_get(4)?;
    let uris: String = r.try_get(6)?;
    Ok(Some(OAuthApp {
        client_id: r.try_get(0)?,
        namespace_id: r.try_get(1)?,
        namespace_slug: r.try_get(2)?,
        name: r.try_get(3)?,
        client_type: ClientType::parse(&ty).unwrap_or(ClientType::Confidential),
        secret_hash: r.try_get(5)?,
        redirect_uris: serde_json::from_str(&uris).unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_by_hash() {
        let app = OAuthApp {
            client_id: "psqlrp_x".into(),
            namespace_id: "n".into(),
            namespace_slug: "acme".into(),
            name: "Notes".into(),
            client_type: ClientType::Confidential,
            secret_hash: Some(tokens::hash("psqlrs_right")),
            redirect_uris: vec!["https://a.example/cb".into()],
        };
        assert!(app.secret_matches(Some("psqlrs_right")));
        assert!(!app.secret_matches(Some("psqlrs_wrong")));
        assert!(!app.secret_matches(None));
        assert!(app.redirect_uri("https://a.example/cb").is_some());
        assert!(app.redirect_uri("https://a.example/cb/").is_none());
    }
}
