//! Prometheus metrics of the service (served on the admin port as `/metrics`).
//!
//! Counters and histograms count what this process did; the job gauges are read from the store
//! at scrape time, so every replica reports the shared queue as it is.

use std::sync::atomic::{AtomicU64, Ordering};

use gantry_store::QueueCounts;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    source: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    decision: String,
}

/// What happened to one webhook event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventOutcome {
    /// A new job was stored.
    Accepted,
    /// Absorbed: the same event or digest was already queued or scanned.
    Deduplicated,
    /// Not a manifest push (blob push, pull, delete, …).
    Skipped,
    /// The body was refused (4xx).
    Rejected,
    /// The caller did not authenticate.
    Unauthorized,
    /// Refused for the caller's rate or a full queue (429).
    Limited,
}

impl EventOutcome {
    fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Accepted => "accepted",
            EventOutcome::Deduplicated => "deduplicated",
            EventOutcome::Skipped => "skipped",
            EventOutcome::Rejected => "rejected",
            EventOutcome::Unauthorized => "unauthorized",
            EventOutcome::Limited => "limited",
        }
    }
}

/// Every metric, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    events: Family<EventLabels, Counter>,
    jobs: Family<StatusLabels, Gauge>,
    scan_seconds: Family<OutcomeLabels, Histogram>,
    cache_lookups: Family<ResultLabels, Counter>,
    cache_ratio: Gauge<f64, AtomicU64>,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    verdicts: Family<DecisionLabels, Counter>,
    notifications: Family<OutcomeLabels, Counter>,
    admission: Family<DecisionLabels, Counter>,
    admission_seconds: Histogram,
    base_checks: Family<OutcomeLabels, Counter>,
    base_outdated: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every Gantry metric (counters get Prometheus' `_total` suffix).
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "gantry_webhook_events",
            "Registry webhook events received, by sender and outcome",
            events.clone(),
        );
        let jobs = Family::<StatusLabels, Gauge>::default();
        registry.register(
            "gantry_jobs",
            "Scan jobs in the store, by status",
            jobs.clone(),
        );
        // 50 ms to ~100 s: a warm cached scan up to a multi-gigabyte cold pull.
        let scan_seconds = Family::<OutcomeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.05, 2.0, 12))
        });
        registry.register(
            "gantry_scan_duration_seconds",
            "Time to scan and judge one image",
            scan_seconds.clone(),
        );
        let cache_lookups = Family::<ResultLabels, Counter>::default();
        registry.register(
            "gantry_layer_cache_lookups",
            "Layer-cache lookups during scans, by hit or miss",
            cache_lookups.clone(),
        );
        let cache_ratio = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "gantry_layer_cache_hit_ratio",
            "Layer-cache hits over lookups since start",
            cache_ratio.clone(),
        );
        let verdicts = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "gantry_verdicts",
            "Verdicts stored, by decision",
            verdicts.clone(),
        );
        let notifications = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "gantry_notifications",
            "Outbound verdict notifications, by outcome",
            notifications.clone(),
        );
        let admission = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "gantry_admission_requests",
            "Admission reviews answered, by decision (allow, deny, warn, exempt, error, invalid)",
            admission.clone(),
        );
        // 1 ms to ~30 s: a stored verdict is a few milliseconds; a scan on demand is bounded
        // by the API server's timeout.
        let admission_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "gantry_admission_duration_seconds",
            "Time to answer one admission review",
            admission_seconds.clone(),
        );
        let base_checks = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "gantry_base_checks",
            "Checks of the tag a stored image's base was built from, by outcome (resolved, failed)",
            base_checks.clone(),
        );
        let base_outdated = Gauge::default();
        registry.register(
            "gantry_images_base_outdated",
            "Stored images whose base tag now points elsewhere than the base they record (rebuild them)",
            base_outdated.clone(),
        );
        Metrics {
            registry,
            base_checks,
            base_outdated,
            events,
            jobs,
            scan_seconds,
            cache_lookups,
            cache_ratio,
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            verdicts,
            notifications,
            admission,
            admission_seconds,
        }
    }

    /// Counts one admission review and its duration.
    pub fn admission(&self, decision: &str, seconds: f64) {
        self.admission
            .get_or_create(&DecisionLabels {
                decision: decision.to_string(),
            })
            .inc();
        self.admission_seconds.observe(seconds);
    }

    /// Counts one webhook event.
    pub fn event(&self, source: &str, outcome: EventOutcome) {
        self.events
            .get_or_create(&EventLabels {
                source: source.to_string(),
                outcome: outcome.as_str().to_string(),
            })
            .inc();
    }

    /// Records one scan's duration.
    pub fn scan(&self, seconds: f64, ok: bool) {
        self.scan_seconds
            .get_or_create(&OutcomeLabels {
                outcome: if ok { "ok" } else { "error" }.to_string(),
            })
            .observe(seconds);
    }

    /// Counts the layer-cache lookups of one scan.
    pub fn cache(&self, hits: u64, misses: u64) {
        // `get_or_create` returns a read guard on the family: each is dropped at the end of
        // its statement, never held across another lookup (a waiting writer would deadlock).
        self.cache_lookups
            .get_or_create(&ResultLabels {
                result: "hit".to_string(),
            })
            .inc_by(hits);
        self.cache_lookups
            .get_or_create(&ResultLabels {
                result: "miss".to_string(),
            })
            .inc_by(misses);
        let h = self.cache_hits.fetch_add(hits, Ordering::Relaxed) + hits;
        let m = self.cache_misses.fetch_add(misses, Ordering::Relaxed) + misses;
        if h + m > 0 {
            self.cache_ratio.set(h as f64 / (h + m) as f64);
        }
    }

    /// Counts one stored verdict.
    pub fn verdict(&self, decision: &str) {
        self.verdicts
            .get_or_create(&DecisionLabels {
                decision: decision.to_string(),
            })
            .inc();
    }

    /// Counts one base-tag check (`resolved`, `failed`).
    pub fn base_check(&self, outcome: &str) {
        self.base_checks
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Sets how many stored images have an outdated base (read from the store at scrape
    /// time, like the job gauges).
    pub fn set_outdated_bases(&self, n: i64) {
        self.base_outdated.set(n);
    }

    /// Counts one notification attempt's outcome (`delivered`, `retry`, `failed`).
    pub fn notification(&self, outcome: &str) {
        self.notifications
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// The Prometheus text exposition, with the job gauges set from `counts`.
    pub fn render(&self, counts: Option<QueueCounts>) -> String {
        if let Some(c) = counts {
            for (status, n) in [
                ("queued", c.queued),
                ("running", c.running),
                ("done", c.done),
                ("failed", c.failed),
            ] {
                self.jobs
                    .get_or_create(&StatusLabels {
                        status: status.to_string(),
                    })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would leave a partial page,
        // which Prometheus rejects loudly rather than reading wrong numbers.
        if encode(&mut out, &self.registry).is_err() {
            tracing::error!("encoding metrics failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_its_labels() {
        let m = Metrics::new();
        m.event("distribution", EventOutcome::Accepted);
        m.event("distribution", EventOutcome::Skipped);
        m.scan(0.3, true);
        m.cache(3, 1);
        m.verdict("deny");
        m.notification("delivered");
        m.base_check("resolved");
        m.set_outdated_bases(2);
        let text = m.render(Some(QueueCounts {
            queued: 2,
            running: 1,
            failed: 0,
            done: 5,
        }));
        for want in [
            "gantry_webhook_events_total{source=\"distribution\",outcome=\"accepted\"} 1",
            "gantry_jobs{status=\"queued\"} 2",
            "gantry_jobs{status=\"done\"} 5",
            "gantry_scan_duration_seconds_count{outcome=\"ok\"} 1",
            "gantry_layer_cache_lookups_total{result=\"hit\"} 3",
            "gantry_layer_cache_hit_ratio 0.75",
            "gantry_verdicts_total{decision=\"deny\"} 1",
            "gantry_notifications_total{outcome=\"delivered\"} 1",
            "gantry_base_checks_total{outcome=\"resolved\"} 1",
            "gantry_images_base_outdated 2",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }
}
