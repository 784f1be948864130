//! `sextant slo generate`: the Prometheus rules Sloth would generate for SLO specs, for
//! users who evaluate SLOs in Prometheus; `sextant check slo` validates specs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use sextant_model::time::PromDuration;
use sextant_slo::sloth_rules::{GenerateOptions, generate, to_yaml};
use sextant_slo::windows::WindowCatalog;

/// Arguments of `sextant slo generate`, named as Sloth's.
#[derive(clap::Args)]
pub struct GenerateArgs {
    /// Spec files (Sloth prometheus/v1, OpenSLO).
    #[arg(required = true)]
    specs: Vec<PathBuf>,
    /// Period of SLOs whose spec has none (Sloth's --default-slo-period).
    #[arg(short = 'p', long, default_value = "30d")]
    default_slo_period: PromDuration,
    /// Directory of AlertWindows catalogs replacing the built-in 30d and 28d ones.
    #[arg(long)]
    slo_period_windows_path: Option<PathBuf>,
    /// Labels added to every recording rule, as `k=v` (repeatable).
    #[arg(short = 'l', long = "extra-labels")]
    extra_labels: Vec<String>,
    /// Write here instead of standard output.
    #[arg(short = 'o', long)]
    out: Option<PathBuf>,
}

#[allow(clippy::print_stdout)] // command output
pub fn generate_cmd(args: GenerateArgs) -> ExitCode {
    let mut extra = BTreeMap::new();
    for l in &args.extra_labels {
        match l.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                extra.insert(k.to_owned(), v.to_owned());
            }
            _ => {
                eprintln!("sextant: --extra-labels {l:?}: expected key=value");
                return ExitCode::from(2);
            }
        }
    }
    let windows = match &args.slo_period_windows_path {
        Some(dir) => match WindowCatalog::load_dir(dir) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("sextant: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => WindowCatalog::default(),
    };
    let opts = GenerateOptions {
        default_period: args.default_slo_period.0,
        windows,
        extra_labels: extra,
        ..GenerateOptions::default()
    };
    let mut documents = Vec::new();
    for spec in &args.specs {
        let docs = match sextant_slo::spec::load(spec) {
            Ok(d) => d,
            Err(errors) => {
                for e in errors {
                    eprintln!("{e}");
                }
                return ExitCode::FAILURE;
            }
        };
        for d in &docs {
            match generate(d, &opts) {
                Ok(groups) => documents.push(groups),
                Err(e) => {
                    eprintln!("{}: {e}", spec.display());
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    let yaml = to_yaml(&documents);
    match &args.out {
        Some(p) => {
            if let Err(e) = std::fs::write(p, yaml) {
                eprintln!("sextant: writing {}: {e}", p.display());
                return ExitCode::FAILURE;
            }
        }
        None => print!("{yaml}"),
    }
    ExitCode::SUCCESS
}

/// `sextant check slo`: promtool's output shape, one block per file. Specs are
/// checked as the engine will run them (default engine settings), beyond the spec's
/// own rules.
#[allow(clippy::print_stdout)] // command output
pub fn check(files: &[PathBuf]) -> ExitCode {
    let mut ok = true;
    let opts = sextant_slo::EngineOptions::default();
    for f in files {
        println!("Checking {}", f.display());
        let checked = sextant_slo::spec::load(f)
            .map_err(|e| e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>())
            .and_then(|docs| {
                let slos: Vec<_> = docs.into_iter().flat_map(|d| d.slos).collect();
                sextant_slo::SloEngine::check(&slos, &opts).map(|()| slos.len())
            });
        match checked {
            Ok(n) => println!("  SUCCESS: {n} SLOs found"),
            Err(errors) => {
                println!("  FAILED:");
                for e in errors {
                    println!("{e}");
                }
                ok = false;
            }
        }
        println!();
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Arguments of `sextant slo status`.
#[derive(clap::Args)]
pub struct StatusArgs {
    /// Server to ask.
    #[arg(long, default_value = "http://127.0.0.1:9470")]
    server: String,
    /// Output: a table, or the API's JSON `data`.
    #[arg(short = 'o', long, default_value = "table", value_parser = ["table", "json"])]
    output: String,
}

/// `sextant slo status`: the SLOs of a running server, one line each.
#[allow(clippy::print_stdout)] // command output
pub fn status_cmd(args: StatusArgs) -> ExitCode {
    let url = format!("{}/api/sextant/v1/slos", args.server.trim_end_matches('/'));
    let fetched = crate::client::get_bytes(&url, "application/json")
        .and_then(|(_, bytes)| serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| format!("{url}: {e}")));
    let body = match fetched {
        Ok(b) if b["status"] == "success" => b,
        Ok(b) => {
            eprintln!("sextant slo status: {}", b["error"].as_str().unwrap_or("error"));
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("sextant slo status: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.output == "json" {
        println!("{}", serde_json::to_string_pretty(&body["data"]).unwrap_or_default());
    } else {
        print!("{}", status_table(&body["data"]));
    }
    ExitCode::SUCCESS
}

/// One line per SLO: id, state, objective, period, budget left, current burn rate,
/// period coverage.
pub fn status_table(data: &serde_json::Value) -> String {
    let pct = |v: &serde_json::Value| v.as_f64().map_or("-".to_owned(), |x| format!("{:.2}%", x * 100.0));
    let mut rows = vec![[
        "SLO".to_owned(),
        "STATE".to_owned(),
        "OBJECTIVE".to_owned(),
        "PERIOD".to_owned(),
        "BUDGET LEFT".to_owned(),
        "BURN".to_owned(),
        "COVERAGE".to_owned(),
    ]];
    for s in data.as_array().into_iter().flatten() {
        let mut state = s["state"].as_str().unwrap_or("").to_owned();
        if s["error"].is_string() {
            state.push_str(" (error)");
        }
        rows.push([
            s["id"].as_str().unwrap_or("").to_owned(),
            state,
            s["objective"].as_f64().map_or("-".into(), |o| {
                format!("{}%", sextant_slo::gofmt::format_plain(o * 100.0))
            }),
            s["period"].as_str().unwrap_or("").to_owned(),
            pct(&s["budget_remaining"]),
            s["current_burn_rate"]
                .as_f64()
                .map_or("-".into(), |b| format!("{b:.2}x")),
            pct(&s["period_coverage"]),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_table() {
        let v: serde_json::Value = serde_json::from_str(
            r#"[{"id":"shop-availability","state":"firing","objective":0.999,"period":"30d","budget_remaining":0.25,"current_burn_rate":14.5,"period_coverage":1.0,"error":null}]"#,
        )
        .unwrap();
        assert_eq!(
            super::status_table(&v),
            "SLO                STATE   OBJECTIVE  PERIOD  BUDGET LEFT  BURN    COVERAGE\nshop-availability  firing  99.9%      30d     25.00%       14.50x  100.00%\n"
        );
    }
}
