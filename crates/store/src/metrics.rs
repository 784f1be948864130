//! The store's own metrics, exported through the binary's `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Why samples were not stored.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RejectReason {
    pub reason: &'static str,
}

#[derive(Clone)]
pub(crate) struct StoreMetrics {
    pub samples_appended: Counter,
    pub samples_rejected: Family<RejectReason, Counter>,
    pub series: Gauge,
    pub head_series: Gauge,
    pub head_chunks: Gauge,
    pub head_samples: Gauge,
    pub head_bytes: Gauge,
    pub series_limit_refusals: Counter,
    pub blocks_flushed: Counter,
    pub append_seconds: Histogram,
    pub commit_seconds: Histogram,
    pub commit_batch_requests: Histogram,
}

impl StoreMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self {
            samples_appended: Counter::default(),
            samples_rejected: Family::default(),
            series: Gauge::default(),
            head_series: Gauge::default(),
            head_chunks: Gauge::default(),
            head_samples: Gauge::default(),
            head_bytes: Gauge::default(),
            series_limit_refusals: Counter::default(),
            blocks_flushed: Counter::default(),
            append_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            commit_batch_requests: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
        };
        let r = registry.sub_registry_with_prefix("sextant_store");
        r.register("samples_appended", "Samples durably stored", m.samples_appended.clone());
        r.register(
            "samples_rejected",
            "Samples not stored, by reason (out_of_order, duplicate_conflict, too_old)",
            m.samples_rejected.clone(),
        );
        r.register("series", "Series in the registry (head and blocks)", m.series.clone());
        r.register(
            "head_active_series",
            "Series with samples in the in-memory head (what storage.max_head_series limits)",
            m.head_series.clone(),
        );
        r.register("head_chunks", "Chunks in the in-memory head", m.head_chunks.clone());
        r.register("head_samples", "Samples in the in-memory head", m.head_samples.clone());
        r.register(
            "head_chunk_bytes",
            "Bytes the head's chunks hold (encoded samples and per-chunk state)",
            m.head_bytes.clone(),
        );
        r.register(
            "series_limit_refusals",
            "Append requests refused because they would exceed the head's series limit",
            m.series_limit_refusals.clone(),
        );
        r.register(
            "blocks_flushed",
            "Head blocks written to DuckDB",
            m.blocks_flushed.clone(),
        );
        r.register(
            "append_duration_seconds",
            "Time from an append request's arrival to its durable acknowledgement",
            m.append_seconds.clone(),
        );
        r.register(
            "commit_duration_seconds",
            "Time to decide, log and fdatasync one group of requests",
            m.commit_seconds.clone(),
        );
        r.register(
            "commit_group_requests",
            "Append requests committed together in one write-ahead log record",
            m.commit_batch_requests.clone(),
        );
        m
    }

    /// Copies the head's counters into the gauges.
    pub fn observe_head(&self, head: &crate::head::Head) {
        use std::sync::atomic::Ordering::Relaxed;
        self.head_series.set(head.active_series.load(Relaxed));
        self.head_chunks.set(head.chunks.load(Relaxed));
        self.head_samples.set(head.samples.load(Relaxed));
        self.head_bytes.set(head.chunk_bytes.load(Relaxed));
    }
}
