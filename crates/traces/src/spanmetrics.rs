//! RED metrics and a service graph from stored spans, with the names, labels
//! and defaults of Tempo's metrics-generator (`spanmetrics` and
//! `servicegraphs` processors), so an SLO or a dashboard written for Tempo's
//! generated series works over Sextant's.
//!
//! Counters live in memory and are written to the metrics store by the server
//! on an interval; like the generator's, they start from zero when the process
//! starts, which `rate()` reads as a counter reset. Spans whose end is more than
//! `slack` away from now are not counted (the generator's ingestion slack), so a
//! backfill of old spans does not spike today's rates.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use sextant_model::Labels;

use crate::span::{Origin, SpanRow, TraceId, attr_value};

/// Settings of the span metrics.
#[derive(Debug, Clone)]
pub struct SpanMetricsOptions {
    /// Whether span metrics are produced.
    pub enabled: bool,
    /// Extra labels: attribute names looked up on the resource, then the span;
    /// label names are the attribute names with every character outside
    /// `[a-zA-Z0-9_]` replaced by `_`.
    pub dimensions: Vec<String>,
    /// `traces_spanmetrics_latency` buckets, seconds.
    pub latency_buckets: Vec<f64>,
    /// Service-graph histogram buckets, seconds.
    pub graph_buckets: Vec<f64>,
    /// How long half an edge waits for its other half.
    pub graph_wait: Duration,
    /// Edges waiting at most; new ones beyond are dropped.
    pub graph_max_items: usize,
    /// Spans ending further than this from now are not counted.
    pub slack: Duration,
    /// Series not updated for this long are no longer written.
    pub stale_after: Duration,
}

fn exponential(start: f64, factor: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| start * factor.powi(i as i32)).collect()
}

impl Default for SpanMetricsOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            dimensions: Vec::new(),
            latency_buckets: exponential(0.002, 2.0, 14),
            graph_buckets: exponential(0.1, 2.0, 8),
            graph_wait: Duration::from_secs(10),
            graph_max_items: 10_000,
            slack: Duration::from_secs(30),
            stale_after: Duration::from_secs(15 * 60),
        }
    }
}

/// A label set as a sorted list of pairs (names without `__name__`).
type Key = Vec<(String, String)>;

#[derive(Debug, Clone)]
struct Hist {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Debug)]
struct Series<T> {
    value: T,
    updated: Instant,
}

/// Half of a service-graph edge, waiting for the other.
#[derive(Debug, Clone, Default)]
struct Edge {
    client: Option<String>,
    server: Option<String>,
    client_seconds: f64,
    server_seconds: f64,
    failed: bool,
    messaging: bool,
    /// The server half is a root span (no parent).
    server_is_root: bool,
    peer: Option<String>,
    expires: Option<Instant>,
}

#[derive(Default)]
struct State {
    calls: HashMap<Key, Series<f64>>,
    size: HashMap<Key, Series<f64>>,
    latency: HashMap<Key, Series<Hist>>,
    graph_total: HashMap<Key, Series<f64>>,
    graph_failed: HashMap<Key, Series<f64>>,
    graph_server: HashMap<Key, Series<Hist>>,
    graph_client: HashMap<Key, Series<Hist>>,
    pending: HashMap<(TraceId, u64), Edge>,
    expired_edges: u64,
    dropped_edges: u64,
}

/// Span metrics and the service graph, updated as spans are stored.
pub struct SpanMetrics {
    opts: SpanMetricsOptions,
    dims: Vec<(String, String)>,
    state: Mutex<State>,
}

const INTRINSIC_LABELS: [&str; 5] = ["service", "span_name", "span_kind", "status_code", "status_message"];

/// Prometheus' `SanitizeLabelName`: every character outside `[a-zA-Z0-9_]`
/// becomes `_`.
pub fn sanitize_label_name(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect()
}

impl SpanMetrics {
    /// Span metrics with `opts`.
    pub fn new(opts: SpanMetricsOptions) -> Self {
        let dims = opts
            .dimensions
            .iter()
            .map(|d| {
                let mut name = sanitize_label_name(d);
                if INTRINSIC_LABELS.contains(&name.as_str()) {
                    name = format!("__{name}");
                }
                (d.clone(), name)
            })
            .collect();
        Self {
            opts,
            dims,
            state: Mutex::new(State::default()),
        }
    }

    /// Counts stored spans; `origins` are the resources and scopes they came with.
    pub fn observe(&self, origins: &[(i64, Origin)], rows: &[SpanRow]) {
        if !self.opts.enabled || rows.is_empty() {
            return;
        }
        let now_ns = crate::store::now_ns();
        let slack = self.opts.slack.as_nanos() as i64;
        let now = Instant::now();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for r in rows {
            let end = r.end_ns();
            if end < now_ns - slack || end > now_ns + slack {
                continue;
            }
            let origin = origins.iter().find(|(id, _)| *id == r.origin).map(|(_, o)| o);
            let resource_attr = |k: &str| {
                origin
                    .and_then(|o| o.resource.as_ref())
                    .and_then(|res| res.attributes.iter().find(|kv| kv.key == k))
                    .and_then(|kv| kv.value.as_ref())
                    .map(|v| attr_value(v).text)
            };
            let service = resource_attr("service.name");
            let mut key: Key = Vec::with_capacity(4 + self.dims.len());
            if let Some(s) = service.as_ref().filter(|s| !s.is_empty()) {
                key.push(("service".into(), s.clone()));
            }
            if !r.name.is_empty() {
                key.push(("span_name".into(), r.name.clone()));
            }
            // The generator's values are the proto enums' names.
            key.push((
                "span_kind".into(),
                SpanKind::try_from(r.kind as i32)
                    .unwrap_or(SpanKind::Unspecified)
                    .as_str_name()
                    .to_owned(),
            ));
            key.push((
                "status_code".into(),
                StatusCode::try_from(r.status as i32)
                    .unwrap_or(StatusCode::Unset)
                    .as_str_name()
                    .to_owned(),
            ));
            for (attr, label) in &self.dims {
                let v = resource_attr(attr).or_else(|| span_attr(r, attr));
                if let Some(v) = v.filter(|v| !v.is_empty()) {
                    key.retain(|(n, _)| n != label);
                    key.push((label.clone(), v));
                }
            }
            key.sort();
            let seconds = r.duration_ns as f64 / 1e9;
            bump(&mut st.calls, &key, 1.0, now);
            bump(&mut st.size, &key, r.detail.len() as f64, now);
            observe_hist(&mut st.latency, &key, &self.opts.latency_buckets, seconds, now);
            self.observe_edge(&mut st, r, service, seconds, now, &resource_attr);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn observe_edge(
        &self,
        st: &mut State,
        r: &SpanRow,
        service: Option<String>,
        seconds: f64,
        now: Instant,
        resource_attr: &dyn Fn(&str) -> Option<String>,
    ) {
        // Spans of unnamed services take no part in the graph, as in Tempo.
        let Some(service) = service.filter(|s| !s.is_empty()) else {
            return;
        };
        let failed = r.status == 2;
        match r.kind {
            // Client and producer: keyed by their own span id.
            3 | 4 => {
                let db = ["db.namespace", "db.name", "db.system", "db.system.name"]
                    .iter()
                    .find_map(|k| resource_attr(k).or_else(|| span_attr(r, k)));
                if r.kind == 3
                    && let Some(db) = db
                {
                    let server = ["peer.service", "server.address"]
                        .iter()
                        .find_map(|k| span_attr(r, k))
                        .or_else(|| {
                            span_attr(r, "network.peer.address").map(|a| match span_attr(r, "network.peer.port") {
                                Some(p) => format!("{a}:{p}"),
                                None => a,
                            })
                        })
                        .unwrap_or(db);
                    let e = Edge {
                        client: Some(service),
                        server: Some(server),
                        client_seconds: seconds,
                        server_seconds: seconds,
                        failed,
                        ..Default::default()
                    };
                    self.emit(st, &e, Some("database"), now);
                    return;
                }
                let peer = ["peer.service", "db.name", "db.system", "db.system.name"]
                    .iter()
                    .find_map(|k| span_attr(r, k));
                let key = (r.trace, r.span_id);
                self.upsert(st, key, now, |e| {
                    e.client = Some(service);
                    e.client_seconds = seconds;
                    e.failed |= failed;
                    e.messaging |= r.kind == 4;
                    e.peer = e.peer.take().or(peer);
                });
            }
            // Server and consumer: keyed by their parent's span id.
            2 | 5 => {
                let peer = ["peer.service", "db.name", "db.system", "db.system.name"]
                    .iter()
                    .find_map(|k| span_attr(r, k));
                let key = (r.trace, r.parent_id);
                let root = r.is_root();
                self.upsert(st, key, now, |e| {
                    e.server = Some(service);
                    e.server_seconds = seconds;
                    e.failed |= failed;
                    e.messaging |= r.kind == 5;
                    e.server_is_root = root;
                    e.peer = e.peer.take().or(peer);
                });
            }
            _ => {}
        }
    }

    fn upsert(&self, st: &mut State, key: (TraceId, u64), now: Instant, f: impl FnOnce(&mut Edge)) {
        if !st.pending.contains_key(&key) && st.pending.len() >= self.opts.graph_max_items {
            st.dropped_edges += 1;
            return;
        }
        let e = st.pending.entry(key).or_default();
        if e.expires.is_none() {
            e.expires = Some(now + self.opts.graph_wait);
        }
        f(e);
        if e.client.is_some() && e.server.is_some() {
            let e = st.pending.remove(&key).unwrap_or_default();
            let kind = e.messaging.then_some("messaging_system");
            self.emit(st, &e, kind, now);
        }
    }

    fn emit(&self, st: &mut State, e: &Edge, connection_type: Option<&str>, now: Instant) {
        let mut key: Key = vec![
            ("client".into(), e.client.clone().unwrap_or_default()),
            ("server".into(), e.server.clone().unwrap_or_default()),
        ];
        if let Some(c) = connection_type {
            key.push(("connection_type".into(), c.into()));
        }
        key.retain(|(_, v)| !v.is_empty());
        key.sort();
        bump(&mut st.graph_total, &key, 1.0, now);
        if e.failed {
            bump(&mut st.graph_failed, &key, 1.0, now);
        } else {
            // The series exists from the first request, as a counter should.
            st.graph_failed
                .entry(key.clone())
                .or_insert(Series {
                    value: 0.0,
                    updated: now,
                })
                .updated = now;
        }
        observe_hist(
            &mut st.graph_server,
            &key,
            &self.opts.graph_buckets,
            e.server_seconds,
            now,
        );
        observe_hist(
            &mut st.graph_client,
            &key,
            &self.opts.graph_buckets,
            e.client_seconds,
            now,
        );
    }

    /// Settles edges whose other half did not come within the wait: a root
    /// server span becomes an edge from its peer (or `user`), a client span with
    /// a peer attribute an edge to that peer (`virtual_node`); the rest expire.
    pub fn expire(&self) {
        let now = Instant::now();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let due: Vec<(TraceId, u64)> = st
            .pending
            .iter()
            .filter(|(_, e)| e.expires.is_some_and(|x| x <= now))
            .map(|(k, _)| *k)
            .collect();
        for k in due {
            let Some(mut e) = st.pending.remove(&k) else { continue };
            if e.server.is_some() && e.client.is_none() && e.server_is_root {
                e.client = Some(e.peer.clone().unwrap_or_else(|| "user".into()));
                self.emit(&mut st, &e, Some("virtual_node"), now);
            } else if e.client.is_some() && e.server.is_none() && e.peer.is_some() {
                e.server = e.peer.clone();
                self.emit(&mut st, &e, Some("virtual_node"), now);
            } else {
                st.expired_edges += 1;
            }
        }
    }

    /// Every series to write now, with its value: counters, and histograms as
    /// cumulative `_bucket{le}`, `_sum` and `_count`. Settles expired edges
    /// first and leaves out series idle longer than `stale_after`.
    pub fn snapshot(&self) -> Vec<(Labels, f64)> {
        self.expire();
        let now = Instant::now();
        let stale = self.opts.stale_after;
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        fn fresh<T>(m: &mut HashMap<Key, Series<T>>, now: Instant, stale: Duration) {
            m.retain(|_, s| now.duration_since(s.updated) < stale);
        }
        fresh(&mut st.calls, now, stale);
        fresh(&mut st.size, now, stale);
        fresh(&mut st.latency, now, stale);
        fresh(&mut st.graph_total, now, stale);
        fresh(&mut st.graph_failed, now, stale);
        fresh(&mut st.graph_server, now, stale);
        fresh(&mut st.graph_client, now, stale);
        counters(&mut out, "traces_spanmetrics_calls_total", &st.calls);
        counters(&mut out, "traces_spanmetrics_size_total", &st.size);
        histograms(
            &mut out,
            "traces_spanmetrics_latency",
            &st.latency,
            &self.opts.latency_buckets,
        );
        counters(&mut out, "traces_service_graph_request_total", &st.graph_total);
        counters(&mut out, "traces_service_graph_request_failed_total", &st.graph_failed);
        histograms(
            &mut out,
            "traces_service_graph_request_server_seconds",
            &st.graph_server,
            &self.opts.graph_buckets,
        );
        histograms(
            &mut out,
            "traces_service_graph_request_client_seconds",
            &st.graph_client,
            &self.opts.graph_buckets,
        );
        out
    }

    /// Edges that expired unpaired, and edges dropped over `graph_max_items`.
    pub fn edge_counts(&self) -> (u64, u64) {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        (st.expired_edges, st.dropped_edges)
    }
}

fn span_attr(r: &SpanRow, key: &str) -> Option<String> {
    if let Some(i) = crate::span::PROMOTED.iter().position(|k| *k == key) {
        return r.promoted[i].as_ref().map(|v| v.text.clone());
    }
    r.attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.text.clone())
}

fn bump(m: &mut HashMap<Key, Series<f64>>, key: &Key, by: f64, now: Instant) {
    match m.get_mut(key) {
        Some(s) => {
            s.value += by;
            s.updated = now;
        }
        None => {
            m.insert(
                key.clone(),
                Series {
                    value: by,
                    updated: now,
                },
            );
        }
    }
}

fn observe_hist(m: &mut HashMap<Key, Series<Hist>>, key: &Key, bounds: &[f64], v: f64, now: Instant) {
    let s = m.entry(key.clone()).or_insert_with(|| Series {
        value: Hist {
            buckets: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        },
        updated: now,
    });
    s.updated = now;
    for (i, b) in bounds.iter().enumerate() {
        if v <= *b {
            s.value.buckets[i] += 1;
        }
    }
    s.value.sum += v;
    s.value.count += 1;
}

fn labels(name: &str, key: &Key, extra: Option<(&str, String)>) -> Labels {
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(key.len() + 2);
    pairs.push(("__name__".into(), name.into()));
    pairs.extend(key.iter().cloned());
    if let Some((k, v)) = extra {
        pairs.push((k.into(), v));
    }
    Labels::from_pairs(pairs).unwrap_or_else(|_| Labels::empty())
}

fn counters(out: &mut Vec<(Labels, f64)>, name: &str, m: &HashMap<Key, Series<f64>>) {
    for (k, s) in m {
        out.push((labels(name, k, None), s.value));
    }
}

/// A bucket bound as Prometheus writes `le`.
fn le(b: f64) -> String {
    if b == f64::INFINITY {
        "+Inf".into()
    } else {
        let s = format!("{b}");
        // Floating-point products such as 0.1·2³ print long; round to what was meant.
        let r = format!("{:.6}", b);
        let r = r.trim_end_matches('0').trim_end_matches('.');
        if r.len() < s.len() { r.to_owned() } else { s }
    }
}

fn histograms(out: &mut Vec<(Labels, f64)>, name: &str, m: &HashMap<Key, Series<Hist>>, bounds: &[f64]) {
    for (k, s) in m {
        for (i, b) in bounds.iter().enumerate() {
            out.push((
                labels(&format!("{name}_bucket"), k, Some(("le", le(*b)))),
                s.value.buckets[i] as f64,
            ));
        }
        out.push((
            labels(&format!("{name}_bucket"), k, Some(("le", "+Inf".into()))),
            s.value.count as f64,
        ));
        out.push((labels(&format!("{name}_sum"), k, None), s.value.sum));
        out.push((labels(&format!("{name}_count"), k, None), s.value.count as f64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bounds_print_as_the_generator_configures_them() {
        let b: Vec<String> = SpanMetricsOptions::default()
            .latency_buckets
            .iter()
            .map(|b| le(*b))
            .collect();
        assert_eq!(b[0], "0.002");
        assert_eq!(b[9], "1.024");
        assert_eq!(b[13], "16.384");
        let g: Vec<String> = SpanMetricsOptions::default()
            .graph_buckets
            .iter()
            .map(|b| le(*b))
            .collect();
        assert_eq!(g, ["0.1", "0.2", "0.4", "0.8", "1.6", "3.2", "6.4", "12.8"]);
    }

    #[test]
    fn dimension_names_are_sanitized_and_kept_off_the_intrinsics() {
        let m = SpanMetrics::new(SpanMetricsOptions {
            dimensions: vec!["http.method".into(), "service".into()],
            ..Default::default()
        });
        assert_eq!(m.dims[0].1, "http_method");
        assert_eq!(m.dims[1].1, "__service");
    }
}
