//! Creating databases, optionally from a template's schema via cached schema images.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::authorizer::Mode;
use crate::cache::{Inner, remove_if_exists, sidecar};
use crate::{DbLocation, Role, StorageError, conn};

/// Name of the image of an empty database.
const EMPTY_IMAGE: &str = "_empty.db";

/// What a template's schema is made of.
struct TemplateSchema {
    key: (i64, i64),
    ddl: Vec<(String, String)>,
}

impl Inner {
    /// Creates (or replaces) the database at `loc` with `template`'s schema.
    pub(crate) fn create(
        &self,
        loc: &DbLocation,
        template: Option<&DbLocation>,
    ) -> Result<i64, StorageError> {
        let (image, version) = match template {
            Some(t) => self.template_image(t)?,
            None => (self.empty_image()?, 0),
        };
        let target = self.path(loc);
        let dir = target
            .parent()
            .ok_or_else(|| StorageError::Internal("tenant path has no parent".into()))?;
        std::fs::create_dir_all(dir)?;
        // Redelivery: the database is not live yet, but a stale WAL next to
        // the new file would be replayed into it.
        self.evict(loc);
        remove_if_exists(&sidecar(&target, "-wal"))?;
        remove_if_exists(&sidecar(&target, "-shm"))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::copy(&mut File::open(&image)?, tmp.as_file_mut())?;
        tmp.as_file().sync_all()?;
        tmp.persist(&target)
            .map_err(|e| StorageError::Io(e.error))?;
        File::open(dir)?.sync_all()?;
        Ok(version)
    }

    /// The image of an empty WAL database, built once.
    fn empty_image(&self) -> Result<PathBuf, StorageError> {
        let path = self.images.join(EMPTY_IMAGE);
        let _guard = self.image_index.lock();
        if !path.exists() {
            self.build_image(
                &path,
                &TemplateSchema {
                    key: (0, 0),
                    ddl: Vec::new(),
                },
            )?;
        }
        Ok(path)
    }

    /// The image for the template's current schema, rebuilt when its DDL or user_version
    /// changed, with that user_version.
    fn template_image(&self, template: &DbLocation) -> Result<(PathBuf, i64), StorageError> {
        let schema = {
            let handle = self.handle(template)?;
            let conn = handle.blocking_lock();
            conn.trusted(read_schema)?
        };
        let mut index = self.image_index.lock();
        if let Some((key, path)) = index.get(template)
            && *key == schema.key
            && path.exists()
        {
            return Ok((path.clone(), key.1));
        }
        let dir = self.images.join(template.namespace_id());
        std::fs::create_dir_all(&dir)?;
        let (sv, uv) = schema.key;
        let path = dir.join(format!("{}.{sv}.{uv}.db", template.database_id()));
        self.build_image(&path, &schema)?;
        if let Some((_, old)) = index.insert(template.clone(), (schema.key, path.clone()))
            && old != path
        {
            remove_if_exists(&old)?;
        }
        Ok((path, schema.key.1))
    }

    /// Writes an empty WAL-mode database holding `schema` to `path`, atomically.
    fn build_image(&self, path: &Path, schema: &TemplateSchema) -> Result<(), StorageError> {
        let dir = path
            .parent()
            .ok_or_else(|| StorageError::Internal("image path has no parent".into()))?;
        let tmp = tempfile::NamedTempFile::new_in(dir)?;
        let conn = conn::open(tmp.path(), &self.cfg, true)?;
        // Replay as an admin tenant: the DDL came from a tenant database.
        conn.gate.lock().enter(Mode::Tenant(Role::Admin));
        for (name, sql) in &schema.ddl {
            let exists: bool = conn.db.query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = ?1)",
                [name],
                |r| r.get(0),
            )?;
            if exists {
                // Shadow table of a virtual table replayed earlier.
                continue;
            }
            conn.db.execute_batch(sql).map_err(|e| {
                let denial = conn.gate.lock().denial.take();
                denial.map_or_else(|| StorageError::from_tenant(e), |d| d.into_error())
            })?;
        }
        conn.trusted(|db| {
            db.execute_batch(&format!("PRAGMA user_version={}", schema.key.1))?;
            db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        })?;
        conn.db.close().map_err(|(_, e)| StorageError::from(e))?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| StorageError::Io(e.error))?;
        File::open(dir)?.sync_all()?;
        Ok(())
    }
}

/// Reads the template's schema version, user version and DDL in creation order.
fn read_schema(db: &rusqlite::Connection) -> rusqlite::Result<TemplateSchema> {
    let sv: i64 = db.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
    let uv: i64 = db.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let mut stmt = db.prepare(
        "SELECT name, sql FROM sqlite_master \
         WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
    )?;
    let ddl = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(TemplateSchema { key: (sv, uv), ddl })
}
