//! The `sextant` binary: command line, configuration loading, wiring of the store,
//! collectors and HTTP API, signal handling and shutdown.

mod actions_cmd;
mod alert_cmd;
mod alertmanager_cmd;
mod client;
mod config;
mod demo;
mod demo_service;
mod logs_cmd;
mod query_cmd;
mod serve;
mod slo_cmd;
mod traces_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: queries allocate and free large sample buffers,
/// which glibc maps and unmaps each time (page faults were a fifth of a query's CPU).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Sextant: metrics collection, storage and a Prometheus-compatible API in one binary.
#[derive(Parser)]
#[command(name = "sextant", version, about)]
struct Cli {
    /// Log level (error, warn, info, debug, trace); `RUST_LOG` takes precedence.
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server. Without --config it runs embedded defaults: data in
    /// ./sextant-data, HTTP on 127.0.0.1:9470, scraping its own /metrics and the
    /// built-in node collector every 15s.
    Serve(serve::ServeArgs),
    /// See the whole product on one machine: Sextant, a service under its supervisor,
    /// load, SLOs, an alert route and a scale policy, through a narrated incident
    /// (about four minutes; `--fast` about one and a half).
    Demo(demo::DemoArgs),
    /// The demo's HTTP service (run by `sextant demo` under the supervisor).
    #[command(hide = true)]
    DemoService(demo_service::DemoServiceArgs),
    /// Run a PromQL query against a running server and print the result.
    Query(query_cmd::QueryArgs),
    /// Query logs with LogQL (through the Loki API) and print them.
    Logs(logs_cmd::LogsArgs),
    /// Search traces with TraceQL, or print one as a span tree (through Tempo's API).
    Traces(traces_cmd::TracesArgs),
    /// Validate files without running anything.
    Check {
        #[command(subcommand)]
        what: CheckCommand,
    },
    /// SLOs: status of a running server's SLOs, Sloth-equivalent Prometheus rules.
    Slo {
        #[command(subcommand)]
        what: SloCommand,
    },
    /// Alerts: which receivers labels reach, acknowledging groups and incidents.
    Alert {
        #[command(subcommand)]
        what: AlertCommand,
    },
    /// Actions: the audit log of a running server's action engine, approvals.
    Actions {
        #[command(subcommand)]
        what: ActionsCommand,
    },
    /// The workloads a running server manages: replicas, readiness, rollouts.
    Workloads(actions_cmd::WorkloadsArgs),
    /// Alertmanager drop-in mode: Alertmanager 0.25's flags and API alone
    /// (`sextant alertmanager --help` lists the flags).
    #[command(disable_help_flag = true)]
    Alertmanager {
        /// Alertmanager's flags.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ActionsCommand {
    /// Decisions and actions, newest first.
    List(actions_cmd::ListArgs),
    /// Approve an action waiting for approval; it runs at once.
    Approve(actions_cmd::ApprovalArgs),
    /// Reject an action waiting for approval.
    Reject(actions_cmd::ApprovalArgs),
}

#[derive(Subcommand)]
enum AlertCommand {
    /// Routing tests, as `amtool config routes test`.
    Routes {
        #[command(subcommand)]
        what: RoutesCommand,
    },
    /// Acknowledge an alert group (by key) or incident (by id): its repeats and
    /// escalation stop until another alert fires in it.
    Ack(alert_cmd::AckArgs),
}

#[derive(Subcommand)]
enum RoutesCommand {
    /// Which receivers a label set reaches.
    Test(alert_cmd::RoutesTestArgs),
}

#[derive(Subcommand)]
enum SloCommand {
    /// Write the Prometheus rules Sloth v0.16 generates for Sloth or OpenSLO specs.
    Generate(slo_cmd::GenerateArgs),
    /// Print a running server's SLOs: state, budget left, burn rate, coverage.
    Status(slo_cmd::StatusArgs),
}

#[derive(Subcommand)]
enum CheckCommand {
    /// Validate configuration files (exit 1 if any is invalid).
    Config {
        /// Files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Validate Prometheus rule files as `promtool check rules` does (exit 1 if any
    /// is invalid).
    Rules {
        /// Files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The expressions are LogQL (Loki ruler files, as `logs.rule_files` reads them).
        #[arg(long)]
        logql: bool,
    },
    /// Validate SLO specs (Sloth prometheus/v1, OpenSLO v1alpha and v1; exit 1 if any
    /// is invalid).
    Slo {
        /// Files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    // Drop-in mode parses Alertmanager's flags itself (and sets up logging).
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("alertmanager") {
        return alertmanager_cmd::run(argv[2..].to_vec());
    }
    let cli = Cli::parse();
    // The demo narrates on stdout; its logs stay quiet unless asked for.
    let explicit = argv.iter().any(|a| a.starts_with("--log-level")) || std::env::var_os("RUST_LOG").is_some();
    match &cli.command {
        Command::Demo(_) | Command::DemoService(_) if !explicit => init_tracing("warn"),
        _ => init_tracing(&cli.log_level),
    }
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Demo(args) => demo::run(args),
        Command::DemoService(args) => demo_service::run(args),
        Command::Query(args) => query_cmd::run(args),
        Command::Logs(args) => logs_cmd::run(args),
        Command::Traces(args) => traces_cmd::run(args),
        Command::Check {
            what: CheckCommand::Config { files },
        } => check_config(&files),
        Command::Check {
            what: CheckCommand::Rules { files, logql },
        } => check_rules(
            &files,
            if logql {
                sextant_rules::Language::LogQL
            } else {
                sextant_rules::Language::PromQL
            },
        ),
        Command::Check {
            what: CheckCommand::Slo { files },
        } => slo_cmd::check(&files),
        Command::Slo {
            what: SloCommand::Generate(args),
        } => slo_cmd::generate_cmd(args),
        Command::Slo {
            what: SloCommand::Status(args),
        } => slo_cmd::status_cmd(args),
        Command::Alert {
            what: AlertCommand::Routes {
                what: RoutesCommand::Test(args),
            },
        } => alert_cmd::routes_test(args),
        Command::Alert {
            what: AlertCommand::Ack(args),
        } => alert_cmd::ack(args),
        Command::Actions {
            what: ActionsCommand::List(args),
        } => actions_cmd::list(args),
        Command::Actions {
            what: ActionsCommand::Approve(args),
        } => actions_cmd::decide(args, true),
        Command::Actions {
            what: ActionsCommand::Reject(args),
        } => actions_cmd::decide(args, false),
        Command::Workloads(args) => actions_cmd::workloads(args),
        Command::Alertmanager { args } => alertmanager_cmd::run(args),
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` or `level`.
pub fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for a terminal: escape codes in a log file or journal get in
        // the way of grep.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

#[allow(clippy::print_stdout)] // command output
fn check_config(files: &[PathBuf]) -> ExitCode {
    let mut ok = true;
    for f in files {
        println!("Checking {}", f.display());
        match config::load(f).and_then(|c| config::check_like_promtool(&c).map(|()| c)) {
            Ok(c) => {
                println!("  SUCCESS: {} scrape configs found", c.scrape_configs.len());
                match config::load_rule_files(&c) {
                    Ok(rf) => println!("  SUCCESS: {} rule files found", rf.len()),
                    Err(e) => {
                        println!("  FAILED:\n{e}");
                        ok = false;
                    }
                }
                match config::load_slo_files(&c) {
                    Ok(slos) => println!("  SUCCESS: {} SLOs found", slos.len()),
                    Err(e) => {
                        println!("  FAILED:\n{e}");
                        ok = false;
                    }
                }
                match sextant_act::ActionEngine::check(&c.workloads, &c.actions) {
                    Ok(()) => println!(
                        "  SUCCESS: {} workloads, {} action policies",
                        c.workloads.len(),
                        c.actions.policies.len()
                    ),
                    Err(e) => {
                        println!("  FAILED:\n{}", e.join("\n"));
                        ok = false;
                    }
                }
                match config::load_alerting(&c) {
                    Ok(a) => println!(
                        "  SUCCESS: alerting: {} receivers, {} inhibit rules, {} templates",
                        a.receivers.len(),
                        a.inhibit_rules.len(),
                        a.template_files.len()
                    ),
                    Err(e) => {
                        println!("  FAILED:\n{e}");
                        ok = false;
                    }
                }
            }
            Err(e) => {
                println!("  FAILED: {e}");
                ok = false;
            }
        }
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Output as promtool's: `Checking F`, then `SUCCESS: N rules found` or `FAILED:`
/// with one line per problem.
#[allow(clippy::print_stdout)] // command output
fn check_rules(files: &[PathBuf], lang: sextant_rules::Language) -> ExitCode {
    let mut ok = true;
    for f in files {
        println!("Checking {}", f.display());
        match sextant_rules::file::load_as(f, lang) {
            Ok(rf) => println!(
                "  SUCCESS: {} rules found",
                rf.groups.iter().map(|g| g.rules.len()).sum::<usize>()
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
