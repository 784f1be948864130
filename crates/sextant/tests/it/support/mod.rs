//! Starting the `sextant` binary and real peers on free loopback ports, for end-to-end
//! tests. Every process started here is killed when its handle drops.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound and released; good enough on a test machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An HTTP client for tests.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Polls `f` until it returns `Some`, failing the test after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `GET url` until it answers 2xx (a server's readiness endpoint).
pub async fn wait_ready(what: &str, url: &str) {
    let http = client();
    wait_for(what, Duration::from_secs(60), || {
        let (http, url) = (http.clone(), url.to_owned());
        async move {
            http.get(&url)
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        }
    })
    .await;
}

/// Starts Debian's Prometheus on `port` with `config` (YAML) and its data and log in
/// `dir`, plus `extra` flags; killed when the handle drops. Does not wait for it.
pub fn start_prometheus(dir: &Path, port: u16, config: &str, extra: &[&str]) -> Peer {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, config).unwrap();
    Peer(
        Command::new(peer_binary("prometheus", "prometheus"))
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--storage.tsdb.path={}", dir.join("prom-data").display()))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// A running `sextant serve`.
pub struct Sextant {
    child: Option<Child>,
    pub port: u16,
    pub stderr_path: PathBuf,
}

impl Sextant {
    /// Starts `sextant serve` on a free port with `data_dir`; `config` (YAML, with
    /// `{{LISTEN}}` replaced by the address) is written beside the data directory.
    pub async fn start(data_dir: &Path, config: Option<&str>) -> Sextant {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let parent = data_dir.parent().unwrap().to_owned();
        let stderr_path = parent.join(format!("sextant-{port}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sextant"));
        cmd.arg("serve")
            .arg("--listen")
            .arg(&listen)
            .arg("--data-dir")
            .arg(data_dir);
        if let Some(c) = config {
            let path = parent.join(format!("sextant-{port}.yml"));
            std::fs::write(&path, c.replace("{{LISTEN}}", &listen)).unwrap();
            cmd.arg("--config").arg(path);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .expect("start sextant");
        let s = Sextant {
            child: Some(child),
            port,
            stderr_path,
        };
        wait_ready("sextant to become ready", &s.url("/-/ready")).await;
        s
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill9(mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    }

    /// SIGTERM and wait for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let mut c = self.child.take().unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > Duration::from_secs(60) {
                c.kill().unwrap();
                panic!(
                    "sextant did not exit within 60s of SIGTERM; log:\n{}",
                    std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for Sextant {
    fn drop(&mut self) {
        // A failing test shows the end of the server's log (CI keeps no files).
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- last lines of the sextant log ({}) ---", self.stderr_path.display());
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A peer program (Prometheus, node_exporter) killed on drop.
pub struct Peer(pub Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Path of a Debian-packaged peer binary; fails with the install hint if missing.
pub fn peer_binary(name: &str, package: &str) -> PathBuf {
    let p = PathBuf::from("/usr/bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: install the Debian package {package} (scripts/test does)",
        p.display()
    );
    p
}

/// `GET` returning JSON.
/// `query_range` of a LogQL query over the last ten minutes (and one ahead), as
/// Loki's API answers it.
pub async fn loki_recent(sx: &Sextant, query: &str, limit: usize) -> serde_json::Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", query)
        .append_pair("start", &(now - 600_000_000_000).to_string())
        .append_pair("end", &(now + 60_000_000_000).to_string())
        .append_pair("limit", &limit.to_string())
        .finish();
    get_json(&sx.url(&format!("/loki/api/v1/query_range?{q}"))).await
}

pub async fn get_json(url: &str) -> serde_json::Value {
    let r = client()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = r.status();
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {url} ({status}): {e}: {text}"))
}

/// Opens the data directory a stopped Sextant left behind, to check what it stored.
pub fn open_store(data: &Path) -> sextant_store::MetricsStore {
    let opts = sextant_store::StoreOptions {
        retention: None,
        ..sextant_store::StoreOptions::new(data)
    };
    sextant_store::MetricsStore::open(opts, &mut prometheus_client::registry::Registry::default()).unwrap()
}

/// An equality matcher.
pub fn eq(name: &str, value: &str) -> sextant_model::Matcher {
    sextant_model::Matcher::new(sextant_model::MatchOp::Equal, name, value).unwrap()
}

impl Sextant {
    /// Polls `/api/v1/targets` until `ready` accepts its JSON, failing after `timeout`.
    pub async fn wait_targets<T>(
        &self,
        what: &str,
        timeout: Duration,
        ready: impl Fn(&serde_json::Value) -> Option<T>,
    ) -> T {
        let url = self.url("/api/v1/targets");
        let ready = &ready;
        wait_for(what, timeout, || {
            let url = url.clone();
            async move { ready(&get_json(&url).await) }
        })
        .await
    }
}

/// A btrfs file system in a file, loop-mounted for the duration of a test, so the btrfs
/// collector has something to read. `None` where this machine cannot (no btrfs-progs,
/// no btrfs in the kernel, or not allowed to mount).
pub struct BtrfsMount {
    pub mountpoint: PathBuf,
}

impl BtrfsMount {
    pub fn try_new(dir: &Path) -> Option<BtrfsMount> {
        let image = dir.join("btrfs.img");
        let mountpoint = dir.join("btrfs");
        std::fs::create_dir_all(&mountpoint).ok()?;
        std::fs::File::create(&image).ok()?.set_len(300 << 20).ok()?;
        let run = |cmd: &mut Command| {
            cmd.stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let made = run(Command::new("mkfs.btrfs")
            .args(["-q", "-f", "-L", "sextant-test"])
            .arg(&image));
        if !made || !run(Command::new("mount").arg("-o").arg("loop").arg(&image).arg(&mountpoint)) {
            eprintln!("no btrfs file system for this test: mkfs.btrfs or mount -o loop is not available here");
            return None;
        }
        Some(BtrfsMount { mountpoint })
    }
}

impl Drop for BtrfsMount {
    fn drop(&mut self) {
        // Lazy: a node_exporter of another test may still hold the mount point open
        // (node_exporter 1.5 does not close it after its btrfs ioctls).
        let _ = Command::new("umount").arg("-l").arg(&self.mountpoint).status();
    }
}
