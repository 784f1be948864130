//! `sextant logs`: runs LogQL against a running server's Loki API (Sextant's or
//! Loki's own) and prints entries with their time and labels, or metric results
//! as a table; `--follow` keeps polling for new entries.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;
use sextant_model::time::parse_duration;

/// Arguments of `sextant logs`.
#[derive(clap::Args)]
pub struct LogsArgs {
    /// The LogQL query, e.g. `{service_name="api"} |= "error"`.
    query: String,
    /// Server to ask.
    #[arg(long, default_value = "http://127.0.0.1:9470")]
    server: String,
    /// How far back to look.
    #[arg(long, default_value = "1h")]
    since: String,
    /// Most entries to print.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Oldest first (default: newest first, as Loki answers).
    #[arg(long)]
    forward: bool,
    /// Keep printing entries as they arrive.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Output: readable lines, or one JSON object per entry (`json`), or the
    /// API's JSON `data` for metric queries.
    #[arg(short = 'o', long, default_value = "text", value_parser = ["text", "json"])]
    output: String,
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

pub fn run(args: LogsArgs) -> ExitCode {
    match logs(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sextant logs: {e}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout)] // command output
fn out(text: &str) {
    println!("{text}");
}

fn get(rt: &tokio::runtime::Runtime, url: &str, params: &[(&str, String)]) -> Result<Value, String> {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    let full = format!("{url}?{query}");
    rt.block_on(async {
        let resp = reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| e.to_string())?
            .get(&full)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        if !status.is_success() {
            return Err(String::from_utf8_lossy(&bytes).trim().to_owned());
        }
        serde_json::from_slice::<Value>(&bytes).map_err(|e| format!("{url}: not a Loki API response: {e}"))
    })
}

/// RFC 3339 with milliseconds, UTC.
fn time_text(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|_| ns.to_string())
}

fn labels_text(v: &Value) -> String {
    let Some(m) = v.as_object() else { return "{}".into() };
    let sorted: BTreeMap<&String, &Value> = m.iter().collect();
    let parts: Vec<String> = sorted
        .iter()
        .map(|(k, v)| format!("{k}={:?}", v.as_str().unwrap_or("")))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// Entries of a streams result, ordered by time in the wanted direction.
fn entries(data: &Value, forward: bool) -> Vec<(i64, String, Value)> {
    let mut out = Vec::new();
    for s in data["result"].as_array().into_iter().flatten() {
        for v in s["values"].as_array().into_iter().flatten() {
            let ts = v[0].as_str().and_then(|t| t.parse::<i64>().ok()).unwrap_or(0);
            out.push((ts, v[1].as_str().unwrap_or("").to_owned(), s["stream"].clone()));
        }
    }
    out.sort_by_key(|(ts, _, _)| if forward { *ts } else { -*ts });
    out
}

fn print_entry(args: &LogsArgs, ts: i64, line: &str, labels: &Value) {
    if args.output == "json" {
        out(&serde_json::json!({"timestamp": time_text(ts), "labels": labels, "line": line}).to_string());
    } else {
        out(&format!("{} {} {line}", time_text(ts), labels_text(labels)));
    }
}

fn logs(args: &LogsArgs) -> Result<(), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let since = parse_duration(&args.since).map_err(|e| format!("--since: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let base = args.server.trim_end_matches('/');
    let url = format!("{base}/loki/api/v1/query_range");
    let end = now_ns();
    let start = end - since.as_nanos() as i64;
    let direction = if args.forward || args.follow {
        "forward"
    } else {
        "backward"
    };
    let body = get(
        &rt,
        &url,
        &[
            ("query", args.query.clone()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("limit", args.limit.to_string()),
            ("direction", direction.into()),
        ],
    )?;
    let data = &body["data"];
    if data["resultType"] != "streams" {
        if args.follow {
            return Err("--follow needs a log query, not a metric query".into());
        }
        if args.output == "json" {
            out(&serde_json::to_string_pretty(data).map_err(|e| e.to_string())?);
        } else {
            out(&crate::query_cmd::table(data));
        }
        return Ok(());
    }
    let first = entries(data, direction == "forward");
    let mut last = start;
    let mut seen_at_last: Vec<String> = Vec::new();
    for (ts, line, labels) in &first {
        print_entry(args, *ts, line, labels);
        if *ts > last {
            last = *ts;
            seen_at_last.clear();
        }
        if *ts == last {
            seen_at_last.push(format!("{labels}{line}"));
        }
    }
    if !args.follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let body = get(
            &rt,
            &url,
            &[
                ("query", args.query.clone()),
                ("start", last.to_string()),
                ("end", now_ns().to_string()),
                ("limit", "5000".into()),
                ("direction", "forward".into()),
            ],
        )?;
        for (ts, line, labels) in entries(&body["data"], true) {
            let key = format!("{labels}{line}");
            if ts == last && seen_at_last.contains(&key) {
                continue;
            }
            print_entry(args, ts, &line, &labels);
            if ts > last {
                last = ts;
                seen_at_last.clear();
            }
            seen_at_last.push(key);
        }
    }
}
