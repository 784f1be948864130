//! Runs Prometheus 2.42's own PromQL test scripts (`../shared/conformance/promql`, or
//! `$SEXTANT_CONFORMANCE_DIR/promql`) and Sextant's additional scripts in
//! `tests/testdata`, with the checks Prometheus' runner makes: each instant
//! evaluation, its range re-run, and its `@`-pinned re-runs. Prints `passed/total`
//! per file and in total.

mod support;

use std::path::{Path, PathBuf};

use sextant_promql::{Engine, EngineOptions};
use support::script::{Command, MemStorage, parse_script, run_case};

/// Cases not expected to pass, by `file:line`, each with the reason.
const SKIPPED: &[(&str, &str)] = &[];

fn conformance_dir() -> PathBuf {
    match std::env::var_os("SEXTANT_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
            .join("../../../shared/conformance"),
    }
}

/// Runs every script in `dir`; returns (passed, total, failures).
fn run_dir(dir: &Path) -> (usize, usize, Vec<String>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    let engine = Engine::new(EngineOptions::default());
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let (mut passed, mut total, mut failures) = (0, 0, Vec::new());
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(f).unwrap();
        let commands = parse_script(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut storage = MemStorage::default();
        let (mut file_passed, mut file_total) = (0, 0);
        for c in commands {
            match c {
                Command::Clear => storage = MemStorage::default(),
                Command::Load(series) => {
                    for (l, s) in series {
                        storage.add(l, s);
                    }
                }
                Command::Eval(case) => {
                    file_total += 1;
                    let id = format!("{name}:{}", case.line);
                    let skipped = SKIPPED.iter().any(|(s, _)| *s == id);
                    match rt.block_on(run_case(&engine, &storage, &case)) {
                        Ok(()) => {
                            file_passed += 1;
                            if skipped {
                                failures.push(format!("{id}: listed as skipped but passes; remove it from SKIPPED"));
                            }
                        }
                        Err(e) if skipped => {
                            let _ = e;
                        }
                        Err(e) => failures.push(format!("{id}: {}\n    {e}", case.expr)),
                    }
                }
            }
        }
        eprintln!("  {name}: {file_passed}/{file_total}");
        passed += file_passed;
        total += file_total;
    }
    (passed, total, failures)
}

#[test]
fn prometheus_promql_test_scripts() {
    let dir = conformance_dir().join("promql");
    let (passed, total, failures) = run_dir(&dir);
    eprintln!(
        "promql conformance: {passed}/{total} ({} skipped with reasons)",
        SKIPPED.len()
    );
    assert!(total >= 546, "the 2.42 scripts hold 546 evals, found {total}");
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn sextant_promql_test_scripts() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("tests/testdata");
    let (passed, total, failures) = run_dir(&dir);
    eprintln!("sextant promql scripts: {passed}/{total}");
    assert!(total > 0);
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
