//! Each template's latest migration version, in memory: the query path compares a
//! database's known version with it (two atomic loads) instead of reading the control plane.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::RwLock;
use persql_events::{ControlPlane, StoreError};
use sqlx::Row;

/// Template id → latest recorded migration version. Loaded at start, raised by whoever
/// records a migration in this process and by `template.migration_added` events from others.
#[derive(Clone, Default)]
pub struct TemplateVersions {
    map: Arc<RwLock<HashMap<String, Arc<AtomicI64>>>>,
}

impl TemplateVersions {
    /// Every template's latest version from the control plane.
    pub async fn load(cp: &ControlPlane) -> Result<Self, StoreError> {
        let rows = sqlx::query(
            "SELECT template_id, MAX(version) FROM template_migrations GROUP BY template_id",
        )
        .fetch_all(cp.pool())
        .await?;
        let versions = Self::default();
        for r in rows {
            versions.raise(&r.try_get::<String, _>(0)?, r.try_get(1)?);
        }
        Ok(versions)
    }

    /// The shared cell holding the template's latest version (0 until it has migrations).
    /// Database entries keep it, so reading it needs no lookup.
    pub fn cell(&self, template_id: &str) -> Arc<AtomicI64> {
        if let Some(c) = self.map.read().get(template_id) {
            return c.clone();
        }
        self.map
            .write()
            .entry(template_id.to_owned())
            .or_default()
            .clone()
    }

    /// Records that the template has `version` (never lowers it).
    pub fn raise(&self, template_id: &str, version: i64) {
        self.cell(template_id).fetch_max(version, Ordering::AcqRel);
    }

    /// The template's latest known version.
    pub fn latest(&self, template_id: &str) -> i64 {
        self.cell(template_id).load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_only_rise_and_cells_are_shared() {
        let v = TemplateVersions::default();
        let cell = v.cell("t");
        assert_eq!(v.latest("t"), 0);
        v.raise("t", 3);
        v.raise("t", 2);
        assert_eq!(cell.load(Ordering::Acquire), 3);
        assert_eq!(v.latest("other"), 0);
    }
}
