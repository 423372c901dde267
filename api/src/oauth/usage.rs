//! `last_used_at` of grants, written at most once a minute per grant per process, so app
//! queries do not each cost a control-plane write.

use std::{sync::Arc, time::Duration};

use moka::sync::Cache;
use persql_events::{ControlPlane, now_ms};

/// Debounced "this grant's token was just used".
#[derive(Clone)]
pub struct GrantUsage {
    cp: ControlPlane,
    recent: Arc<Cache<String, ()>>,
}

impl GrantUsage {
    pub fn new(cp: ControlPlane) -> Self {
        Self {
            cp,
            recent: Arc::new(
                Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(Duration::from_secs(60))
                    .build(),
            ),
        }
    }

    /// Records a use of grant `id` (in the background; failures are only logged).
    pub fn touch(&self, id: &str) {
        if self.recent.contains_key(id) {
            return;
        }
        self.recent.insert(id.to_owned(), ());
        let (cp, id) = (self.cp.clone(), id.to_owned());
        tokio::spawn(async move {
            let r = sqlx::query("UPDATE oauth_grants SET last_used_at = $1 WHERE id = $2")
                .bind(now_ms())
                .bind(&id)
                .execute(cp.pool())
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, grant = %id, "recording grant use failed");
            }
        });
    }
}
