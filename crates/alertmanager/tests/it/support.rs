//! A webhook sink on loopback that records what it receives, and helpers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use prometheus_client::registry::Registry;
use sextant_alertmanager::{Alertmanager, Options};
use sextant_model::{Labels, PostableAlert};

/// One request a sink received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub body: serde_json::Value,
}

#[derive(Clone, Default)]
struct SinkState {
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

/// A webhook receiver: records 2xx-answered requests; `fail_with` makes it answer
/// an error status instead (and not record).
pub struct Sink {
    pub url: String,
    state: SinkState,
    task: tokio::task::JoinHandle<()>,
}

async fn receive(State(s): State<SinkState>, body: Bytes) -> StatusCode {
    let status = s.status.load(Ordering::SeqCst);
    if status != 200 {
        return StatusCode::from_u16(status).unwrap();
    }
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    s.got.lock().unwrap().push(Received {
        at: Instant::now(),
        body,
    });
    StatusCode::OK
}

impl Sink {
    pub async fn start() -> Self {
        let state = SinkState::default();
        state.status.store(200, Ordering::SeqCst);
        let app = Router::new().route("/", post(receive)).with_state(state.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        let task = tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        Self { url, state, task }
    }

    pub fn fail_with(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.got.lock().unwrap().clone()
    }

    /// Waits until `n` notifications arrived (panics after `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "waited {timeout:?} for {n} notifications, got {got:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).unwrap()
}

/// An alert starting now, ending `ends_in_ms` from now; one that ends in the past
/// is a resolution (no start: the router keeps the start it has).
pub fn alert(pairs: &[(&str, &str)], ends_in_ms: Option<i64>) -> PostableAlert {
    let now = sextant_model::time::now_ms();
    PostableAlert {
        labels: labels(pairs),
        annotations: BTreeMap::from([("summary".to_owned(), "s".to_owned())]),
        starts_at_ms: if ends_in_ms.is_some_and(|e| e <= 0) {
            None
        } else {
            Some(now)
        },
        ends_at_ms: ends_in_ms.map(|d| now + d),
        generator_url: "http://gen/1".into(),
    }
}

pub fn open(dir: &std::path::Path, config: &str) -> Alertmanager {
    let cfg = sextant_alertmanager::config::parse(config, std::path::Path::new("test.yml")).unwrap();
    let mut opts = Options::new(dir, "http://am.test:9093");
    opts.group_cleanup_interval = Duration::from_millis(200);
    Alertmanager::open(opts, cfg, &mut Registry::default()).unwrap()
}

/// Alert names in a webhook body, with their status.
pub fn alerts_of(r: &Received) -> Vec<(String, String)> {
    r.body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap_or("").to_owned() + a["labels"]["i"].as_str().unwrap_or(""),
                a["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}
