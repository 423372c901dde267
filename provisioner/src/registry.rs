//! The database registry: which databases exist, in which namespace, from which template,
//! and whether they are ready. Registering a database appends its provision request to the
//! outbox in the same transaction.

use persql_events::{ControlPlane, Envelope, ProvisionRequested, StoreError, Tx, now_ms, outbox};
use sha2::{Digest, Sha256};
use sqlx::{Row, any::AnyRow};

/// Lifecycle of a registered database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatabaseState {
    /// Registered; the provisioner has not created the file yet.
    Pending,
    /// The file exists with its template's schema: query-ready.
    Ready,
    /// The provisioner gave up (e.g. the template vanished); see `error`.
    Failed,
}

impl DatabaseState {
    fn parse(s: &str) -> Self {
        match s {
            "ready" => Self::Ready,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// A registry row.
#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseRecord {
    pub id: String,
    pub namespace_id: String,
    pub slug: String,
    pub template_id: Option<String>,
    /// The template's slug, when there is one.
    pub template_slug: Option<String>,
    pub state: DatabaseState,
    pub error: Option<String>,
    pub created_at: i64,
}

/// Registry failures.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("template not found")]
    TemplateNotFound,
    #[error("database not found")]
    NotFound,
}

impl From<sqlx::Error> for RegistryError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::Db(e))
    }
}

/// The slug of a user's database: a stable hash of (namespace, subject). `u_` + 24 hex
/// digits (96 bits); user-chosen slugs cannot contain `_`, so the two never collide.
pub fn subject_slug(namespace_id: &str, subject: &str) -> String {
    let mut h = Sha256::new();
    h.update(namespace_id.as_bytes());
    h.update([0]);
    h.update(subject.as_bytes());
    format!("u_{}", &hex::encode(h.finalize())[..24])
}

const SELECT: &str = "SELECT d.id, d.namespace_id, d.slug, d.template_id, t.slug, d.state, d.error, d.created_at \
     FROM databases d LEFT JOIN databases t ON t.id = d.template_id";

fn record(r: &AnyRow) -> Result<DatabaseRecord, sqlx::Error> {
    Ok(DatabaseRecord {
        id: r.try_get(0)?,
        namespace_id: r.try_get(1)?,
        slug: r.try_get(2)?,
        template_id: r.try_get(3)?,
        template_slug: r.try_get(4)?,
        state: DatabaseState::parse(&r.try_get::<String, _>(5)?),
        error: r.try_get(6)?,
        created_at: r.try_get(7)?,
    })
}

/// Registry queries over the control plane.
#[derive(Clone)]
pub struct Registry {
    cp: ControlPlane,
}

/// A request to register (and so provision) a database.
#[derive(Clone, Debug)]
pub struct NewDatabase<'a> {
    pub namespace_id: &'a str,
    pub namespace_slug: &'a str,
    pub slug: &'a str,
    pub template_slug: Option<&'a str>,
    pub subject_hash: Option<String>,
    pub billed_namespace_id: &'a str,
}

impl Registry {
    /// A registry over `cp`.
    pub fn new(cp: ControlPlane) -> Self {
        Self { cp }
    }

    /// The database `slug` of namespace `namespace_id`.
    pub async fn find(
        &self,
        namespace_id: &str,
        slug: &str,
    ) -> Result<Option<DatabaseRecord>, RegistryError> {
        let q = format!("{SELECT} WHERE d.namespace_id = $1 AND d.slug = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(q))
            .bind(namespace_id)
            .bind(slug)
            .fetch_optional(self.cp.pool())
            .await?;
        Ok(row.as_ref().map(record).transpose()?)
    }

    /// The database with id `id`.
    pub async fn get(&self, id: &str) -> Result<Option<DatabaseRecord>, RegistryError> {
        get_in(self.cp.pool(), id).await
    }

    /// Up to `limit` databases of a namespace with slugs after `after`, in slug order.
    pub async fn list(
        &self,
        namespace_id: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<DatabaseRecord>, RegistryError> {
        let q =
            format!("{SELECT} WHERE d.namespace_id = $1 AND d.slug > $2 ORDER BY d.slug LIMIT $3");
        let rows = sqlx::query(sqlx::AssertSqlSafe(q))
            .bind(namespace_id)
            .bind(after)
            .bind(limit)
            .fetch_all(self.cp.pool())
            .await?;
        Ok(rows.iter().map(record).collect::<Result<_, _>>()?)
    }

    /// Registers a database and appends its `database.provision_requested` event, in one
    /// transaction. Concurrent calls for one slug register one database: the loser gets
    /// the winner's row and `false`.
    pub async fn register(
        &self,
        new: NewDatabase<'_>,
        source: &str,
    ) -> Result<(DatabaseRecord, bool), RegistryError> {
        let template_id = match new.template_slug {
            Some(t) => match self.find(new.namespace_id, t).await? {
                Some(rec) if rec.state == DatabaseState::Ready => Some(rec.id),
                _ => return Err(RegistryError::TemplateNotFound),
            },
            None => None,
        };
        let id = uuid::Uuid::now_v7().simple().to_string();
        let mut tx = self.cp.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO databases (id, namespace_id, slug, template_id, subject_hash, state, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'pending', $6) ON CONFLICT (namespace_id, slug) DO NOTHING",
        )
        .bind(&id)
        .bind(new.namespace_id)
        .bind(new.slug)
        .bind(template_id.clone())
        .bind(new.subject_hash.clone())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            let event = Envelope::new(
                source,
                new.namespace_slug,
                &format!("databases/{id}"),
                &ProvisionRequested {
                    database_id: id.clone(),
                    namespace_id: new.namespace_id.to_owned(),
                    slug: new.slug.to_owned(),
                    template_id,
                    subject_hash: new.subject_hash,
                    billed_namespace_id: new.billed_namespace_id.to_owned(),
                },
            );
            outbox::append(&mut tx, self.cp.backend(), &[event]).await?;
        }
        let q = format!("{SELECT} WHERE d.namespace_id = $1 AND d.slug = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(q))
            .bind(new.namespace_id)
            .bind(new.slug)
            .fetch_one(&mut *tx)
            .await?;
        let rec = record(&row)?;
        self.cp.commit(tx).await?;
        Ok((rec, inserted))
    }

    /// Forgets a database whose provisioning failed (it was never reachable, so it has no
    /// tokens and no data), so its slug can be provisioned again.
    pub async fn forget_failed(&self, id: &str) -> Result<(), RegistryError> {
        let mut tx = self.cp.begin().await?;
        let failed = sqlx::query("SELECT 1 FROM databases WHERE id = $1 AND state = 'failed'")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if failed {
            // Defensive: a failed database was never handed out, so this finds nothing.
            sqlx::query("DELETE FROM tokens WHERE database_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM databases WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes a database from the registry together with its tokens; the caller removes
    /// the file after this commits and appends `database.deleted` in `tx`.
    pub async fn delete_in(tx: &mut Tx, id: &str) -> Result<Vec<String>, RegistryError> {
        let tokens: Vec<String> = sqlx::query("SELECT id FROM tokens WHERE database_id = $1")
            .bind(id)
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?;
        sqlx::query("DELETE FROM tokens WHERE database_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        for q in [
            "DELETE FROM template_migrations WHERE template_id = $1",
            "DELETE FROM migration_failures WHERE database_id = $1 OR template_id = $1",
        ] {
            sqlx::query(q).bind(id).execute(&mut **tx).await?;
        }
        sqlx::query("UPDATE databases SET template_id = NULL WHERE template_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        sqlx::query("DELETE FROM databases WHERE id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(tokens)
    }
}

pub(crate) async fn get_in<'e, E>(
    exec: E,
    id: &str,
) -> Result<Option<DatabaseRecord>, RegistryError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let q = format!("{SELECT} WHERE d.id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(id)
        .fetch_optional(exec)
        .await?;
    Ok(row.as_ref().map(record).transpose()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_slug_is_stable_and_namespaced() {
        let a = subject_slug("ns1", "user-1");
        assert_eq!(a, subject_slug("ns1", "user-1"));
        assert_ne!(a, subject_slug("ns2", "user-1"));
        assert_ne!(a, subject_slug("ns1", "user-2"));
        assert!(a.starts_with("u_") && a.len() == 26);
    }

    #[test]
    fn subject_slug_separates_namespace_and_subject() {
        assert_ne!(subject_slug("ab", "c"), subject_slug("a", "bc"));
    }
}
