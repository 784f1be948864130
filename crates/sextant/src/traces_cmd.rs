//! `sextant traces`: searches traces with TraceQL and prints a trace as a span
//! tree, through Tempo's HTTP API (Sextant's or Tempo's own).

use std::collections::HashMap;
use std::process::ExitCode;

use prost::Message;
use serde_json::Value;
use sextant_model::time::parse_duration;
use sextant_otlp::proto::trace::v1::{Span, TracesData};

/// Arguments of `sextant traces`.
#[derive(clap::Args)]
pub struct TracesArgs {
    #[command(subcommand)]
    command: TracesCommand,
    /// Server to ask.
    #[arg(long, global = true, default_value = "http://127.0.0.1:9470")]
    server: String,
    /// Output: readable text, or the API's JSON.
    #[arg(short = 'o', long, global = true, default_value = "text", value_parser = ["text", "json"])]
    output: String,
}

#[derive(clap::Subcommand)]
enum TracesCommand {
    /// Traces with spans matching a TraceQL filter, newest first, e.g.
    /// `{ resource.service.name = "cart" && duration > 100ms }`.
    Search {
        /// The TraceQL query.
        query: String,
        /// How far back to look.
        #[arg(long, default_value = "1h")]
        since: String,
        /// Most traces to print.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One trace as a tree of spans with their durations.
    Get {
        /// The trace id (hex).
        id: String,
    },
}

pub fn run(args: TracesArgs) -> ExitCode {
    match traces(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sextant traces: {e}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout)] // command output
fn out(text: &str) {
    println!("{text}");
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn time(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ns.to_string())
}

/// A duration in the unit that reads best.
fn human(ns: i64) -> String {
    let ns = ns as f64;
    if ns >= 1e9 {
        format!("{:.2}s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.1}ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1}µs", ns / 1e3)
    } else {
        format!("{ns}ns")
    }
}

fn traces(args: &TracesArgs) -> Result<(), String> {
    let base = args.server.trim_end_matches('/');
    match &args.command {
        TracesCommand::Search { query, since, limit } => {
            let since = parse_duration(since).map_err(|e| format!("--since: {e}"))?;
            let end = now_s();
            let start = end - since.as_secs() as i64;
            let q = form_urlencoded::Serializer::new(String::new())
                .append_pair("q", query)
                .append_pair("limit", &limit.to_string())
                .append_pair("start", &start.to_string())
                .append_pair("end", &(end + 1).to_string())
                .finish();
            let (status, body) = crate::client::get_bytes(&format!("{base}/api/search?{q}"), "application/json")?;
            if status != 200 {
                return Err(String::from_utf8_lossy(&body).trim().to_owned());
            }
            let v: Value = serde_json::from_slice(&body).map_err(|e| format!("not a Tempo search response: {e}"))?;
            if args.output == "json" {
                out(&serde_json::to_string_pretty(&v).unwrap_or_default());
                return Ok(());
            }
            let rows = v["traces"].as_array().cloned().unwrap_or_default();
            if rows.is_empty() {
                out("no traces found");
                return Ok(());
            }
            let mut table = vec![[
                "TRACE ID".to_string(),
                "START".into(),
                "DURATION".into(),
                "ROOT SERVICE".into(),
                "ROOT NAME".into(),
                "MATCHED".into(),
            ]];
            for t in rows {
                let start: i64 = t["startTimeUnixNano"].as_str().unwrap_or("0").parse().unwrap_or(0);
                let ms = t["durationMs"].as_i64().unwrap_or(0);
                table.push([
                    t["traceID"].as_str().unwrap_or("").to_owned(),
                    time(start),
                    human(ms * 1_000_000),
                    t["rootServiceName"].as_str().unwrap_or("").to_owned(),
                    t["rootTraceName"].as_str().unwrap_or("").to_owned(),
                    t["spanSets"][0]["matched"].as_u64().unwrap_or(0).to_string(),
                ]);
            }
            let widths: Vec<usize> = (0..6)
                .map(|i| table.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
                .collect();
            for r in table {
                let line: Vec<String> = r
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
                    .collect();
                out(line.join("  ").trim_end());
            }
            Ok(())
        }
        TracesCommand::Get { id } => {
            let (status, body) = crate::client::get_bytes(&format!("{base}/api/traces/{id}"), "application/protobuf")?;
            match status {
                200 => {}
                404 => return Err(format!("trace {id} not found")),
                _ => return Err(String::from_utf8_lossy(&body).trim().to_owned()),
            }
            let data = TracesData::decode(body.as_slice()).map_err(|e| format!("not a Tempo trace: {e}"))?;
            if args.output == "json" {
                out(&serde_json::to_string_pretty(&serde_json::json!({
                    "batches": sextant_otlp::json::resource_spans_json(&data.resource_spans)
                }))
                .unwrap_or_default());
                return Ok(());
            }
            for line in span_tree(&data) {
                out(&line);
            }
            Ok(())
        }
    }
}

/// The trace as indented lines: each span under its parent, siblings by start,
/// with service, kind, duration and offset from the trace's start; spans whose
/// parent is missing are shown at the top level.
fn span_tree(data: &TracesData) -> Vec<String> {
    let mut spans: Vec<(&Span, String)> = Vec::new();
    for rs in &data.resource_spans {
        let service = rs
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .and_then(|kv| kv.value.as_ref())
            .map(sextant_otlp::any_value_string)
            .unwrap_or_else(|| "unknown_service".into());
        for ss in &rs.scope_spans {
            for s in &ss.spans {
                spans.push((s, service.clone()));
            }
        }
    }
    if spans.is_empty() {
        return vec!["no spans".into()];
    }
    spans.sort_by_key(|(s, _)| s.start_time_unix_nano);
    let ids: std::collections::HashSet<&[u8]> = spans.iter().map(|(s, _)| s.span_id.as_slice()).collect();
    let mut children: HashMap<&[u8], Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, (s, _)) in spans.iter().enumerate() {
        if s.parent_span_id.is_empty() || !ids.contains(s.parent_span_id.as_slice()) {
            roots.push(i);
        } else {
            children.entry(s.parent_span_id.as_slice()).or_default().push(i);
        }
    }
    let t0 = spans.iter().map(|(s, _)| s.start_time_unix_nano).min().unwrap_or(0);
    let t1 = spans.iter().map(|(s, _)| s.end_time_unix_nano).max().unwrap_or(0);
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let lines = vec![format!(
        "trace {}  {} spans  {}  started {}",
        hex(&spans[0].0.trace_id),
        spans.len(),
        human(t1.saturating_sub(t0) as i64),
        time(t0 as i64)
    )];
    struct Tree<'a> {
        spans: &'a [(&'a Span, String)],
        children: &'a HashMap<&'a [u8], Vec<usize>>,
        t0: u64,
        lines: Vec<String>,
    }
    impl Tree<'_> {
        fn walk(&mut self, i: usize, prefix: &str, last: bool, top: bool) {
            let (s, service) = &self.spans[i];
            let kind = sextant_traces::span::kind_name(s.kind as i8);
            let status = match s.status.as_ref().map(|st| st.code) {
                Some(2) => "  ERROR",
                _ => "",
            };
            let branch = if top {
                ""
            } else if last {
                "└─ "
            } else {
                "├─ "
            };
            self.lines.push(format!(
                "{prefix}{branch}{}  [{service} {kind}]  {}  +{}{status}",
                s.name,
                human(s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano) as i64),
                human(s.start_time_unix_nano.saturating_sub(self.t0) as i64),
            ));
            let next = if top {
                prefix.to_owned()
            } else if last {
                format!("{prefix}   ")
            } else {
                format!("{prefix}│  ")
            };
            if let Some(kids) = self.children.get(s.span_id.as_slice()) {
                for (n, k) in kids.iter().enumerate() {
                    self.walk(*k, &next, n + 1 == kids.len(), false);
                }
            }
        }
    }
    let mut tree = Tree {
        spans: &spans,
        children: &children,
        t0,
        lines,
    };
    for r in roots {
        tree.walk(r, "", true, true);
    }
    tree.lines
}
