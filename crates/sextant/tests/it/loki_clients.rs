//! Real Loki clients pushing into the binary: python-logging-loki (PyPI, JSON),
//! winston-loki (npm, snappy protobuf) and Debian's syslog-ng shipping a file
//! through its `http()` destination. Each line must arrive exactly once, as
//! written, queryable by its labels and its text. `scripts/install-test-deps`
//! installs the three clients.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::support::{Sextant, loki_recent, wait_for};

const CONFIG: &str = "storage:\n  retention: 0s\n";

fn scripts() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("../../scripts/loki-clients")
}

fn home_cache(rel: &str) -> PathBuf {
    let p = PathBuf::from(std::env::var("HOME").unwrap()).join(".cache").join(rel);
    assert!(p.exists(), "{} is missing: run scripts/install-test-deps", p.display());
    p
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every line of `query` over the last ten minutes, with how often it was seen.
async fn lines(sx: &Sextant, query: &str) -> (HashMap<String, usize>, serde_json::Value) {
    let v = loki_recent(sx, query, 5000).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for s in v["data"]["result"].as_array().into_iter().flatten() {
        for e in s["values"].as_array().unwrap() {
            *seen.entry(e[1].as_str().unwrap().to_owned()).or_default() += 1;
        }
    }
    (seen, v)
}

/// Waits until `query` returns exactly `want` (each line once), then checks that
/// nothing more arrives in the next second.
async fn expect_exactly(sx: &Sextant, query: &str, want: &[String]) -> serde_json::Value {
    let expected: HashMap<String, usize> = want.iter().map(|l| (l.clone(), 1)).collect();
    let mut last = HashMap::new();
    for _ in 0..200 {
        let (seen, _) = lines(sx, query).await;
        if seen == expected {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let (again, v) = lines(sx, query).await;
            assert_eq!(again, expected, "{query}: lines arrived twice");
            return v;
        }
        last = seen;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let missing: Vec<&String> = want.iter().filter(|l| !last.contains_key(*l)).collect();
    let extra: Vec<(&String, &usize)> = last.iter().filter(|(l, n)| expected.get(*l) != Some(*n)).collect();
    panic!("{query}: missing {missing:?}; unexpected or repeated {extra:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn python_logging_loki_pushes_json() {
    let dir = tempfile::tempdir().unwrap();
    let sx = Sextant::start(&dir.path().join("data"), Some(CONFIG)).await;
    run(
        Command::new(home_cache("sextant-venv/bin/python3"))
            .arg(scripts().join("python_logging_loki.py"))
            .arg(sx.url("/loki/api/v1/push"))
            .arg("50")
            .arg("py-7c1e"),
        "python-logging-loki",
    );
    let want: Vec<String> = (0..50)
        .map(|i| format!(r#"py-7c1e line {i} "quoted" \ back, comma"#))
        .collect();
    let v = expect_exactly(&sx, r#"{app="python-logging-loki"}"#, &want).await;
    // The client's own labels: severity and logger.
    let stream = &v["data"]["result"][0]["stream"];
    assert_eq!(stream["severity"], "warning", "{stream}");
    assert_eq!(stream["logger"], "checkout", "{stream}");
    assert_eq!(stream["detected_level"], "warn", "{stream}");
    // Found by text.
    let (seen, _) = lines(&sx, r#"{logger="checkout"} |= "line 42 ""#).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn winston_loki_pushes_snappy_protobuf() {
    let dir = tempfile::tempdir().unwrap();
    let sx = Sextant::start(&dir.path().join("data"), Some(CONFIG)).await;
    let node_modules = home_cache("sextant-node/node_modules");
    run(
        Command::new("node")
            .arg(scripts().join("winston_loki.js"))
            .arg(sx.url(""))
            .arg("200")
            .arg("wl-52d9")
            .env("NODE_PATH", &node_modules),
        "winston-loki",
    );
    let want: Vec<String> = (0..200)
        .map(|i| format!(r#"wl-52d9 line {i} "quoted" ünïcode"#))
        .collect();
    let v = expect_exactly(&sx, r#"{app="winston-loki"}"#, &want).await;
    assert_eq!(v["data"]["result"][0]["stream"]["level"], "info");
    let (seen, _) = lines(&sx, r#"{app="winston-loki"} |= "ünïcode" |~ "line 19[0-9] ""#).await;
    assert_eq!(seen.len(), 10, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn syslog_ng_ships_a_file_through_its_http_destination() {
    let syslog_ng = PathBuf::from("/usr/sbin/syslog-ng");
    assert!(
        syslog_ng.exists(),
        "syslog-ng is missing: run scripts/install-test-deps"
    );
    let dir = tempfile::tempdir().unwrap();
    let sx = Sextant::start(&dir.path().join("data"), Some(CONFIG)).await;
    let input = dir.path().join("app.log");
    let want: Vec<String> = (0..300)
        .map(|i| format!(r#"sng-0e44 line {i} level=info msg="with \"quotes\", commas and a \\ backslash""#))
        .collect();
    // Half before syslog-ng starts, half while it follows the file.
    std::fs::write(&input, want[..150].join("\n") + "\n").unwrap();
    // syslog-ng 3.38 has no JSON-escaping function: a one-item list through
    // format-json gives `{"v":["<escaped>"]}`, cut down to the array inside.
    let conf = format!(
        r#"@version: 3.38
options {{ stats-freq(0); }};
source s_file {{ file("{input}" follow-freq(0.1) flags(no-parse)); }};
destination d_loki {{
  http(
    url("{url}")
    method("POST")
    headers("Content-Type: application/json")
    batch-lines(50)
    batch-timeout(200)
    body-prefix('{{"streams":[{{"stream":{{"job":"syslog-ng","host":"test"}},"values":[')
    delimiter(",")
    body-suffix(']}}]}}')
    body("$(substr $(format-json --scope none v=list($(list-append ${{R_UNIXTIME}}${{R_USEC}}000 ${{MESSAGE}}))) 5 -1)")
  );
}};
log {{ source(s_file); destination(d_loki); }};
"#,
        input = input.display(),
        url = sx.url("/loki/api/v1/push"),
    );
    let conf_path = dir.path().join("syslog-ng.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut child = Command::new(&syslog_ng)
        .arg("-F")
        .arg("--no-caps")
        .arg("-f")
        .arg(&conf_path)
        .arg("-R")
        .arg(dir.path().join("syslog-ng.persist"))
        .arg("-p")
        .arg(dir.path().join("syslog-ng.pid"))
        .arg("-c")
        .arg(dir.path().join("syslog-ng.ctl"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("syslog-ng.stderr")).unwrap())
        .spawn()
        .expect("start syslog-ng");
    wait_for("syslog-ng to ship the first half", Duration::from_secs(20), || {
        let sx = &sx;
        async move { (lines(sx, r#"{job="syslog-ng"}"#).await.0.len() >= 150).then_some(()) }
    })
    .await;
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&input).unwrap();
        f.write_all((want[150..].join("\n") + "\n").as_bytes()).unwrap();
    }
    let v = expect_exactly(&sx, r#"{job="syslog-ng"}"#, &want).await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(v["data"]["result"][0]["stream"]["host"], "test");
    // The logfmt in the lines parses, quotes and all.
    let (seen, _) = lines(
        &sx,
        r#"{job="syslog-ng"} |= "line 299 " | logfmt | msg = `with "quotes", commas and a \ backslash`"#,
    )
    .await;
    assert_eq!(seen.len(), 1, "{seen:?}");
}
