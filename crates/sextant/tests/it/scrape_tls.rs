//! `tls_config` against a real HTTPS target (Python's `ssl` server with certificates made
//! by the `openssl` CLI): a private CA, `server_name`, and `insecure_skip_verify`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{Peer, Sextant, free_port};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl CLI");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate valid only for the DNS name `metrics.internal`.
fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=Test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=metrics.internal",
        ],
    );
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:metrics.internal\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

const SERVER: &str = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"tls_metric 1\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
srv = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"#;

#[tokio::test(flavor = "multi_thread")]
async fn tls_config_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let port = free_port();
    let _server = Peer(
        Command::new("python3")
            .args(["-c", SERVER, &port.to_string()])
            .arg(dir.path().join("server.pem"))
            .arg(dir.path().join("server.key"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    crate::support::wait_for("the HTTPS server to listen", Duration::from_secs(20), || async move {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
    })
    .await;
    let ca = dir.path().join("ca.pem").display().to_string();
    let config = format!(
        r#"
global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
  - job_name: ca_and_name
    scheme: https
    tls_config: {{ca_file: '{ca}', server_name: metrics.internal}}
    static_configs: [{{targets: ['127.0.0.1:{port}']}}]
  - job_name: ca_without_name
    scheme: https
    tls_config: {{ca_file: '{ca}'}}
    static_configs: [{{targets: ['127.0.0.1:{port}']}}]
  - job_name: system_roots
    scheme: https
    static_configs: [{{targets: ['127.0.0.1:{port}']}}]
  - job_name: skip_verify
    scheme: https
    tls_config: {{insecure_skip_verify: true}}
    static_configs: [{{targets: ['127.0.0.1:{port}']}}]
storage: {{retention: 0s}}
"#
    );
    let sx = Sextant::start(&dir.path().join("data"), Some(&config)).await;
    let ts = sx
        .wait_targets("TLS targets scraped", Duration::from_secs(20), |v| {
            let ts = v["data"]["activeTargets"].as_array()?.clone();
            (ts.len() == 4 && ts.iter().all(|t| t["health"] != "unknown")).then_some(ts)
        })
        .await;
    let health = |job: &str| {
        let t = ts.iter().find(|t| t["scrapePool"] == job).unwrap();
        (
            t["health"].as_str().unwrap().to_owned(),
            t["lastError"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(health("ca_and_name").0, "up", "{:?}", health("ca_and_name"));
    assert_eq!(health("skip_verify").0, "up", "{:?}", health("skip_verify"));
    let (h, e) = health("ca_without_name");
    assert!(
        h == "down" && e.contains("certificate"),
        "the cert is not valid for 127.0.0.1: {e}"
    );
    let (h, e) = health("system_roots");
    assert!(h == "down" && e.contains("certificate"), "unknown CA: {e}");
}
