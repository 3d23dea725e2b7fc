//! Retention: finished jobs, the event ids that point at them, and sent notifications are
//! bookkeeping; without pruning they grow with every push forever. Verdicts, reports, SBOMs and
//! tags are never pruned here: they are what the store is for.

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
}
