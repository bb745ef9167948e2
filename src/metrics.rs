//! The server's Prometheus metrics, one set per running server. Each layer reports plain
//! numbers through the methods here (a request's route and status, a commit's size and time, a
//! webhook attempt's outcome); only this module knows the `prometheus-client` crate. Numbers
//! that already exist elsewhere (the writer's queue, the data file's size, record counts) are
//! read when scraped and passed to [`Metrics::render`].

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, prometheus_text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::rate_limit::Tier;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The outcome labels of webhook attempts.
const WEBHOOK_OUTCOMES: [&str; 3] = ["delivered", "retryable_failure", "permanent_failure"];
/// The tier label of refused requests without a usable key.
pub const ANONYMOUS_TIER: &str = "anonymous";

/// The route label of a request that matched no route: raw paths never become labels.
pub const UNMATCHED_ROUTE: &str = "unmatched";
/// The route label of a request whose call failed as a whole (a panic, a framework error), which
/// takes the request and its matched route with it.
pub const UNKNOWN_ROUTE: &str = "unknown";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    /// The route's pattern (`/api/v1/projects/{project_id}`), never the raw path.
    route: String,
    /// `2xx`, `4xx`, …
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierLabels {
    tier: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// 0.1 ms to 10 s, in the 1-2.5-5 steps Prometheus' own clients use.
const SECONDS_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

fn seconds_histogram() -> Histogram {
    Histogram::new(SECONDS_BUCKETS)
}

fn batch_histogram() -> Histogram {
    // 1, 2, 4, … 512 jobs in one commit.
    Histogram::new(exponential_buckets(1.0, 2.0, 10))
}

/// What the store looks like when scraped.
#[derive(Debug, Default)]
pub struct StoreSnapshot {
    /// Jobs waiting for the writer thread (PostgreSQL: for a connection).
    pub queue_depth: u64,
    /// Bytes of the data file.
    pub file_bytes: u64,
    /// Records by kind: the project-owned kinds by their plural, and the org-owned ones.
    pub records: Vec<(&'static str, u64)>,
    /// The connection pool, where the store has one (PostgreSQL).
    pub pool: Option<PoolSnapshot>,
    /// Whether the store commits writes now.
    pub writable: bool,
    /// Commits that failed on storage since the start.
    pub failed_commits: u64,
    /// Attempts to reopen the store (or reconnect) after a failure since the start.
    pub reopen_attempts: u64,
}

/// A PostgreSQL store's connection pool and conflicts, as the store counts them.
#[derive(Debug, Default, Clone, Copy)]
pub struct PoolSnapshot {
    /// Connections the pool may open, and those open now.
    pub max_size: u64,
    pub size: u64,
    /// Time operations spent waiting for a connection, in total.
    pub wait_seconds: f64,
    /// Write operations run again after a serialization failure or a deadlock.
    pub serialization_retries: u64,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RequestLabels, Histogram, fn() -> Histogram>,
    writer_queue: Gauge,
    writer_batch: Histogram,
    writer_commit_seconds: Histogram,
    store_file_bytes: Gauge,
    store_records: Family<KindLabels, Gauge>,
    store_writable: Gauge,
    store_failed_commits: Counter,
    store_reopen_attempts: Counter,
    webhook_attempts: Family<OutcomeLabels, Counter>,
    rate_limited: Family<TierLabels, Counter>,
    audit_expired: Counter,
    pool_max_connections: Gauge,
    pool_connections: Gauge,
    pool_wait_seconds: Counter<f64, AtomicU64>,
    serialization_retries: Counter,
    /// Held while the counters above catch up with the store's: two scrapes at once must not
    /// both add the same difference.
    pool_sync: Mutex<()>,
    idempotent_replays: Counter,
    idempotency_conflicts: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("rogeriq"),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(seconds_histogram),
            writer_queue: Gauge::default(),
            writer_batch: batch_histogram(),
            writer_commit_seconds: seconds_histogram(),
            store_file_bytes: Gauge::default(),
            store_records: Family::default(),
            store_writable: Gauge::default(),
            store_failed_commits: Counter::default(),
            store_reopen_attempts: Counter::default(),
            webhook_attempts: Family::default(),
            rate_limited: Family::default(),
            audit_expired: Counter::default(),
            pool_max_connections: Gauge::default(),
            pool_connections: Gauge::default(),
            pool_wait_seconds: Counter::default(),
            serialization_retries: Counter::default(),
            pool_sync: Mutex::new(()),
            idempotent_replays: Counter::default(),
            idempotency_conflicts: Counter::default(),
        };
        // Every outcome and tier from the start, so that an alert on a rate sees zeros
        // rather than no series.
        for outcome in WEBHOOK_OUTCOMES {
            metrics
                .webhook_attempts
                .get_or_create_owned(&OutcomeLabels { outcome });
        }
        for tier in Tier::VALUES
            .iter()
            .map(|(name, _)| *name)
            .chain([ANONYMOUS_TIER])
        {
            metrics
                .rate_limited
                .get_or_create_owned(&TierLabels { tier });
        }
        let registry = &mut metrics.registry;
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route pattern and status class",
            metrics.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response, by method, route pattern and status class",
            metrics.request_seconds.clone(),
        );
        registry.register(
            "writer_queue_depth",
            "Write jobs waiting for the writer thread",
            metrics.writer_queue.clone(),
        );
        registry.register(
            "writer_batch_jobs",
            "Write jobs committed together in one durable commit",
            metrics.writer_batch.clone(),
        );
        registry.register(
            "writer_commit_duration_seconds",
            "Time of one durable commit of the writer",
            metrics.writer_commit_seconds.clone(),
        );
        registry.register(
            "store_file_bytes",
            "Size of the data file",
            metrics.store_file_bytes.clone(),
        );
        registry.register(
            "store_records",
            "Records in the store, by kind",
            metrics.store_records.clone(),
        );
        registry.register(
            "store_writable",
            "1 while the store commits writes, 0 while it cannot (a full or failing disk, free space below store.min_free_mb)",
            metrics.store_writable.clone(),
        );
        registry.register(
            "store_failed_commits",
            "Commits that failed on storage (their writes were answered 503)",
            metrics.store_failed_commits.clone(),
        );
        registry.register(
            "store_reopen_attempts",
            "Attempts to reopen the store after a storage failure",
            metrics.store_reopen_attempts.clone(),
        );
        registry.register(
            "webhook_attempts",
            "Webhook delivery attempts, by outcome: delivered, retryable failure, permanent failure",
            metrics.webhook_attempts.clone(),
        );
        registry.register(
            "rate_limited",
            "API requests refused by the rate limit (429), by the key's tier or anonymous",
            metrics.rate_limited.clone(),
        );
        registry.register(
            "audit_expired",
            "Audit entries deleted by the retention sweep",
            metrics.audit_expired.clone(),
        );
        registry.register(
            "store_pool_max_connections",
            "Connections this server may open to PostgreSQL (0 on redb)",
            metrics.pool_max_connections.clone(),
        );
        registry.register(
            "store_pool_connections",
            "Connections to PostgreSQL open now (0 on redb)",
            metrics.pool_connections.clone(),
        );
        registry.register(
            "store_pool_wait_seconds",
            "Time store operations waited for a PostgreSQL connection, in total",
            metrics.pool_wait_seconds.clone(),
        );
        registry.register(
            "store_serialization_retries",
            "PostgreSQL write transactions run again after a serialization failure or a deadlock",
            metrics.serialization_retries.clone(),
        );
        registry.register(
            "idempotent_replays",
            "Write requests answered with the stored response of an earlier one with the same Idempotency-Key",
            metrics.idempotent_replays.clone(),
        );
        registry.register(
            "idempotency_conflicts",
            "Write requests refused with 409 IDEMPOTENCY_CONFLICT: their Idempotency-Key was used for another request, or its first request was still in progress",
            metrics.idempotency_conflicts.clone(),
        );
        metrics
    }

    /// One answered request. `route` is the matched pattern, or [`UNMATCHED_ROUTE`].
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        let labels = RequestLabels {
            method: method_label(method),
            route: route.to_string(),
            status: status_class(status),
        };
        self.requests.get_or_create(&labels).inc();
        self.request_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// One durable commit of the writer: how many write jobs it held and how long it took.
    pub fn commit(&self, jobs: usize, took: Duration) {
        self.writer_batch.observe(jobs as f64);
        self.writer_commit_seconds.observe(took.as_secs_f64());
    }

    /// One webhook attempt: `delivered`, `retryable_failure` or `permanent_failure`.
    pub fn webhook_attempt(&self, outcome: &'static str) {
        self.webhook_attempts
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// One request refused by the rate limit.
    pub fn rate_limited(&self, tier: &'static str) {
        self.rate_limited.get_or_create(&TierLabels { tier }).inc();
    }

    /// Audit entries the retention sweep deleted.
    pub fn audit_expired(&self, entries: u64) {
        self.audit_expired.inc_by(entries);
    }

    /// A write request answered from an idempotency record.
    pub fn idempotent_replay(&self) {
        self.idempotent_replays.inc();
    }

    /// A write request refused with 409 `IDEMPOTENCY_CONFLICT`.
    pub fn idempotency_conflict(&self) {
        self.idempotency_conflicts.inc();
    }

    /// The metrics in Prometheus' text format, with the store as `store` says it is now.
    pub fn render(&self, store: &StoreSnapshot) -> String {
        self.writer_queue.set(gauge_value(store.queue_depth));
        self.store_file_bytes.set(gauge_value(store.file_bytes));
        self.store_writable.set(i64::from(store.writable));
        // The store keeps the totals; the counters follow them.
        for (counter, total) in [
            (&self.store_failed_commits, store.failed_commits),
            (&self.store_reopen_attempts, store.reopen_attempts),
        ] {
            counter.inc_by(total.saturating_sub(counter.get()));
        }
        for (kind, count) in &store.records {
            self.store_records
                .get_or_create(&KindLabels { kind })
                .set(gauge_value(*count));
        }
        if let Some(pool) = &store.pool {
            self.pool_max_connections.set(gauge_value(pool.max_size));
            self.pool_connections.set(gauge_value(pool.size));
            // The store counts these itself; the counters catch up with it.
            let _turn = self.pool_sync.lock();
            let waited = pool.wait_seconds - self.pool_wait_seconds.get();
            if waited > 0.0 {
                self.pool_wait_seconds.inc_by(waited);
            }
            let retries = pool
                .serialization_retries
                .saturating_sub(self.serialization_retries.get());
            self.serialization_retries.inc_by(retries);
        }
        let mut text = String::new();
        // Writing to a `String` cannot fail.
        let _ = prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Methods a client invents would make new label values without end; they count as `other`.
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded_and_rendered() {
        let metrics = Metrics::new();
        metrics.request("BREW", "/api/v1/projects/{project_id}", 404, Duration::ZERO);
        metrics.request("GET", UNMATCHED_ROUTE, 418, Duration::from_millis(3));
        metrics.rate_limited("starter");
        let text = metrics.render(&StoreSnapshot {
            queue_depth: 2,
            file_bytes: 4096,
            records: vec![("conversations", 7)],
            pool: Some(PoolSnapshot {
                max_size: 16,
                size: 3,
                wait_seconds: 0.5,
                serialization_retries: 4,
            }),
            writable: false,
            failed_commits: 3,
            reopen_attempts: 2,
        });
        assert!(text.contains(
            "rogeriq_http_requests_total{method=\"other\",route=\"/api/v1/projects/{project_id}\",status=\"4xx\"} 1\n"
        ), "{text}");
        assert!(text.contains("route=\"unmatched\""), "{text}");
        assert!(text.contains("rogeriq_writer_queue_depth 2\n"), "{text}");
        assert!(text.contains("rogeriq_store_file_bytes 4096\n"), "{text}");
        assert!(
            text.contains("rogeriq_store_records{kind=\"conversations\"} 7\n"),
            "{text}"
        );
        assert!(
            text.contains("rogeriq_rate_limited_total{tier=\"starter\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("rogeriq_store_pool_max_connections 16\n"),
            "{text}"
        );
        assert!(
            text.contains("rogeriq_store_pool_connections 3\n"),
            "{text}"
        );
        assert!(
            text.contains("rogeriq_store_pool_wait_seconds_total 0.5\n"),
            "{text}"
        );
        assert!(
            text.contains("rogeriq_store_serialization_retries_total 4\n"),
            "{text}"
        );
        assert!(text.contains("rogeriq_store_writable 0\n"), "{text}");
        assert!(
            text.contains("rogeriq_store_failed_commits_total 3\n"),
            "{text}"
        );
        assert!(
            text.contains("rogeriq_store_reopen_attempts_total 2\n"),
            "{text}"
        );
    }
}
