//! `sextant demo-service`: the small HTTP service `sextant demo` runs under the
//! supervisor. Each replica serves up to `--capacity` requests per second; beyond
//! that it answers 503 at once, and as it nears capacity the requests it serves
//! slow down (10 ms idle, up to 250 ms past capacity), so both an availability and
//! a latency SLO burn when load outgrows the replicas. Exposes
//! `demo_http_requests_total{code}` and `demo_http_request_duration_seconds` at
//! `/metrics`, and `/healthz`.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Arguments of `sextant demo-service`.
#[derive(clap::Args)]
pub struct DemoServiceArgs {
    /// Port to listen on (127.0.0.1).
    #[arg(long)]
    port: u16,
    /// Requests per second one replica serves.
    #[arg(long, default_value_t = 25.0)]
    capacity: f64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

struct Service {
    capacity: f64,
    /// Token bucket: tokens and when it was last filled.
    bucket: Mutex<(f64, Instant)>,
    /// Arrivals in the current and the previous second, for the load estimate.
    arrivals: Mutex<(u64, u64, Instant)>,
    requests: Family<CodeLabels, Counter>,
    duration: Histogram,
    registry: Registry,
}

impl Service {
    /// Arrivals per second over the last full second.
    fn load(&self) -> f64 {
        let mut a = self.arrivals.lock().expect("poisoned");
        let elapsed = a.2.elapsed();
        if elapsed >= Duration::from_secs(2) {
            *a = (0, 0, Instant::now());
        } else if elapsed >= Duration::from_secs(1) {
            *a = (0, a.0, Instant::now());
        }
        a.0 += 1;
        a.1.max(a.0) as f64
    }

    fn admit(&self) -> bool {
        let mut b = self.bucket.lock().expect("poisoned");
        let now = Instant::now();
        b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * self.capacity).min(self.capacity);
        b.1 = now;
        if b.0 >= 1.0 {
            b.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

async fn serve(State(s): State<Arc<Service>>) -> impl IntoResponse {
    let started = Instant::now();
    let utilization = s.load() / s.capacity;
    let (code, body) = if s.admit() {
        let extra = ((utilization - 0.8) / 0.2).clamp(0.0, 1.0) * 0.24;
        tokio::time::sleep(Duration::from_secs_f64(0.01 + extra)).await;
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "over capacity\n")
    };
    s.requests
        .get_or_create(&CodeLabels {
            code: code.as_u16().to_string(),
        })
        .inc();
    s.duration.observe(started.elapsed().as_secs_f64());
    (code, body)
}

async fn metrics(State(s): State<Arc<Service>>) -> impl IntoResponse {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &s.registry).is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, String::new()).into_response();
    }
    ([("content-type", "text/plain; version=0.0.4")], out).into_response()
}

/// Runs the service until SIGTERM or SIGINT.
pub fn run(args: DemoServiceArgs) -> ExitCode {
    let requests = Family::<CodeLabels, Counter>::default();
    let duration = Histogram::new([0.025, 0.05, 0.1, 0.25, 0.5, 1.0]);
    let mut registry = Registry::default();
    registry.register("demo_http_requests", "Requests by status code", requests.clone());
    registry.register(
        "demo_http_request_duration_seconds",
        "Request latency",
        duration.clone(),
    );
    let service = Arc::new(Service {
        capacity: args.capacity.max(1.0),
        bucket: Mutex::new((args.capacity, Instant::now())),
        arrivals: Mutex::new((0, 0, Instant::now())),
        requests,
        duration,
        registry,
    });
    let app = axum::Router::new()
        .route("/", get(serve))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .with_state(service);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sextant demo-service: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("sextant demo-service: listening on 127.0.0.1:{}: {e}", args.port);
                return ExitCode::FAILURE;
            }
        };
        match axum::serve(listener, app)
            .with_graceful_shutdown(crate::serve::shutdown_signal())
            .await
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sextant demo-service: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
