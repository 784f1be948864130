//! Real Grafana dashboards (`../shared/conformance/dashboards/`: Node Exporter Full, the
//! node-mixin ones, Sloth's and Pyrra's) against Sextant and against Prometheus 2.42 at
//! the same time. Prometheus scrapes Debian's node_exporter and itself; Sextant scrapes
//! its built-in node collector under the same job name and the same Prometheus; both
//! load the dashboards' rule files. Every expression of every dashboard (panel targets
//! and query variables, Grafana's variables substituted alike for both) must get the
//! same verdict from both: succeeds or not, and returns data or not (asked up to three
//! more times, a scrape interval apart, when the data depends on the moment).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::{Peer, Sextant, client, free_port, peer_binary, start_prometheus, wait_for, wait_ready};

/// How a dashboard runs an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    /// A panel target or a query variable, as an instant query.
    Instant,
    /// A panel target drawn as a graph, as a range query.
    Range,
}

/// Every expression a dashboard runs, with Grafana's variables substituted, and the
/// modes it runs in. Query variables (`label_values(m{...}, l)`, `query_result(e)`)
/// become their selector or expression.
pub fn expressions(dashboard: &Value) -> BTreeMap<String, Vec<Mode>> {
    let vars = variables(dashboard);
    let mut out: BTreeMap<String, Vec<Mode>> = BTreeMap::new();
    let mut add = |expr: &str, mode: Mode| {
        let e = substitute(expr, &vars);
        if e.trim().is_empty() {
            return;
        }
        let modes = out.entry(e).or_default();
        if !modes.contains(&mode) {
            modes.push(mode);
            modes.sort();
        }
    };
    let mut panels = Vec::new();
    collect_panels(dashboard.get("panels"), &mut panels);
    for row in dashboard["rows"].as_array().into_iter().flatten() {
        collect_panels(row.get("panels"), &mut panels);
    }
    for p in panels {
        for t in p["targets"].as_array().into_iter().flatten() {
            let Some(expr) = t["expr"].as_str() else { continue };
            let instant_only = t["instant"].as_bool() == Some(true) && t["range"].as_bool() != Some(true);
            add(expr, Mode::Instant);
            if !instant_only && p["type"].as_str() != Some("table") {
                add(expr, Mode::Range);
            }
        }
    }
    for v in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"].as_str() != Some("query") {
            continue;
        }
        let q = match &v["query"] {
            Value::String(s) => s.clone(),
            other => other["query"].as_str().unwrap_or_default().to_owned(),
        };
        if let Some(e) = variable_expression(&q) {
            add(&e, Mode::Instant);
        }
    }
    out
}

fn collect_panels<'a>(panels: Option<&'a Value>, out: &mut Vec<&'a Value>) {
    for p in panels.and_then(Value::as_array).into_iter().flatten() {
        out.push(p);
        collect_panels(p.get("panels"), out);
    }
}

/// The PromQL a query variable runs: `label_values(sel, l)` reads the series of `sel`,
/// `query_result(e)` evaluates `e`; `label_values(l)` alone has no expression.
fn variable_expression(q: &str) -> Option<String> {
    let q = q.trim();
    if let Some(inner) = q.strip_prefix("label_values(").and_then(|r| r.strip_suffix(')')) {
        let comma = inner.rfind(',')?;
        return Some(inner[..comma].trim().to_owned());
    }
    if let Some(inner) = q.strip_prefix("query_result(").and_then(|r| r.strip_suffix(')')) {
        return Some(inner.trim().to_owned());
    }
    None
}

/// Values for the dashboard's variables: a query variable matches every value (its
/// `allValue` where it has one), an interval, custom or text box variable takes its
/// current value; Grafana's `$__rate_interval` is 1m (four 15 s scrape intervals).
fn variables(dashboard: &Value) -> BTreeMap<String, (String, bool)> {
    let mut vars = BTreeMap::new();
    for v in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or_default().to_owned();
        let entry = match v["type"].as_str() {
            Some("query") => (v["allValue"].as_str().unwrap_or(".+").to_owned(), true),
            Some("datasource") => continue,
            _ => {
                let current = &v["current"]["value"];
                let value = match current {
                    Value::String(s) => s.clone(),
                    Value::Array(a) => a.first().and_then(Value::as_str).unwrap_or_default().to_owned(),
                    _ => v["query"]
                        .as_str()
                        .unwrap_or_default()
                        .split(',')
                        .next()
                        .unwrap_or("")
                        .to_owned(),
                };
                (value, false)
            }
        };
        vars.insert(name, entry);
    }
    vars.insert("__rate_interval".into(), ("1m".into(), false));
    vars.insert("__interval".into(), ("15s".into(), false));
    // `${__to:date:M}`: the month of the dashboard's end time (now), 1-12, in UTC.
    let (_, month, _) = sextant_model::time::civil_from_days(sextant_model::time::now_ms().div_euclid(86_400_000));
    vars.insert("__to:date:M".into(), (month.to_string(), false));
    vars
}

/// Replaces `$v` and `${v}`; a regex-valued (query) variable inside an equality matcher
/// turns the matcher into a regex one (`x="$v"` → `x=~".+"`), as Grafana does for
/// multi-value variables.
fn substitute(expr: &str, vars: &BTreeMap<String, (String, bool)>) -> String {
    let mut s = expr.to_owned();
    // Longest names first, so `$node` does not eat the start of `$nodename`.
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for name in names {
        let (value, regex) = &vars[name];
        for token in [format!("${{{name}}}"), format!("${name}")] {
            if *regex {
                s = s.replace(&format!("!=\"{token}\""), &format!("!~\"{value}\""));
                s = s.replace(&format!("=\"{token}\""), &format!("=~\"{value}\""));
            }
            s = s.replace(&token, value);
        }
    }
    s
}

/// The verdict of one query: whether it succeeded, and whether it returned data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Verdict {
    ok: bool,
    data: bool,
}

async fn verdict(http: &reqwest::Client, base: &str, expr: &str, mode: Mode, at: f64) -> Verdict {
    let (path, params): (&str, Vec<(&str, String)>) = match mode {
        Mode::Instant => ("query", vec![("query", expr.to_owned()), ("time", at.to_string())]),
        Mode::Range => (
            "query_range",
            vec![
                ("query", expr.to_owned()),
                ("start", (at - 300.0).to_string()),
                ("end", at.to_string()),
                ("step", "15".to_owned()),
            ],
        ),
    };
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let resp = http
        .post(format!("{base}/api/v1/{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap_or_else(|e| panic!("query {expr:?} to {base}: {e}"));
    let body: Value = serde_json::from_str(&resp.text().await.unwrap_or_default()).unwrap_or(Value::Null);
    let ok = body["status"] == "success";
    let data = match &body["data"]["result"] {
        Value::Array(a) => !a.is_empty(),
        Value::Null => false,
        _ => true, // a scalar or a string
    };
    Verdict { ok, data }
}

fn dashboards_dir() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("../../../shared/conformance/dashboards")
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboards_answer_as_prometheus_scraping_node_exporter() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dashboards_dir().join("rules");
    let rule_files: Vec<String> = ["node-mixin-rules.yml", "sloth-getting-started.yml", "pyrra-generic.yml"]
        .iter()
        .map(|f| format!("'{}'", rules.join(f).display()))
        .collect();
    let rule_files = rule_files.join(", ");

    let ne_port = free_port();
    let _ne = Peer(
        std::process::Command::new(peer_binary("prometheus-node-exporter", "prometheus-node-exporter"))
            .arg(format!("--web.listen-address=127.0.0.1:{ne_port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let prom_port = free_port();
    let global = "global: {scrape_interval: 5s, evaluation_interval: 5s}";
    let _prom = start_prometheus(
        dir.path(),
        prom_port,
        &format!(
            "{global}\nrule_files: [{rule_files}]\nscrape_configs:\n\
             \x20 - job_name: node-exporter\n    static_configs: [{{targets: ['127.0.0.1:{ne_port}']}}]\n\
             \x20 - job_name: prometheus\n    static_configs: [{{targets: ['127.0.0.1:{prom_port}']}}]\n"
        ),
        &[],
    );
    let sx = Sextant::start(
        &dir.path().join("data"),
        Some(&format!(
            "{global}\nrule_files: [{rule_files}]\nscrape_configs:\n\
             \x20 - job_name: node-exporter\n    metrics_path: /node/metrics\n    static_configs: [{{targets: ['{{{{LISTEN}}}}']}}]\n\
             \x20 - job_name: prometheus\n    static_configs: [{{targets: ['127.0.0.1:{prom_port}']}}]\n"
        )),
    )
    .await;
    let prom = format!("http://127.0.0.1:{prom_port}");
    wait_ready("prometheus", &format!("{prom}/-/ready")).await;

    // Enough scrapes and rule evaluations for 1m rates and the rules built on them.
    let http = client();
    tokio::time::sleep(Duration::from_secs(70)).await;
    for base in [prom.clone(), sx.url("")] {
        let http = http.clone();
        wait_for("node data", Duration::from_secs(30), || {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let v = verdict(&http, &base, "node_load1", Mode::Instant, now()).await;
                v.data.then_some(())
            }
        })
        .await;
    }

    let at = now();
    let sextant = sx.url("");
    let mut mismatches = Vec::new();
    let (mut total, mut with_data, mut same_data) = (0, 0, 0);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dashboards_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for file in &files {
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let (mut n, mut d, mut same) = (0, 0, 0);
        for (expr, modes) in expressions(&dashboard) {
            for mode in modes {
                let (mut want, mut got) = tokio::join!(
                    verdict(&http, &prom, &expr, mode, at),
                    verdict(&http, &sextant, &expr, mode, at)
                );
                // Data that depends on the moment (`rate(major faults) != 0`) can differ
                // between two scrapes seconds apart: ask again a scrape interval later,
                // both at the same new time. A missing metric stays missing.
                for _ in 0..3 {
                    if want == got {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(6)).await;
                    let later = now();
                    (want, got) = tokio::join!(
                        verdict(&http, &prom, &expr, mode, later),
                        verdict(&http, &sextant, &expr, mode, later)
                    );
                }
                n += 1;
                if want.data {
                    d += 1;
                    if got.data {
                        same += 1;
                    }
                }
                if want != got {
                    mismatches.push(format!(
                        "{name} {mode:?} {expr}\n    prometheus {want:?}, sextant {got:?}"
                    ));
                }
            }
        }
        eprintln!("{name}: {n} queries, {same}/{d} with data on Prometheus have data on Sextant");
        total += n;
        with_data += d;
        same_data += same;
    }
    eprintln!(
        "dashboards: {total} queries, {same_data}/{with_data} with data on Prometheus have data on Sextant, {} verdicts differ",
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "verdicts that differ:\n{}\nsextant log:\n{}",
        mismatches.join("\n"),
        sx.log()
    );
    assert!(total > 600, "the dashboards yielded only {total} queries");
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn variables_are_substituted_as_grafana_does() {
    let d: Value = serde_json::json!({
        "templating": {"list": [
            {"name": "job", "type": "query", "query": "label_values(node_uname_info, job)"},
            {"name": "node", "type": "query", "query": "label_values(node_uname_info{job=\"$job\"}, instance)"},
            {"name": "nodename", "type": "query", "query": {"query": "label_values(x, nodename)"}},
            {"name": "cluster", "type": "query", "allValue": ".*", "query": "label_values(y, cluster)"},
            {"name": "w", "type": "interval", "current": {"value": "5m"}},
        ]},
        "panels": [{"type": "row", "panels": [{"type": "timeseries", "targets": [
            {"expr": "rate(a{instance=\"$node\",n=\"$nodename\",c=~\"$cluster\"}[$__rate_interval])"},
            {"expr": "b[${w}]", "instant": true},
        ]}]}],
    });
    let e = expressions(&d);
    assert_eq!(
        e["rate(a{instance=~\".+\",n=~\".+\",c=~\".*\"}[1m])"],
        vec![Mode::Instant, Mode::Range]
    );
    assert_eq!(e["b[5m]"], vec![Mode::Instant]);
    assert_eq!(e["node_uname_info{job=~\".+\"}"], vec![Mode::Instant]);
    assert_eq!(e["node_uname_info"], vec![Mode::Instant]);
    assert_eq!(e["x"], vec![Mode::Instant]);
}
