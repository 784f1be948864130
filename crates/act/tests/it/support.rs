//! Shared helpers: a tiny HTTP service to supervise, and waiting.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sextant_act::config::ProcessConfig;

/// A Python HTTP service: `/healthz`, `/slow?s=SECONDS`, and `/` answering with its
/// replica number, `TAG` and pid as JSON.
pub const SERVICE: &str = r#"
import http.server, json, os, sys, time, urllib.parse
port = int(sys.argv[1])
class H(http.server.BaseHTTPRequestHandler):
    def reply(self, code, obj):
        b = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        if u.path == "/healthz":
            return self.reply(200, {"ok": True})
        if u.path == "/slow":
            time.sleep(float(urllib.parse.parse_qs(u.query).get("s", ["1"])[0]))
        self.reply(200, {"replica": os.environ.get("SEXTANT_REPLICA"), "tag": os.environ.get("TAG", "v1"), "pid": os.getpid()})
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
"#;

/// Writes the service to `dir` and returns its path.
pub fn service_script(dir: &std::path::Path) -> PathBuf {
    let p = dir.join("service.py");
    std::fs::write(&p, SERVICE).unwrap();
    p
}

/// A process workload config running the service, quick health checks.
pub fn process_config(script: &std::path::Path, replicas: u32) -> ProcessConfig {
    let yaml = format!(
        "command: [python3, {:?}, \"{{port}}\"]\nreplicas: {replicas}\n\
         health: {{path: /healthz, interval: 100ms, timeout: 1s}}\n\
         restart: {{backoff: 100ms, max_backoff: 1s}}\n\
         stop: {{drain: 5s, grace: 2s}}\n\
         rollout: {{start_timeout: 10s, pause: 300ms}}\n",
        script.display()
    );
    serde_yaml::from_str(&yaml).unwrap()
}

/// Installs the TLS crypto provider reqwest needs (once per process).
pub fn crypto() {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after `secs`.
pub async fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A free port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Labels as a map.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
