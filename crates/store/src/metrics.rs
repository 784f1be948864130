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
    pub active_series: Gauge,
    pub append_seconds: Histogram,
    pub commit_seconds: Histogram,
    pub commit_batch_requests: Histogram,
}

impl StoreMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self {
            samples_appended: Counter::default(),
            samples_rejected: Family::default(),
            active_series: Gauge::default(),
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
        r.register("active_series", "Series in the registry", m.active_series.clone());
        r.register(
            "append_duration_seconds",
            "Time from an append request's arrival to its durable acknowledgement",
            m.append_seconds.clone(),
        );
        r.register(
            "commit_duration_seconds",
            "Time to append and commit one group of requests",
            m.commit_seconds.clone(),
        );
        r.register(
            "commit_group_requests",
            "Append requests committed together in one transaction",
            m.commit_batch_requests.clone(),
        );
        m
    }
}
