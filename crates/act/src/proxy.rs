//! The reverse proxy in front of a process workload: round robin over the ready
//! replicas, a refused connection retried once on another replica, in-flight
//! requests counted per replica so a replica being stopped is drained first.
//! Request bodies are buffered (up to 10 MiB) so a retry can resend them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, Request, Response, StatusCode};
use futures_util::StreamExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::supervisor::{Backend, Backends};

/// Largest request body the proxy accepts.
const MAX_BODY: usize = 10 << 20;

/// Labels of the proxy's request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProxyLabels {
    /// Workload.
    pub workload: String,
    /// Status code answered (`502` when no replica answered).
    pub code: String,
}

/// A workload label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkloadLabels {
    /// Workload.
    pub workload: String,
}

/// The proxy's metrics, shared by every workload's proxy.
#[derive(Clone, Default)]
pub struct ProxyMetrics {
    /// Requests by workload and code.
    pub requests: Family<ProxyLabels, Counter>,
    /// Requests resent to another replica after a refused connection.
    pub retries: Family<WorkloadLabels, Counter>,
}

struct Shared {
    workload: String,
    backends: Backends,
    next: AtomicUsize,
    client: reqwest::Client,
    metrics: ProxyMetrics,
}

/// A running proxy; dropped or [`ProxyHandle::stop`]ped, it stops listening.
pub struct ProxyHandle {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl ProxyHandle {
    /// Stops listening and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Starts a proxy on `listen` for `workload`.
pub async fn start(
    listen: &str,
    workload: &str,
    backends: Backends,
    timeout: Duration,
    metrics: ProxyMetrics,
) -> Result<ProxyHandle, String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("workload {workload}: proxy cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let client = crate::http_client()
        .no_proxy()
        .no_gzip()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let shared = Arc::new(Shared {
        workload: workload.to_owned(),
        backends,
        next: AtomicUsize::new(0),
        client,
        metrics,
    });
    let app = axum::Router::new().fallback(handle).with_state(shared);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "workload proxy stopped");
        }
    });
    tracing::info!(workload, %addr, "workload proxy listening");
    Ok(ProxyHandle {
        addr,
        stop: Some(stop),
        task,
    })
}

/// Headers that describe one hop, not the request (RFC 9110 7.6.1).
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Decrements a replica's in-flight count when the response is done.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn plain(code: StatusCode, text: &str) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(Body::from(format!("{text}\n")))
        .expect("valid response")
}

async fn handle(
    State(s): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request<Body>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large for the proxy (10 MiB)",
            );
        }
    };
    let mut headers = HeaderMap::new();
    for (k, v) in &parts.headers {
        if !hop_by_hop(k) && k != "host" {
            headers.append(k.clone(), v.clone());
        }
    }
    let forwarded = match parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {}", peer.ip()),
        None => peer.ip().to_string(),
    };
    if let Ok(v) = forwarded.parse() {
        headers.insert("x-forwarded-for", v);
    }
    if let Some(host) = parts.headers.get("host") {
        headers.insert("x-forwarded-host", host.clone());
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let backends: Vec<Backend> = s.backends.read().expect("poisoned").clone();
    if backends.is_empty() {
        count(&s, "503");
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("no ready replica of workload {}", s.workload),
        );
    }
    let first = s.next.fetch_add(1, Ordering::Relaxed) % backends.len();
    let mut tries = vec![&backends[first]];
    if backends.len() > 1 {
        tries.push(&backends[(first + 1) % backends.len()]);
    }
    let mut last_error = String::new();
    for (attempt, b) in tries.into_iter().enumerate() {
        b.inflight.fetch_add(1, Ordering::Relaxed);
        let guard = InFlight(b.inflight.clone());
        let sent = s
            .client
            .request(parts.method.clone(), format!("http://127.0.0.1:{}{path}", b.port))
            .headers(headers.clone())
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let mut out = Response::builder().status(resp.status().as_u16());
                for (k, v) in resp.headers() {
                    if !hop_by_hop(k) {
                        out = out.header(k, v);
                    }
                }
                count(&s, resp.status().as_str());
                let stream = resp.bytes_stream().map(move |chunk| {
                    let _ = &guard;
                    chunk
                });
                return out
                    .body(Body::from_stream(stream))
                    .unwrap_or_else(|e| plain(StatusCode::BAD_GATEWAY, &e.to_string()));
            }
            Err(e) if e.is_connect() && attempt == 0 => {
                s.metrics
                    .retries
                    .get_or_create(&WorkloadLabels {
                        workload: s.workload.clone(),
                    })
                    .inc();
                last_error = format!("replica {}: {e}", b.replica);
            }
            Err(e) => {
                last_error = format!("replica {}: {e}", b.replica);
                if e.is_timeout() {
                    count(&s, "504");
                    return plain(StatusCode::GATEWAY_TIMEOUT, &last_error);
                }
                break;
            }
        }
    }
    count(&s, "502");
    plain(StatusCode::BAD_GATEWAY, &last_error)
}

fn count(s: &Shared, code: &str) {
    s.metrics
        .requests
        .get_or_create(&ProxyLabels {
            workload: s.workload.clone(),
            code: code.to_owned(),
        })
        .inc();
}
