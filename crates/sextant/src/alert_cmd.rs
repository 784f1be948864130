//! `sextant alert`: which receivers a label set reaches (as `amtool config routes
//! test`), and acknowledging an alert group or incident on a running server.

use std::path::PathBuf;
use std::process::ExitCode;

use sextant_alertmanager::route::Route;
use sextant_model::Labels;

/// Arguments of `sextant alert routes test`.
#[derive(clap::Args)]
pub struct RoutesTestArgs {
    /// Sextant configuration whose `alerting` section to use.
    #[arg(long, conflicts_with_all = ["config_file", "server"])]
    config: Option<PathBuf>,
    /// Alertmanager configuration file (as amtool's --config.file).
    #[arg(long = "config.file", conflicts_with = "server")]
    config_file: Option<PathBuf>,
    /// Ask a running server for its routing configuration (default
    /// http://127.0.0.1:9470 when no file is given).
    #[arg(long)]
    server: Option<String>,
    /// Print the matching part of the routing tree.
    #[arg(long)]
    tree: bool,
    /// Expected receivers, comma-separated: exit 1 if others are reached.
    #[arg(long = "verify.receivers")]
    verify_receivers: Option<String>,
    /// Labels as name=value.
    labels: Vec<String>,
}

/// Arguments of `sextant alert ack`.
#[derive(clap::Args)]
pub struct AckArgs {
    /// Incident id (`inc-3`) or alert group key.
    id: String,
    /// Why.
    #[arg(long, default_value = "")]
    comment: String,
    /// Server.
    #[arg(long, default_value = "http://127.0.0.1:9470")]
    server: String,
    /// Bearer token (when the server has `server.auth`); also `SEXTANT_TOKEN`.
    #[arg(long, env = "SEXTANT_TOKEN")]
    token: Option<String>,
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

fn fetch_original(server: &str) -> Result<String, String> {
    let url = format!("{}/api/v2/status", server.trim_end_matches('/'));
    runtime()?.block_on(async {
        let bytes = reqwest::Client::new()
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?
            .bytes()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let body: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| format!("{url}: {e}"))?;
        body["config"]["original"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{url}: no config.original in the answer"))
    })
}

fn route_tree(args: &RoutesTestArgs) -> Result<Route, String> {
    if let Some(f) = &args.config {
        let c = crate::config::load(f)?;
        return Ok(crate::config::load_alerting(&c)?.route);
    }
    if let Some(f) = &args.config_file {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        return Ok(sextant_alertmanager::config::parse(&text, f)?.route);
    }
    let server = args.server.clone().unwrap_or_else(|| "http://127.0.0.1:9470".into());
    let text = fetch_original(&server)?;
    Ok(sextant_alertmanager::config::parse(&text, std::path::Path::new(&server))?.route)
}

/// The matching part of the tree, as amtool prints it: a node is shown when it
/// matched and was reached; leaves of the walk show their receiver.
fn matching_tree(r: &Route, labels: &Labels, depth: &str, last: bool, root: bool, out: &mut String) {
    let name = if r.matchers.is_empty() {
        "default-route".to_owned()
    } else {
        sextant_alertmanager::matchers::format_matchers(&r.matchers)
    };
    let mut children = Vec::new();
    for c in &r.routes {
        if c.matches(labels).is_empty() {
            continue;
        }
        children.push(c);
        if !c.continue_ {
            break;
        }
    }
    let line = if children.is_empty() {
        format!("{name}  receiver: {}", r.receiver)
    } else {
        name
    };
    if root {
        out.push_str(".\n");
    }
    out.push_str(&format!("{depth}{}{line}\n", if last { "└── " } else { "├── " }));
    let child_depth = format!("{depth}{}", if last { "    " } else { "│   " });
    for (i, c) in children.iter().enumerate() {
        matching_tree(c, labels, &child_depth, i + 1 == children.len(), false, out);
    }
}

/// `sextant alert routes test`.
#[allow(clippy::print_stdout)] // command output
pub fn routes_test(args: RoutesTestArgs) -> ExitCode {
    let mut pairs = Vec::new();
    for l in &args.labels {
        match l.split_once('=') {
            Some((k, v)) => pairs.push((k.trim().to_owned(), v.trim().trim_matches('"').to_owned())),
            None => {
                eprintln!("sextant: Failed to parse labels: labels must be specified as key=value pairs");
                return ExitCode::FAILURE;
            }
        }
    }
    let labels = match Labels::from_pairs(pairs) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sextant: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tree = match route_tree(&args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("sextant: {e}");
            return ExitCode::FAILURE;
        }
    };
    let receivers: Vec<String> = tree.matches(&labels).iter().map(|r| r.receiver.clone()).collect();
    if args.tree {
        let mut out = String::from("Matching routes:\n");
        matching_tree(&tree, &labels, "", true, true, &mut out);
        println!("{out}\n");
    }
    let joined = receivers.join(",");
    println!("{joined}");
    if let Some(want) = &args.verify_receivers
        && *want != joined
    {
        println!("WARNING: Expected receivers did not match resolved receivers.");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// `sextant alert ack`.
#[allow(clippy::print_stdout)] // command output
pub fn ack(args: AckArgs) -> ExitCode {
    let server = args.server.trim_end_matches('/');
    let (url, body) = if args.id.starts_with("inc-") {
        (
            format!("{server}/api/sextant/v1/incidents/{}/ack", args.id),
            serde_json::json!({"comment": args.comment}),
        )
    } else {
        (
            format!("{server}/api/sextant/v1/alerts/groups/ack"),
            serde_json::json!({"group_key": args.id, "comment": args.comment}),
        )
    };
    let result = crate::client::call(reqwest::Method::POST, &url, args.token.as_deref(), Some(body));
    match result {
        Ok(v) => {
            println!(
                "acknowledged by {} at {}",
                v["data"]["by"].as_str().unwrap_or(""),
                sextant_model::time::format_rfc3339(v["data"]["at"].as_i64().unwrap_or(0))
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sextant alert ack: {e}");
            ExitCode::FAILURE
        }
    }
}
