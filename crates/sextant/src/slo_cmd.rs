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

/// `sextant check slo`: promtool's output shape, one block per file.
#[allow(clippy::print_stdout)] // command output
pub fn check(files: &[PathBuf]) -> ExitCode {
    let mut ok = true;
    for f in files {
        println!("Checking {}", f.display());
        match sextant_slo::spec::load(f) {
            Ok(docs) => println!(
                "  SUCCESS: {} SLOs found",
                docs.iter().map(|d| d.slos.len()).sum::<usize>()
            ),
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
