//! The query API beside the real Prometheus 2.42: identical samples are pushed into
//! both over remote_write, then the calls Grafana's Prometheus data source makes (on
//! "Save & test", in the query editor's metric browser and on a dashboard load) are
//! replayed against both and the answers compared, along with error shapes,
//! recording rules and `/api/v1/rules`.

use std::process::Command;
use std::time::Duration;

use crate::support::{Sextant, client, free_port, start_prometheus, wait_for, wait_ready};
use serde_json::Value;
use sextant_collect::remote_write::{LabelProto, SampleProto, TimeSeries, WriteRequest, encode};

const STEP_MS: i64 = 15_000;
const POINTS: i64 = 41;

const RULES: &str = r#"groups:
  - name: api
    interval: 1s
    rules:
      - record: code:http_requests:rate1m
        expr: sum by (code) (rate(http_requests_total[1m]))
      - record: job:up:count
        expr: count by (job) (http_requests_total)
        labels: {source: rule}
"#;

fn series(name: &str, labels: &[(&str, &str)], base: i64, f: impl Fn(i64) -> f64) -> TimeSeries {
    let mut l = vec![LabelProto {
        name: "__name__".into(),
        value: name.into(),
    }];
    l.extend(labels.iter().map(|(k, v)| LabelProto {
        name: (*k).into(),
        value: (*v).into(),
    }));
    l.sort_by(|a, b| a.name.cmp(&b.name));
    TimeSeries {
        labels: l,
        samples: (0..POINTS)
            .map(|i| SampleProto {
                value: f(i),
                timestamp: base + i * STEP_MS,
            })
            .collect(),
        exemplars: vec![],
    }
}

/// Deterministic workload: counters (one with a reset), a gauge, a classic histogram.
fn workload(base: i64) -> WriteRequest {
    let mut ts = vec![
        series("http_requests_total", &[("job", "api"), ("code", "200")], base, |i| {
            10.0 * i as f64
        }),
        series("http_requests_total", &[("job", "api"), ("code", "500")], base, |i| {
            (i % 17) as f64
        }),
        series("http_requests_total", &[("job", "web"), ("code", "200")], base, |i| {
            3.5 * i as f64
        }),
        series("temperature_celsius", &[("room", "lab")], base, |i| {
            20.0 + (i as f64 / 3.0).sin()
        }),
    ];
    for (le, share) in [("0.1", 0.5), ("0.5", 0.8), ("1", 0.95), ("+Inf", 1.0)] {
        ts.push(series(
            "req_duration_seconds_bucket",
            &[("job", "api"), ("le", le)],
            base,
            move |i| (share * 40.0 * i as f64).floor(),
        ));
    }
    WriteRequest {
        timeseries: ts,
        metadata: vec![],
    }
}

async fn push(url: &str, wr: &WriteRequest) {
    let r = client()
        .post(url)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(encode(wr))
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert!(status.is_success(), "{url}: {status} {}", r.text().await.unwrap());
}

/// One request as Grafana sends it: GET with a query string, or POST with a form.
struct Call {
    method: &'static str,
    path: &'static str,
    params: Vec<(&'static str, String)>,
    /// Compare `data` exactly; otherwise only its shape (keys and types).
    exact: bool,
}

/// A call; `exact` as in [`Call::exact`].
fn call(method: &'static str, path: &'static str, params: Vec<(&'static str, String)>, exact: bool) -> Call {
    Call {
        method,
        path,
        params,
        exact,
    }
}

async fn send(base: &str, c: &Call) -> (u16, Value) {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(c.params.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    let r = if c.method == "GET" {
        client().get(format!("{base}{}?{query}", c.path)).send().await
    } else {
        client()
            .post(format!("{base}{}", c.path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(query)
            .send()
            .await
    }
    .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} {}: {e}: {text}", c.method, c.path));
    (status, v)
}

/// Keys and value types, recursively: what a client relies on.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().take(1).map(shape).collect()),
        Value::String(_) => Value::String("string".into()),
        Value::Number(_) => Value::String("number".into()),
        Value::Bool(_) => Value::String("bool".into()),
        Value::Null => Value::Null,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn grafana_calls_answer_as_prometheus_does() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("api.rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let sx = Sextant::start(
        &dir.path().join("data"),
        Some(&format!(
            "global:\n  evaluation_interval: 1s\nrule_files: ['{}']\nstorage:\n  retention: 0s\n",
            rules.display()
        )),
    )
    .await;
    let prom_port = free_port();
    let _prom = start_prometheus(
        dir.path(),
        prom_port,
        &format!(
            "global:\n  evaluation_interval: 1s\nrule_files: ['{}']\n",
            rules.display()
        ),
        &["--web.enable-remote-write-receiver"],
    );
    let prom = format!("http://127.0.0.1:{prom_port}");
    wait_ready("prometheus to become ready", &format!("{prom}/-/ready")).await;

    // Ten minutes of history ending now, aligned to the step.
    let now = sextant_model::time::now_ms();
    let end = now - now % STEP_MS;
    let base = end - (POINTS - 1) * STEP_MS;
    let wr = workload(base);
    push(&sx.url("/api/v1/write"), &wr).await;
    push(&format!("{prom}/api/v1/write"), &wr).await;

    let (s, e) = (format!("{}", base / 1000), format!("{}", end / 1000));
    // The metric browser asks for the last hour up to the moment it opens, which comes
    // after the recording rules below have run. (Prometheus answers these calls per
    // block: any series of an overlapping block counts; Sextant by each series' own
    // time range. With a range reaching "now" the two agree.)
    let (bs, be) = (format!("{}", (now - 3_600_000) / 1000), format!("{}", now / 1000 + 60));
    let t = format!("{}", (end - 30_000) as f64 / 1000.0);
    let range = |q: &str| -> Vec<(&'static str, String)> {
        vec![
            ("query", q.to_string()),
            ("start", s.clone()),
            ("end", format!("{}", (end - 60_000) / 1000)),
            ("step", "15".into()),
        ]
    };
    let calls = vec![
        // "Save & test".
        call("GET", "/api/v1/status/buildinfo", vec![], false),
        call(
            "POST",
            "/api/v1/query",
            vec![("query", "1+1".into()), ("time", t.clone())],
            true,
        ),
        // The metric browser.
        call(
            "GET",
            "/api/v1/labels",
            vec![("start", bs.clone()), ("end", be.clone())],
            true,
        ),
        call(
            "GET",
            "/api/v1/label/__name__/values",
            vec![("start", bs.clone()), ("end", be.clone())],
            false,
        ),
        call(
            "GET",
            "/api/v1/label/job/values",
            vec![("start", bs.clone()), ("end", be.clone())],
            true,
        ),
        call(
            "GET",
            "/api/v1/label/code/values",
            vec![
                ("match[]", "http_requests_total{job=\"api\"}".into()),
                ("start", bs.clone()),
                ("end", be.clone()),
            ],
            true,
        ),
        call(
            "GET",
            "/api/v1/series",
            vec![
                ("match[]", "http_requests_total".into()),
                ("start", bs.clone()),
                ("end", be.clone()),
            ],
            true,
        ),
        call("GET", "/api/v1/metadata", vec![], true),
        // A dashboard load.
        call(
            "POST",
            "/api/v1/query_range",
            range("sum by (code) (rate(http_requests_total[1m]))"),
            true,
        ),
        call(
            "POST",
            "/api/v1/query_range",
            range("histogram_quantile(0.9, sum by (le) (rate(req_duration_seconds_bucket[2m])))"),
            true,
        ),
        call(
            "POST",
            "/api/v1/query_range",
            range("avg_over_time(temperature_celsius[1m])"),
            true,
        ),
        call(
            "POST",
            "/api/v1/query_range",
            range("increase(http_requests_total{code=\"500\"}[2m])"),
            true,
        ),
        call(
            "POST",
            "/api/v1/query",
            vec![("query", "topk(2, http_requests_total)".into()), ("time", t.clone())],
            true,
        ),
        call(
            "POST",
            "/api/v1/query",
            vec![("query", "http_requests_total[1m]".into()), ("time", t.clone())],
            true,
        ),
        call(
            "POST",
            "/api/v1/query",
            vec![("query", "\"a string\"".into()), ("time", t.clone())],
            true,
        ),
        call(
            "POST",
            "/api/v1/query_exemplars",
            vec![
                ("query", "http_requests_total".into()),
                ("start", s.clone()),
                ("end", e.clone()),
            ],
            true,
        ),
        call(
            "GET",
            "/api/v1/format_query",
            vec![("query", "sum(rate(x[5m]))by(job)".into())],
            true,
        ),
        // Errors Grafana shows to users: same status and errorType.
        call("POST", "/api/v1/query", vec![("query", "sum(".into())], false),
        call(
            "POST",
            "/api/v1/query_range",
            vec![
                ("query", "up".into()),
                ("start", s.clone()),
                ("end", e.clone()),
                ("step", "0".into()),
            ],
            false,
        ),
        call(
            "POST",
            "/api/v1/query_range",
            vec![
                ("query", "up".into()),
                ("start", e.clone()),
                ("end", s.clone()),
                ("step", "15".into()),
            ],
            false,
        ),
        call(
            "POST",
            "/api/v1/query_range",
            vec![
                ("query", "up".into()),
                ("start", "0".into()),
                ("end", e.clone()),
                ("step", "1".into()),
            ],
            false,
        ),
        call(
            "POST",
            "/api/v1/query",
            vec![
                ("query", "http_requests_total + on(job) http_requests_total".into()),
                ("time", t.clone()),
            ],
            false,
        ),
        call("POST", "/api/v1/query_range", vec![("query", "up".into())], false),
        // A range query of one step is still a matrix, and still refuses range vectors.
        call(
            "POST",
            "/api/v1/query_range",
            vec![
                ("query", "sum by (code) (http_requests_total)".into()),
                ("start", e.clone()),
                ("end", e.clone()),
                ("step", "15".into()),
            ],
            true,
        ),
        call(
            "POST",
            "/api/v1/query_range",
            vec![
                ("query", "http_requests_total[1m]".into()),
                ("start", e.clone()),
                ("end", e.clone()),
                ("step", "15".into()),
            ],
            false,
        ),
    ];
    // Both servers evaluate the same rule file; wait until each has recorded results
    // of the pushed data (a rule evaluated before the push succeeds with an empty
    // result), so the replayed calls see the same series.
    let rules_json = |base: String| async move {
        wait_for("rules evaluated", Duration::from_secs(30), || {
            let url = format!("{base}/api/v1/rules");
            let recorded = format!("{base}/api/v1/query?query=count(job:up:count)");
            async move {
                let v = crate::support::get_json(&url).await;
                let all_ok = v["data"]["groups"][0]["rules"]
                    .as_array()?
                    .iter()
                    .all(|r| r["health"] == "ok");
                let n = crate::support::get_json(&recorded).await;
                let both_jobs = n["data"]["result"][0]["value"][1] == "2";
                (all_ok && both_jobs).then_some(v)
            }
        })
        .await
    };
    let pr = rules_json(prom.clone()).await;
    let sr = rules_json(sx.url("")).await;
    let mut diffs = Vec::new();
    for c in &calls {
        let (ps, pv) = send(&prom, c).await;
        let (ss, sv) = send(&sx.url(""), c).await;
        let what = format!("{} {} {:?}", c.method, c.path, c.params.first().map(|p| &p.1));
        if ps != ss || pv["status"] != sv["status"] || pv["errorType"] != sv["errorType"] {
            diffs.push(format!("{what}: prometheus {ps} {pv}\n    sextant {ss} {sv}"));
            continue;
        }
        let same = if c.exact {
            pv["data"] == sv["data"]
        } else {
            shape(&pv["data"]) == shape(&sv["data"])
        };
        if !same {
            diffs.push(format!(
                "{what}:\n    prometheus {}\n    sextant    {}",
                pv["data"], sv["data"]
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} of {} calls differ:\n{}",
        diffs.len(),
        calls.len(),
        diffs.join("\n")
    );

    // Recording rules: the stored results and /api/v1/rules agree.
    assert_eq!(shape(&pr["data"]), shape(&sr["data"]), "rules shapes:\n{pr}\n{sr}");
    let pick = |v: &Value| -> Vec<(Value, Value, Value, Value)> {
        v["data"]["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["name"].clone(),
                    r["query"].clone(),
                    r["labels"].clone(),
                    r["type"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(pick(&pr), pick(&sr));
    let ex = call("POST", "/api/v1/query", vec![("query", "job:up:count".into())], true);
    let (_, pv) = send(&prom, &ex).await;
    let (_, sv) = send(&sx.url(""), &ex).await;
    let strip = |v: &Value| -> Vec<(Value, Value)> {
        v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["metric"].clone(), s["value"][1].clone()))
            .collect()
    };
    assert_eq!(strip(&pv), strip(&sv));
    assert_eq!(strip(&sv).len(), 2, "{sv}");
}

#[tokio::test(flavor = "multi_thread")]
async fn query_command_prints_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let sx = Sextant::start(&dir.path().join("data"), Some("storage:\n  retention: 0s\n")).await;
    let now = sextant_model::time::now_ms();
    push(&sx.url("/api/v1/write"), &workload(now - (POINTS - 1) * STEP_MS)).await;
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
            .arg("query")
            .arg("--server")
            .arg(sx.url(""))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, out, _) = run(&["sum by (job) (http_requests_total)"]);
    assert!(ok);
    assert_eq!(out, "{job=\"api\"}  406\n{job=\"web\"}  140\n");
    let (ok, out, _) = run(&["-o", "json", "count(http_requests_total)"]);
    assert!(ok);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["resultType"], "vector");
    assert_eq!(v["result"][0]["value"][1], "3");
    let start = format!("{}", (now - 60_000) / 1000);
    let (ok, out, _) = run(&["--start", &start, "--step", "30s", "temperature_celsius"]);
    assert!(ok, "{out}");
    assert!(out.starts_with("temperature_celsius{room=\"lab\"}\n  "), "{out}");
    let (ok, _, err) = run(&["sum("]);
    assert!(!ok);
    assert!(err.contains("bad_data"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn query_limits_answer_with_prometheus_errors() {
    let dir = tempfile::tempdir().unwrap();
    let sx = Sextant::start(
        &dir.path().join("data"),
        Some("storage:\n  retention: 0s\nserver:\n  query_max_samples: 100\n"),
    )
    .await;
    let now = sextant_model::time::now_ms();
    push(&sx.url("/api/v1/write"), &workload(now - (POINTS - 1) * STEP_MS)).await;
    let post = |path, params| call("POST", path, params, true);
    // 3 counters x 41 points is more than 100 samples.
    let (status, v) = send(
        &sx.url(""),
        &post(
            "/api/v1/query",
            vec![("query", "sum_over_time(http_requests_total[15m])".into())],
        ),
    )
    .await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["errorType"], "execution");
    assert!(v["error"].as_str().unwrap().contains("too many samples"), "{v}");
    // Within the limit the same server answers.
    let (status, v) = send(
        &sx.url(""),
        &post(
            "/api/v1/query",
            vec![("query", "http_requests_total{code=\"500\"}".into())],
        ),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    // A zero timeout times out, with Prometheus' type and status.
    let (status, v) = send(
        &sx.url(""),
        &post("/api/v1/query", vec![("query", "up".into()), ("timeout", "0s".into())]),
    )
    .await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["errorType"], "timeout");
    // Over 11,000 points per series is refused before evaluation.
    let (status, v) = send(
        &sx.url(""),
        &post(
            "/api/v1/query_range",
            vec![
                ("query", "up".into()),
                ("start", "0".into()),
                ("end", "11001".into()),
                ("step", "1".into()),
            ],
        ),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("11,000 points"), "{v}");
}

/// `global.query_log_file`: each API query appends a JSON line in Prometheus' shape.
#[tokio::test(flavor = "multi_thread")]
async fn query_log_records_api_queries() {
    let dir = tempfile::tempdir().unwrap();
    let sx = Sextant::start(
        &dir.path().join("data"),
        Some("global: {query_log_file: queries.log}\nscrape_configs: []\n"),
    )
    .await;
    crate::support::get_json(&sx.url("/api/v1/query?query=1%2B1&time=1700000000")).await;
    crate::support::get_json(&sx.url("/api/v1/query_range?query=up&start=1700000000&end=1700000060&step=15")).await;
    let log = dir.path().join("queries.log");
    let lines: Vec<Value> = wait_for("two query log lines", Duration::from_secs(10), || {
        let log = log.clone();
        async move {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            (lines.len() == 2).then_some(lines)
        }
    })
    .await;
    let instant = lines
        .iter()
        .find(|l| l["params"]["query"] == "1+1")
        .expect("instant query logged");
    assert_eq!(instant["params"]["start"], "2023-11-14T22:13:20.000Z");
    assert_eq!(instant["params"]["step"], 0);
    assert_eq!(instant["httpRequest"]["path"], "/api/v1/query");
    assert!(instant["stats"]["timings"]["evalTotalTime"].is_number());
    let range = lines
        .iter()
        .find(|l| l["params"]["query"] == "up")
        .expect("range query logged");
    assert_eq!(range["params"]["step"], 15);
    assert_eq!(range["params"]["end"], "2023-11-14T22:14:20.000Z");
}
