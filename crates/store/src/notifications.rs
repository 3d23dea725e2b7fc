//! The notification outbox: messages about verdicts (chat, ticketing, …) delivered at least once.
//!
//! A notification is stored durably before anyone tries to send it, then leased to one sender at
//! a time like a job: a sender that dies loses its lease and another sends it again, and a failed
//! delivery is retried with the same backoff as a failed scan ([`RetryPolicy`]).

use std::time::Duration;

use sqlx::Row;

use crate::db::{Dialect, Store, ms, now_ms, with_pool};
use crate::error::{StoreError, query};
use crate::jobs::{FailOutcome, Leased, RetryPolicy, to_u32, to_u64};

/// A notification handed to a sender by [`Store::claim_notification`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub id: i64,
    /// The document to send, as [`Store::enqueue_notification`] received it.
    pub payload_json: String,
    /// How many times delivery has been tried, this one included (1 the first time).
    pub attempts: u32,
}

/// Number of notifications per status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NotificationCounts {
    /// Waiting to be sent (possibly until a backoff ends).
    pub queued: u64,
    /// Leased to a sender.
    pub delivering: u64,
    pub delivered: u64,
    /// Gave up after the last attempt.
    pub failed: u64,
}

/// Notifications are leased like jobs, with `delivering` for `running`.
const NOTIFICATIONS: Leased = Leased {
    finish: "UPDATE notifications SET status = 'delivered', lease_until = NULL, \
             updated_at = $1 WHERE id = $2 AND worker = $3 AND status = 'delivering'",
    attempts: "SELECT attempts FROM notifications \
               WHERE id = $1 AND worker = $2 AND status = 'delivering'",
    record_failure: "UPDATE notifications SET status = $1, not_before = $2, last_error = $3, \
         lease_until = NULL, updated_at = $4 \
         WHERE id = $5 AND worker = $6 AND attempts = $7 AND status = 'delivering'",
    attempts_column: "notifications.attempts",
    finishing: "mark notification delivered",
    failing: "fail notification",
};

impl Store {
    /// Stores a notification to send; returns its id.
    pub async fn enqueue_notification(&self, payload_json: &str) -> Result<i64, StoreError> {
        let _turn = self.write_turn().await;
        const WHAT: &str = "enqueue notification";
        let now = now_ms();
        with_pool!(self, pool => {
            sqlx::query_scalar(
                "INSERT INTO notifications (payload_json, status, attempts, not_before, \
                 created_at, updated_at) VALUES ($1, 'queued', 0, $2, $2, $2) RETURNING id",
            )
            .bind(payload_json)
            .bind(now)
            .fetch_one(pool)
            .await
            .map_err(query(WHAT))
        })
    }

    /// Atomically takes the oldest notification ready to send — queued and past its backoff, or
    /// being delivered by a sender whose lease expired — leases it to `worker` for `lease`, and
    /// counts the attempt. `None` when nothing is ready.
    pub async fn claim_notification(
        &self,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Notification>, StoreError> {
        let _turn = self.write_turn().await;
        const WHAT: &str = "claim notification";
        let now = now_ms();
        let lease_until = now.saturating_add(ms(lease));
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(query(WHAT))?;
            let row = sqlx::query(claim_sql(pool))
                .bind(worker)
                .bind(lease_until)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(query(WHAT))?;
            tx.commit().await.map_err(query(WHAT))?;
            let Some(row) = row else { return Ok(None) };
            let attempts: i64 = row.try_get("attempts").map_err(query(WHAT))?;
            Ok(Some(Notification {
                id: row.try_get("id").map_err(query(WHAT))?,
                payload_json: row.try_get("payload_json").map_err(query(WHAT))?,
                attempts: to_u32(attempts, "notifications.attempts")?,
            }))
        })
    }

    /// Marks the notification delivered.
    pub async fn notification_delivered(&self, id: i64, worker: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let affected = self.finish_leased(&NOTIFICATIONS, id, worker).await?;
        self.notification_held(affected, id, worker).await
    }

    /// Records a failed delivery: queued again after an exponential backoff, or `failed` with
    /// `error` once `retry.max_attempts` attempts have been made (as [`Store::fail`] for jobs).
    pub async fn notification_failed(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        retry: RetryPolicy,
    ) -> Result<FailOutcome, StoreError> {
        let _turn = self.write_turn().await;
        match self
            .fail_leased(&NOTIFICATIONS, id, worker, error, retry)
            .await?
        {
            Some((outcome, affected)) => self
                .notification_held(affected, id, worker)
                .await
                .map(|()| outcome),
            None => self
                .notification_held(0, id, worker)
                .await
                .map(|()| FailOutcome::Failed),
        }
    }

    /// Notifications per status (the `/metrics` gauges).
    pub async fn notification_counts(&self) -> Result<NotificationCounts, StoreError> {
        const WHAT: &str = "count notifications";
        let rows: Vec<(String, i64)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT status, COUNT(*) FROM notifications GROUP BY status")
                .fetch_all(pool)
                .await
                .map_err(query(WHAT))?
        });
        let mut counts = NotificationCounts::default();
        for (status, n) in rows {
            let n = to_u64(n);
            match status.as_str() {
                "queued" => counts.queued = n,
                "delivering" => counts.delivering = n,
                "delivered" => counts.delivered = n,
                "failed" => counts.failed = n,
                _ => {
                    return Err(StoreError::Corrupt {
                        column: "notifications.status",
                        value: status,
                    });
                }
            }
        }
        Ok(counts)
    }

    /// Ok when the update touched the notification; otherwise `NotificationLeaseLost` or
    /// `NotificationNotFound`.
    async fn notification_held(
        &self,
        affected: u64,
        id: i64,
        worker: &str,
    ) -> Result<(), StoreError> {
        const WHAT: &str = "read notification";
        if affected > 0 {
            return Ok(());
        }
        let exists: Option<i64> = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT id FROM notifications WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(query(WHAT))?
        });
        match exists {
            Some(_) => Err(StoreError::NotificationLeaseLost {
                notification: id,
                worker: worker.to_owned(),
            }),
            None => Err(StoreError::NotificationNotFound { notification: id }),
        }
    }
}

fn claim_sql<P: Dialect>(_: &P) -> &'static str {
    P::CLAIM_NOTIFICATION_SQL
}
