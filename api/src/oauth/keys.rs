//! The ID-token signing key: ES256 (P-256), generated on first start and kept in the
//! control plane so every API process signs with the same key; published at `/oauth/jwks`.

use jsonwebtoken::{
    Algorithm, EncodingKey, Header,
    jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse},
};
use p256::pkcs8::EncodePrivateKey;
use persql_events::{ControlPlane, now_ms};
use rand::RngCore;
use serde::Serialize;
use sqlx::Row;

/// Failures loading or using the key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("signing key: {0}")]
    Key(String),
    #[error("signing: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
}

/// The key that signs ID tokens, with its public half as a JWK.
pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish()
    }
}

/// A fresh P-256 private key as PKCS#8 DER.
fn generate() -> Result<Vec<u8>, KeyError> {
    loop {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        // Out-of-range scalars (zero or ≥ the group order) are astronomically rare: redraw.
        if let Ok(key) = p256::SecretKey::from_slice(&bytes) {
            let der = key
                .to_pkcs8_der()
                .map_err(|e| KeyError::Key(e.to_string()))?;
            return Ok(der.as_bytes().to_vec());
        }
    }
}

impl SigningKey {
    /// The stored key, creating it on the very first start (race-free across processes).
    pub async fn load_or_create(cp: &ControlPlane) -> Result<Self, KeyError> {
        let der = generate()?;
        let kid = uuid::Uuid::now_v7().simple().to_string();
        sqlx::query(
            "INSERT INTO oauth_signing_keys (slot, kid, alg, private_der, created_at) \
             VALUES ('current', $1, 'ES256', $2, $3) ON CONFLICT (slot) DO NOTHING",
        )
        .bind(&kid)
        .bind(hex::encode(&der))
        .bind(now_ms())
        .execute(cp.pool())
        .await?;
        let row =
            sqlx::query("SELECT kid, private_der FROM oauth_signing_keys WHERE slot = 'current'")
                .fetch_one(cp.pool())
                .await?;
        let kid: String = row.try_get(0)?;
        let der =
            hex::decode(row.try_get::<String, _>(1)?).map_err(|e| KeyError::Key(e.to_string()))?;
        Self::from_der(kid, &der)
    }

    fn from_der(kid: String, der: &[u8]) -> Result<Self, KeyError> {
        let encoding = EncodingKey::from_ec_der(der);
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256)?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
        Ok(Self { kid, encoding, jwk })
    }

    /// The public keys, as `/oauth/jwks` serves them.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.jwk.clone()],
        }
    }

    /// `claims` as a compact JWS (ES256, with this key's `kid`).
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;

    #[derive(Serialize, serde::Deserialize)]
    struct Claims {
        sub: String,
        aud: String,
        exp: i64,
    }

    #[test]
    fn signed_tokens_verify_against_the_published_jwk() {
        let key = SigningKey::from_der("k1".into(), &generate().unwrap()).unwrap();
        let jwt = key
            .sign(&Claims {
                sub: "acct".into(),
                aud: "psqlrp_x".into(),
                exp: 4_000_000_000,
            })
            .unwrap();
        let jwks = key.jwks();
        let jwk = jwks.find("k1").expect("kid published");
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&["psqlrp_x"]);
        let data =
            jsonwebtoken::decode::<Claims>(&jwt, &DecodingKey::from_jwk(jwk).unwrap(), &v).unwrap();
        assert_eq!(data.claims.sub, "acct");
        assert_eq!(data.header.kid.as_deref(), Some("k1"));
        let json = serde_json::to_value(&jwks).unwrap();
        assert!(
            json["keys"][0].get("d").is_none(),
            "no private part: {json}"
        );
    }
}
