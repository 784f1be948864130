//! Store, search and span-metric tests over a real DuckDB file.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use crate::search::SearchRequest;
use crate::span::TraceId;
use crate::store::{TraceStore, TraceStoreOptions, now_ns};
use crate::traceql::{self, Field, Scope};

fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

fn i(v: i64) -> any_value::Value {
    any_value::Value::IntValue(v)
}

struct SpanSpec {
    trace: u128,
    id: u64,
    parent: u64,
    name: &'static str,
    kind: i32,
    start_ms_ago: i64,
    duration_ms: i64,
    error: bool,
    attrs: Vec<KeyValue>,
}

fn spec(trace: u128, id: u64, parent: u64, name: &'static str) -> SpanSpec {
    SpanSpec {
        trace,
        id,
        parent,
        name,
        kind: 2,
        start_ms_ago: 1000,
        duration_ms: 10,
        error: false,
        attrs: Vec::new(),
    }
}

fn request(service: &str, spans: Vec<SpanSpec>) -> ExportTraceServiceRequest {
    let now = now_ns();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", s(service)), kv("k8s.namespace.name", s("shop"))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: None,
                spans: spans
                    .into_iter()
                    .map(|x| {
                        let start = now - x.start_ms_ago * 1_000_000;
                        Span {
                            trace_id: x.trace.to_be_bytes().to_vec(),
                            span_id: x.id.to_be_bytes().to_vec(),
                            parent_span_id: if x.parent == 0 {
                                Vec::new()
                            } else {
                                x.parent.to_be_bytes().to_vec()
                            },
                            name: x.name.into(),
                            kind: x.kind,
                            start_time_unix_nano: start as u64,
                            end_time_unix_nano: (start + x.duration_ms * 1_000_000) as u64,
                            attributes: x.attrs,
                            status: Some(Status {
                                code: if x.error { 2 } else { 0 },
                                message: String::new(),
                            }),
                            ..Default::default()
                        }
                    })
                    .collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn open(dir: &std::path::Path) -> TraceStore {
    let mut o = TraceStoreOptions::new(dir);
    o.compact_after = Duration::ZERO;
    TraceStore::open(o).unwrap().0
}

fn search(store: &TraceStore, q: &str) -> Vec<(u128, usize)> {
    let now = now_ns();
    store
        .search(&SearchRequest {
            filter: traceql::parse(q).unwrap().filter,
            start_ns: now - 3600 * 1_000_000_000,
            end_ns: now,
            limit: 20,
            spans_per_set: 3,
        })
        .unwrap()
        .into_iter()
        .map(|m| (m.trace.0, m.matched))
        .collect()
}

/// Three traces: 1 (frontend → cart, an error in cart), 2 (frontend only,
/// slow), 3 (checkout, a 500).
fn fixture(store: &TraceStore) {
    let mut a = spec(1, 11, 0, "GET /cart");
    a.attrs = vec![
        kv("http.request.method", s("GET")),
        kv("http.response.status_code", i(200)),
    ];
    a.start_ms_ago = 3000;
    a.duration_ms = 50;
    let mut b = spec(1, 12, 11, "GET /cart");
    b.kind = 3;
    b.start_ms_ago = 2990;
    b.duration_ms = 30;
    let mut c = spec(2, 21, 0, "GET /");
    c.duration_ms = 1500;
    c.start_ms_ago = 2000;
    c.attrs = vec![kv("feature.flag", s("new-ui")), kv("retries", i(3))];
    store.write_blocking(&request("frontend", vec![a, b, c])).unwrap();
    let mut d = spec(1, 13, 12, "cart.get");
    d.error = true;
    d.start_ms_ago = 2985;
    d.attrs = vec![kv("db.system", s("redis"))];
    store.write_blocking(&request("cart", vec![d])).unwrap();
    let mut e = spec(3, 31, 0, "POST /checkout");
    e.attrs = vec![
        kv("http.response.status_code", i(500)),
        kv("http.route", s("/checkout")),
    ];
    e.start_ms_ago = 1000;
    store.write_blocking(&request("checkout", vec![e])).unwrap();
}

#[test]
fn trace_by_id_returns_the_whole_tree_grouped_by_resource() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    fixture(&store);
    let t = store.trace(TraceId(1), None).unwrap().unwrap();
    assert_eq!(t.len(), 2, "two resources");
    let ids: Vec<Vec<u8>> = t
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| s.span_id.clone())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(store.trace(TraceId(99), None).unwrap(), None);
    // A range that misses the trace finds nothing.
    let now = now_ns();
    assert_eq!(
        store
            .trace(TraceId(1), Some((now + 10_000_000_000, now + 20_000_000_000)))
            .unwrap(),
        None
    );
}

#[test]
fn searches_match_intrinsics_attributes_and_trace_properties() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    fixture(&store);
    assert_eq!(search(&store, "{}"), vec![(3, 1), (2, 1), (1, 3)], "newest first");
    assert_eq!(search(&store, "{ status = error }"), vec![(1, 1)]);
    assert_eq!(
        search(&store, r#"{ resource.service.name = "frontend" }"#),
        vec![(2, 1), (1, 2)]
    );
    assert_eq!(search(&store, "{ duration > 1s }"), vec![(2, 1)]);
    assert_eq!(
        search(&store, "{ span.http.response.status_code >= 500 }"),
        vec![(3, 1)]
    );
    // A promoted attribute compared as a string does not match an integer.
    assert_eq!(search(&store, r#"{ span.http.response.status_code = "500" }"#), vec![]);
    assert_eq!(search(&store, r#"{ .feature.flag =~ "new-.*" }"#), vec![(2, 1)]);
    assert_eq!(
        search(&store, r#"{ .feature.flag =~ "new" }"#),
        vec![],
        "regexes are anchored"
    );
    assert_eq!(search(&store, r#"{ .feature.flag != "old" }"#), vec![(2, 1)]);
    // != on a missing attribute is false.
    assert_eq!(
        search(&store, r#"{ span.feature.flag != "x" && name = "GET /cart" }"#),
        vec![]
    );
    assert_eq!(search(&store, "{ .retries = 3 }"), vec![(2, 1)]);
    assert_eq!(
        search(&store, "{ .retries = 3.0 }"),
        vec![(2, 1)],
        "numbers compare across types"
    );
    assert_eq!(search(&store, r#"{ .retries = "3" }"#), vec![], "types must agree");
    assert_eq!(
        search(&store, r#"{ resource.k8s.namespace.name = "shop" && kind = client }"#),
        vec![(1, 1)]
    );
    assert_eq!(
        search(&store, r#"{ .k8s.namespace.name = "shop" && .db.system = "redis" }"#),
        vec![(1, 1)]
    );
    assert_eq!(search(&store, "{ .db.system != nil }"), vec![(1, 1)]);
    assert_eq!(
        search(&store, r#"{ rootServiceName = "frontend" && status = error }"#),
        vec![(1, 1)]
    );
    assert_eq!(search(&store, "{ traceDuration > 1s }"), vec![(2, 1)]);
    assert_eq!(
        search(&store, r#"{ rootName = "POST /checkout" || name = "cart.get" }"#),
        vec![(3, 1), (1, 1)]
    );
    assert_eq!(search(&store, r#"{ span:name = "GET /" }"#), vec![(2, 1)]);
}

#[test]
fn the_limit_applies_after_matching() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // 50 newer traces that do not match, then one older that does.
    let mut spans = Vec::new();
    for t in 0..50u128 {
        let mut x = spec(100 + t, 1, 0, "noise");
        x.start_ms_ago = 100;
        spans.push(x);
    }
    let mut needle = spec(7, 1, 0, "needle");
    needle.start_ms_ago = 5000;
    spans.push(needle);
    store.write_blocking(&request("svc", spans)).unwrap();
    let now = now_ns();
    let found = store
        .search(&SearchRequest {
            filter: traceql::parse(r#"{ name = "needle" }"#).unwrap().filter,
            start_ns: now - 3_600_000_000_000,
            end_ns: now,
            limit: 1,
            spans_per_set: 3,
        })
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].trace, TraceId(7));
    assert_eq!(found[0].root_name.as_deref(), Some("needle"));
    assert_eq!(found[0].spans[0].name.as_deref(), Some("needle"));
}

#[test]
fn reopening_keeps_every_span_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = open(dir.path());
        fixture(&store);
        search(&store, "{}")
    };
    let store = open(dir.path());
    assert_eq!(search(&store, "{}"), before);
    assert_eq!(search(&store, "{ status = error }"), vec![(1, 1)]);
    assert_eq!(
        store
            .trace(TraceId(1), None)
            .unwrap()
            .unwrap()
            .iter()
            .map(|r| r.scope_spans[0].spans.len())
            .sum::<usize>(),
        3
    );
}

#[test]
fn closed_buckets_are_compacted_sorted_and_old_ones_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = TraceStoreOptions::new(dir.path());
    o.bucket = Duration::from_secs(1);
    o.compact_after = Duration::ZERO;
    o.retention = Duration::from_secs(3600);
    let store = TraceStore::open(o).unwrap().0;
    fixture(&store);
    // The same trace again in one commit, as a retry would send it.
    let mut dup = spec(3, 31, 0, "POST /checkout");
    dup.start_ms_ago = 1000;
    store.write_blocking(&request("checkout", vec![dup])).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    store.maintain_blocking().unwrap();
    assert!(store.counters().compactions.load(std::sync::atomic::Ordering::Relaxed) >= 2);
    assert_eq!(search(&store, "{}"), vec![(3, 1), (2, 1), (1, 3)]);
    let t3 = store.trace(TraceId(3), None).unwrap().unwrap();
    assert_eq!(
        t3[0].scope_spans[0].spans.len(),
        1,
        "a span sent twice is returned once"
    );
    drop(store);
    // Retention shorter than the data: every bucket goes.
    let mut o = TraceStoreOptions::new(dir.path());
    o.bucket = Duration::from_secs(1);
    o.retention = Duration::from_millis(500);
    let store = TraceStore::open(o).unwrap().0;
    store.maintain_blocking().unwrap();
    assert_eq!(search(&store, "{}"), vec![]);
    assert!(
        store
            .counters()
            .dropped_buckets
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 3
    );
}

#[test]
fn invalid_and_expired_spans_are_refused_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = TraceStoreOptions::new(dir.path());
    o.retention = Duration::from_secs(60);
    let store = TraceStore::open(o).unwrap().0;
    let mut old = spec(5, 1, 0, "old");
    old.start_ms_ago = 120_000;
    let mut req = request("svc", vec![spec(4, 1, 0, "ok"), old]);
    req.resource_spans[0].scope_spans[0].spans.push(Span {
        trace_id: vec![0; 16],
        span_id: vec![1; 8],
        ..Default::default()
    });
    let out = store.write_blocking(&req).unwrap();
    assert_eq!((out.accepted, out.rejected), (1, 2));
    assert_eq!(out.reasons.len(), 2, "{:?}", out.reasons);
    assert_eq!(search(&store, "{}"), vec![(4, 1)]);
}

#[test]
fn tags_and_values_list_what_was_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    fixture(&store);
    let now = now_ns();
    let tags = store.tag_names(now - 3_600_000_000_000, now, 100).unwrap();
    assert_eq!(tags[0].0, "resource");
    assert_eq!(tags[0].1, vec!["k8s.namespace.name", "service.name"]);
    assert_eq!(
        tags[1].1,
        vec![
            "db.system",
            "feature.flag",
            "http.request.method",
            "http.response.status_code",
            "http.route",
            "retries"
        ]
    );
    let values = |tag: &str, q: &str| {
        store
            .tag_values(
                &crate::search::parse_tag(tag, false).unwrap(),
                &traceql::parse(q).unwrap().filter,
                now - 3_600_000_000_000,
                now,
                100,
            )
            .unwrap()
    };
    assert_eq!(
        values("resource.service.name", "{}"),
        vec![
            ("cart".to_string(), "string"),
            ("checkout".to_string(), "string"),
            ("frontend".to_string(), "string")
        ]
    );
    assert_eq!(
        values("span.http.response.status_code", "{}"),
        vec![("200".to_string(), "int"), ("500".to_string(), "int")]
    );
    assert_eq!(
        values("name", r#"{ resource.service.name = "frontend" }"#),
        vec![("GET /".to_string(), "string"), ("GET /cart".to_string(), "string")]
    );
    assert_eq!(values(".retries", "{}"), vec![("3".to_string(), "int")]);
    assert_eq!(values("status", "{}").len(), 3);
    assert_eq!(
        crate::search::parse_tag("service.name", true).unwrap(),
        Field::Attr(Scope::Unscoped, "service.name".into())
    );
    assert!(crate::search::parse_tag("service.name", false).is_err());
}

#[test]
fn span_metrics_count_calls_latency_and_service_graph_edges() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Client span in frontend, its server span in cart (sent separately).
    let mut client = spec(9, 1, 0, "GET /cart");
    client.kind = 3;
    client.start_ms_ago = 20;
    client.duration_ms = 15;
    let mut server = spec(9, 2, 1, "GET /cart");
    server.kind = 2;
    server.start_ms_ago = 18;
    server.duration_ms = 10;
    server.error = true;
    store.write_blocking(&request("frontend", vec![client])).unwrap();
    store.write_blocking(&request("cart", vec![server])).unwrap();
    let snap = store.span_metrics().snapshot();
    let get = |name: &str, want: &[(&str, &str)]| -> Option<f64> {
        snap.iter()
            .find(|(l, _)| l.metric_name() == Some(name) && want.iter().all(|(k, v)| l.get(k) == Some(*v)))
            .map(|(_, v)| *v)
    };
    assert_eq!(
        get(
            "traces_spanmetrics_calls_total",
            &[
                ("service", "cart"),
                ("span_name", "GET /cart"),
                ("span_kind", "SPAN_KIND_SERVER"),
                ("status_code", "STATUS_CODE_ERROR")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        get(
            "traces_spanmetrics_latency_bucket",
            &[("service", "cart"), ("le", "0.008")]
        ),
        Some(0.0)
    );
    assert_eq!(
        get(
            "traces_spanmetrics_latency_bucket",
            &[("service", "cart"), ("le", "0.016")]
        ),
        Some(1.0)
    );
    assert_eq!(
        get("traces_spanmetrics_latency_sum", &[("service", "frontend")]),
        Some(0.015)
    );
    assert_eq!(
        get(
            "traces_service_graph_request_total",
            &[("client", "frontend"), ("server", "cart")]
        ),
        Some(1.0)
    );
    assert_eq!(
        get(
            "traces_service_graph_request_failed_total",
            &[("client", "frontend"), ("server", "cart")]
        ),
        Some(1.0)
    );
    assert_eq!(
        get(
            "traces_service_graph_request_server_seconds_bucket",
            &[("client", "frontend"), ("le", "0.1")]
        ),
        Some(1.0)
    );
    // Old spans (a backfill) are stored but not counted.
    let mut old = spec(10, 1, 0, "old");
    old.start_ms_ago = 600_000;
    store.write_blocking(&request("backfill", vec![old])).unwrap();
    assert!(
        store
            .span_metrics()
            .snapshot()
            .iter()
            .all(|(l, _)| l.get("service") != Some("backfill"))
    );
}

#[test]
fn a_data_directory_of_another_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let conn = duckdb::Connection::open(dir.path().join("spans.duckdb")).unwrap();
    conn.execute_batch("UPDATE meta SET value = '99' WHERE key = 'format_version'")
        .unwrap();
    drop(conn);
    let err = TraceStore::open(TraceStoreOptions::new(dir.path())).err().unwrap();
    assert!(err.to_string().contains("format version 99"), "{err}");
}
