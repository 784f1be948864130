//! `sextant actions list|approve|reject` and `sextant workloads`: the action
//! engine's audit log, approvals and managed workloads of a running server.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::Value;

use crate::client::call;

/// Where the server is and how to authenticate.
#[derive(clap::Args)]
pub struct ServerArgs {
    /// Server.
    #[arg(long, default_value = "http://127.0.0.1:9470")]
    server: String,
    /// Bearer token (when the server has `server.auth`); also `SEXTANT_TOKEN`.
    #[arg(long, env = "SEXTANT_TOKEN")]
    token: Option<String>,
}

impl ServerArgs {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.trim_end_matches('/'))
    }
}

/// Arguments of `sextant actions list`.
#[derive(clap::Args)]
pub struct ListArgs {
    /// Only this policy.
    #[arg(long)]
    policy: Option<String>,
    /// Only this workload.
    #[arg(long)]
    workload: Option<String>,
    /// Only this decision (act, dry_run, awaiting_approval, skip, observe).
    #[arg(long)]
    decision: Option<String>,
    /// Only this status (pending, running, succeeded, failed, rejected, expired).
    #[arg(long)]
    status: Option<String>,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// `table` or `json`.
    #[arg(long, short, default_value = "table")]
    output: String,
    #[command(flatten)]
    server: ServerArgs,
}

/// Arguments of `sextant actions approve|reject`.
#[derive(clap::Args)]
pub struct ApprovalArgs {
    /// The action's id (from `sextant actions list --status pending`).
    id: String,
    /// Why.
    #[arg(long, default_value = "")]
    comment: String,
    #[command(flatten)]
    server: ServerArgs,
}

/// Arguments of `sextant workloads`.
#[derive(clap::Args)]
pub struct WorkloadsArgs {
    /// `table` or `json`.
    #[arg(long, short, default_value = "table")]
    output: String,
    #[command(flatten)]
    server: ServerArgs,
}

fn fail(cmd: &str, e: String) -> ExitCode {
    eprintln!("sextant {cmd}: {e}");
    ExitCode::FAILURE
}

/// One line per record: time, policy, workload, decision, status, and the
/// sentence notifications carry.
pub fn table(records: &[Value]) -> String {
    let mut out = format!(
        "{:<36}  {:<20}  {:<20}  {:<14}  {:<17}  {:<10}  {}\n",
        "ID", "TIME", "POLICY", "WORKLOAD", "DECISION", "STATUS", "WHAT"
    );
    for r in records {
        let time = sextant_model::time::format_rfc3339(r["time_ms"].as_i64().unwrap_or(0));
        let what = match (r["action"]["kind"].as_str(), r["decision"].as_str()) {
            (Some("scale"), _) => format!(
                "scale {} -> {}: {}",
                r["action"]["from"],
                r["action"]["to"],
                r["reason"].as_str().unwrap_or_default()
            ),
            (Some(k), _) => format!("{k}: {}", r["reason"].as_str().unwrap_or_default()),
            (None, _) => r["reason"].as_str().unwrap_or_default().to_owned(),
        };
        let detail = r["detail"].as_str().unwrap_or_default();
        out.push_str(&format!(
            "{:<36}  {:<20}  {:<20}  {:<14}  {:<17}  {:<10}  {what}{}\n",
            r["id"].as_str().unwrap_or_default(),
            &time[..19],
            r["policy"].as_str().unwrap_or_default(),
            r["workload"].as_str().unwrap_or_default(),
            r["decision"].as_str().unwrap_or_default(),
            r["status"].as_str().unwrap_or_default(),
            if detail.is_empty() {
                String::new()
            } else {
                format!(" ({detail})")
            }
        ));
    }
    out
}

/// `sextant actions list`.
#[allow(clippy::print_stdout)] // command output
pub fn list(args: ListArgs) -> ExitCode {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("limit", &args.limit.to_string());
    for (k, v) in [
        ("policy", &args.policy),
        ("workload", &args.workload),
        ("decision", &args.decision),
        ("status", &args.status),
    ] {
        if let Some(v) = v {
            q.append_pair(k, v);
        }
    }
    let url = args.server.url(&format!("/api/sextant/v1/actions?{}", q.finish()));
    match call(Method::GET, &url, args.server.token.as_deref(), None) {
        Ok(v) if args.output == "json" => {
            println!("{}", serde_json::to_string_pretty(&v["data"]).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(v) => {
            print!("{}", table(v["data"].as_array().map(Vec::as_slice).unwrap_or_default()));
            ExitCode::SUCCESS
        }
        Err(e) => fail("actions list", e),
    }
}

/// `sextant actions approve` and `reject`.
#[allow(clippy::print_stdout)] // command output
pub fn decide(args: ApprovalArgs, approve: bool) -> ExitCode {
    let verb = if approve { "approve" } else { "reject" };
    let url = args.server.url(&format!("/api/sextant/v1/actions/{}/{verb}", args.id));
    let body = serde_json::json!({"comment": args.comment});
    match call(Method::POST, &url, args.server.token.as_deref(), Some(body)) {
        Ok(v) => {
            let r = &v["data"];
            println!(
                "{} {} by {}: {}",
                r["id"].as_str().unwrap_or_default(),
                if approve { "approved" } else { "rejected" },
                r["approved_by"].as_str().unwrap_or_default(),
                r["reason"].as_str().unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("actions {verb}"), e),
    }
}

/// `sextant workloads`.
#[allow(clippy::print_stdout)] // command output
pub fn workloads(args: WorkloadsArgs) -> ExitCode {
    let url = args.server.url("/api/sextant/v1/workloads");
    match call(Method::GET, &url, args.server.token.as_deref(), None) {
        Ok(v) if args.output == "json" => {
            println!("{}", serde_json::to_string_pretty(&v["data"]).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(v) => {
            println!(
                "{:<20}  {:<10}  {:>8}  {:>6}  {:<12}  LAST ACTION",
                "WORKLOAD", "KIND", "REPLICAS", "READY", "ROLLOUT"
            );
            for w in v["data"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let ready = w["process"]["ready"].as_u64().map_or("-".to_owned(), |r| r.to_string());
                let last = w["last_action"]["reason"].as_str().unwrap_or("-");
                println!(
                    "{:<20}  {:<10}  {:>8}  {:>6}  {:<12}  {last}",
                    w["name"].as_str().unwrap_or_default(),
                    w["kind"].as_str().unwrap_or_default(),
                    w["replicas"].as_u64().map_or("?".to_owned(), |r| r.to_string()),
                    ready,
                    w["process"]["rollout"]["state"].as_str().unwrap_or("-"),
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail("workloads", e),
    }
}
