//! A synthetic tracing workload for benchmarks and load generators: traces of
//! ten spans (a server root, client calls and their servers in other services,
//! a database call) from 20 services, with the attributes instrumented HTTP
//! services carry (method, route, status code; a user id and a feature flag that
//! are not promoted to columns), 2% of traces failing, durations log-normal-ish.
//! Deterministic for a seed.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

/// Spans per synthetic trace.
pub const SPANS_PER_TRACE: usize = 10;

/// Number of services.
pub const SERVICES: usize = 20;

/// A xorshift generator (no dependency, reproducible).
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

fn s(k: &str, v: String) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v)),
        }),
        ..Default::default()
    }
}

fn i(k: &str, v: i64) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(v)),
        }),
        ..Default::default()
    }
}

/// The service name of service `n`.
pub fn service(n: usize) -> String {
    format!("svc-{n:02}")
}

/// The id of trace number `n` of a workload with `seed` (what the generator
/// gives it).
pub fn trace_id(seed: u64, n: u64) -> u128 {
    let mut r = Rng(seed ^ (n.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
    ((r.next_u64() as u128) << 64) | r.next_u64() as u128 | 1
}

/// One export request of `traces` traces starting at trace number `first`,
/// spread evenly over `[start_ns, start_ns + span_ns)` by trace number out of
/// `total`.
pub fn request(
    seed: u64,
    first: u64,
    traces: u64,
    total: u64,
    start_ns: i64,
    span_ns: i64,
) -> ExportTraceServiceRequest {
    let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); SERVICES];
    for n in first..first + traces {
        let id = trace_id(seed, n).to_be_bytes().to_vec();
        let mut r = Rng(seed.wrapping_add(n).wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
        let t0 = start_ns + ((n as i128 * span_ns as i128) / total.max(1) as i128) as i64;
        let failed = r.below(50) == 0;
        let root_service = (n % SERVICES as u64) as usize;
        let routes = ["/", "/cart", "/checkout", "/items/{id}", "/login", "/search"];
        let route = routes[r.below(routes.len() as u64) as usize];
        let mut parent = 0u64;
        let mut depth_start = t0;
        for k in 0..SPANS_PER_TRACE {
            let span_id = (n << 8) | (k as u64 + 1);
            // Log-normal-ish: most spans a few ms, a tail of hundreds.
            let dur = (1_000_000.0 * (1.0 + (r.below(1000) as f64 / 100.0)).powf(2.2)) as i64;
            let (kind, svc) = match k {
                0 => (2, root_service),
                k if k % 3 == 1 => (3, (root_service + k) % SERVICES),
                k if k % 3 == 2 => (2, (root_service + k - 1) % SERVICES),
                _ => (3, (root_service + k) % SERVICES),
            };
            let status = if failed && k < 3 { 2 } else { 0 };
            let mut attributes = vec![
                s(
                    "http.request.method",
                    if r.below(4) == 0 { "POST" } else { "GET" }.into(),
                ),
                s("http.route", route.into()),
                i("http.response.status_code", if status == 2 { 500 } else { 200 }),
                s("user.id", format!("u{}", r.below(10_000))),
                s("feature.flag", ["a", "b", "c"][r.below(3) as usize].into()),
            ];
            if k == SPANS_PER_TRACE - 1 {
                attributes.push(s("db.system", "postgresql".into()));
            }
            by_service[svc].push(Span {
                trace_id: id.clone(),
                span_id: span_id.to_be_bytes().to_vec(),
                parent_span_id: if k == 0 {
                    Vec::new()
                } else {
                    parent.to_be_bytes().to_vec()
                },
                name: format!("{} {route}", if kind == 3 { "call" } else { "GET" }),
                kind,
                start_time_unix_nano: depth_start as u64,
                end_time_unix_nano: (depth_start + dur) as u64,
                attributes,
                status: Some(Status {
                    code: status,
                    message: String::new(),
                }),
                ..Default::default()
            });
            parent = span_id;
            depth_start += 100_000;
        }
    }
    ExportTraceServiceRequest {
        resource_spans: by_service
            .into_iter()
            .enumerate()
            .filter(|(_, spans)| !spans.is_empty())
            .map(|(n, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        s("service.name", service(n)),
                        s("k8s.namespace.name", "shop".into()),
                        s("k8s.pod.name", format!("{}-7d9f-{n}", service(n))),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}
