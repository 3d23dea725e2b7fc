//! Retention: finished jobs, the event ids that point at them, and sent notifications are
//! bookkeeping; without pruning they grow with every push forever ([`Store::prune`]). Reports,
//! verdicts, SBOMs and tags are what the store is for, so they have a retention of their own
//! ([`Store::prune_results`]): an image nobody pushed, scanned or judged for that long.

use std::time::Duration;

use crate::db::{Dialect, Store, ms, now_ms, with_pool};
use crate::error::{StoreError, query};

/// What [`Store::prune`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub events: u64,
    pub jobs: u64,
    pub notifications: u64,
}

/// What [`Store::prune_results`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrunedResults {
    /// Images whose report (with its verdicts and scopes) was deleted.
    pub reports: u64,
    pub sboms: u64,
    pub tags: u64,
}

impl Store {
    /// Deletes what finished longer than `older_than` ago: done and failed jobs, event ids
    /// received before then (a redelivery after that is absorbed by the stored verdict
    /// instead), delivered and failed notifications. Queued and running work is never touched.
    pub async fn prune(&self, older_than: Duration) -> Result<Pruned, StoreError> {
        let _turn = self.write_turn().await;
        const WHAT: &str = "prune";
        let before = now_ms().saturating_sub(ms(older_than));
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(query(WHAT))?;
            let events = sqlx::query("DELETE FROM events WHERE received_at < $1")
                .bind(before)
                .execute(&mut *tx)
                .await
                .map_err(query(WHAT))?
                .rows_affected();
            // Jobs still named by a younger event stay until that event goes.
            let jobs = sqlx::query(
                "DELETE FROM jobs WHERE status IN ('done', 'failed') AND updated_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM events WHERE events.job_id = jobs.id)",
            )
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(query(WHAT))?
            .rows_affected();
            let notifications = sqlx::query(
                "DELETE FROM notifications WHERE status IN ('delivered', 'failed') AND updated_at < $1",
            )
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(query(WHAT))?
            .rows_affected();
            tx.commit().await.map_err(query(WHAT))?;
            Ok(Pruned { events, jobs, notifications })
        })
    }

    /// Deletes images not seen for `older_than`: no scan, no verdict computed and no tag
    /// sighting since then, and no scan queued or running. Their verdicts and scopes go with
    /// the report; their SBOMs and tags too. An image asked for again is scanned again.
    pub async fn prune_results(&self, older_than: Duration) -> Result<PrunedResults, StoreError> {
        let _turn = self.write_turn().await;
        const WHAT: &str = "prune results";
        let before = now_ms().saturating_sub(ms(older_than));
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(query(WHAT))?;
            let reports = sqlx::query(
                "DELETE FROM reports WHERE updated_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM verdicts v \
                     WHERE v.manifest_digest = reports.manifest_digest AND v.updated_at >= $1) \
                 AND NOT EXISTS (SELECT 1 FROM image_tags t \
                     WHERE t.manifest_digest = reports.manifest_digest AND t.last_seen >= $1) \
                 AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.digest = reports.manifest_digest \
                     AND j.status IN ('queued', 'running'))",
            )
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(query(WHAT))?
            .rows_affected();
            let sboms = sqlx::query(
                "DELETE FROM sboms WHERE updated_at < $1 AND NOT EXISTS \
                 (SELECT 1 FROM reports r WHERE r.manifest_digest = sboms.manifest_digest)",
            )
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(query(WHAT))?
            .rows_affected();
            let tags = sqlx::query(
                "DELETE FROM image_tags WHERE last_seen < $1 AND NOT EXISTS \
                 (SELECT 1 FROM reports r WHERE r.manifest_digest = image_tags.manifest_digest)",
            )
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(query(WHAT))?
            .rows_affected();
            // The history of a base tag matters while an image built on it is stored.
            for sql in [
                "DELETE FROM base_tags WHERE NOT EXISTS \
                 (SELECT 1 FROM reports r WHERE r.base_reference = base_tags.reference)",
                "DELETE FROM base_checks WHERE NOT EXISTS \
                 (SELECT 1 FROM reports r WHERE r.base_reference = base_checks.reference)",
            ] {
                sqlx::query(sql)
                    .execute(&mut *tx)
                    .await
                    .map_err(query(WHAT))?;
            }
            tx.commit().await.map_err(query(WHAT))?;
            Ok(PrunedResults { reports, sboms, tags })
        })
    }
}
