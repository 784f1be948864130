//! `sextant query`: runs PromQL against a running server's Prometheus API (Sextant's
//! or Prometheus' own) and prints a table or the JSON result.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;
use sextant_model::time::{now_ms, parse_api_time, parse_duration};

/// Arguments of `sextant query`.
#[derive(clap::Args)]
pub struct QueryArgs {
    /// The PromQL expression.
    expr: String,
    /// Server to ask.
    #[arg(long, default_value = "http://127.0.0.1:9470")]
    server: String,
    /// Evaluation time of an instant query (RFC 3339 or Unix seconds); default now.
    #[arg(long, conflicts_with_all = ["start", "end"])]
    time: Option<String>,
    /// Start of a range query (RFC 3339 or Unix seconds); makes the query a range query.
    #[arg(long)]
    start: Option<String>,
    /// End of a range query; default now.
    #[arg(long, requires = "start")]
    end: Option<String>,
    /// Step of a range query (`15s` or seconds); default: the range in about 250 steps.
    #[arg(long, requires = "start")]
    step: Option<String>,
    /// Output: a readable table, or the API's JSON `data`.
    #[arg(short = 'o', long, default_value = "table", value_parser = ["table", "json"])]
    output: String,
}

pub fn run(args: QueryArgs) -> ExitCode {
    match query(&args) {
        Ok(text) => {
            print_out(&text);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sextant query: {e}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout)] // command output
fn print_out(text: &str) {
    println!("{text}");
}

fn query(args: &QueryArgs) -> Result<String, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut form: Vec<(&str, String)> = vec![("query", args.expr.clone())];
    let path = match &args.start {
        None => {
            if let Some(t) = &args.time {
                form.push(("time", t.clone()));
            }
            "/api/v1/query"
        }
        Some(start) => {
            let s = parse_api_time(start).map_err(|e| format!("--start: {e}"))?;
            let e = match &args.end {
                Some(end) => parse_api_time(end).map_err(|e| format!("--end: {e}"))?,
                None => now_ms(),
            };
            let step = match &args.step {
                Some(step) => step.clone(),
                None => format!("{}ms", ((e - s) / 250).max(1000)),
            };
            if let Some(step) = &args.step
                && step.parse::<f64>().is_err()
            {
                parse_duration(step).map_err(|e| format!("--step: {e}"))?;
            }
            form.push(("start", start.clone()));
            form.push((
                "end",
                args.end.clone().unwrap_or_else(|| format!("{}", e as f64 / 1000.0)),
            ));
            form.push(("step", step));
            "/api/v1/query_range"
        }
    };
    let url = format!("{}{path}", args.server.trim_end_matches('/'));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let body: Value = rt.block_on(async {
        let resp = reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| e.to_string())?
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
                    .finish(),
            )
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let bytes = resp.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        serde_json::from_slice::<Value>(&bytes).map_err(|e| format!("{url}: not a Prometheus API response: {e}"))
    })?;
    if body["status"] != "success" {
        return Err(format!(
            "{}: {}",
            body["errorType"].as_str().unwrap_or("error"),
            body["error"].as_str().unwrap_or("unknown error")
        ));
    }
    let data = &body["data"];
    if args.output == "json" {
        return serde_json::to_string_pretty(data).map_err(|e| e.to_string());
    }
    Ok(table(data))
}

/// Formats a result as Prometheus' console does: one line per series.
pub fn table(data: &Value) -> String {
    let empty = Vec::new();
    let result = &data["result"];
    match data["resultType"].as_str().unwrap_or("") {
        "scalar" | "string" => result[1].as_str().unwrap_or("").to_string(),
        "vector" => {
            let rows: Vec<(String, String)> = result
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .map(|s| {
                    (
                        series_name(&s["metric"]),
                        s["value"][1].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect();
            if rows.is_empty() {
                return "(empty result)".into();
            }
            let width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
            rows.iter()
                .map(|(l, v)| format!("{l:width$}  {v}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
        "matrix" => {
            let series = result.as_array().unwrap_or(&empty);
            if series.is_empty() {
                return "(empty result)".into();
            }
            series
                .iter()
                .map(|s| {
                    let points: Vec<String> = s["values"]
                        .as_array()
                        .unwrap_or(&empty)
                        .iter()
                        .map(|p| format!("  {} @{}", p[1].as_str().unwrap_or(""), p[0]))
                        .collect();
                    format!("{}\n{}", series_name(&s["metric"]), points.join("\n"))
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
        other => format!("(unknown result type {other:?})"),
    }
}

fn series_name(metric: &Value) -> String {
    let Some(m) = metric.as_object() else {
        return "{}".into();
    };
    let name = m.get("__name__").and_then(Value::as_str).unwrap_or("");
    let rest: Vec<String> = m
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}={}", serde_json::to_string(v).unwrap_or_default()))
        .collect();
    if rest.is_empty() && !name.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", rest.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables() {
        let v: Value = serde_json::from_str(
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[1,"1"]},{"metric":{},"value":[1,"0.5"]}]}"#,
        )
        .unwrap();
        assert_eq!(table(&v), "up{job=\"a\"}  1\n{}           0.5");
        let v: Value = serde_json::from_str(r#"{"resultType":"scalar","result":[1,"2"]}"#).unwrap();
        assert_eq!(table(&v), "2");
    }
}
