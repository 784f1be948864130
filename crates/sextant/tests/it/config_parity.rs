//! `sextant check config` against `promtool check config` (Prometheus 2.42) on the
//! configs of `tests/config-parity/cases`: every default and validation of `global`,
//! `scrape_configs` and `rule_files`, valid and invalid. Each case's first line records
//! promtool's verdict; this test checks that promtool still says so and that Sextant
//! reaches the same verdict (messages may differ in wording).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::peer_binary;

fn cases_dir() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("../../tests/config-parity/cases")
}

/// `Some(message)` for a FAILED verdict, `None` for SUCCESS.
fn recorded_verdict(text: &str) -> Option<String> {
    let first = text.lines().next().unwrap_or("");
    let verdict = first
        .strip_prefix("# promtool: ")
        .unwrap_or_else(|| panic!("first line is not a promtool verdict: {first:?}"));
    verdict.strip_prefix("FAILED: ").map(str::to_owned)
}

fn run(program: &Path, case: &Path) -> (bool, String) {
    let out = Command::new(program)
        .args(["check", "config"])
        .arg(case.file_name().unwrap())
        .current_dir(case.parent().unwrap())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn same_verdicts_as_promtool() {
    let promtool = peer_binary("promtool", "prometheus");
    let sextant = PathBuf::from(env!("CARGO_BIN_EXE_sextant"));
    let mut cases: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    let mut problems = Vec::new();
    let (mut valid, mut invalid) = (0, 0);
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let recorded = recorded_verdict(&std::fs::read_to_string(case).unwrap());
        let (prom_ok, prom_out) = run(&promtool, case);
        if prom_ok != recorded.is_none() {
            problems.push(format!(
                "{name}: promtool now says {prom_out:?}, the case records {recorded:?}"
            ));
            continue;
        }
        let (ours_ok, ours_out) = run(&sextant, case);
        if ours_ok != prom_ok {
            problems.push(format!(
                "{name}: promtool {}, sextant {}:\n  promtool: {}\n  sextant: {}",
                if prom_ok { "accepts" } else { "refuses" },
                if ours_ok { "accepts" } else { "refuses" },
                prom_out.trim().replace('\n', "\n            "),
                ours_out.trim().replace('\n', "\n            ")
            ));
        }
        if prom_ok {
            valid += 1;
        } else {
            invalid += 1;
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} cases differ:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
    eprintln!(
        "config parity: {} cases ({valid} valid, {invalid} invalid), same verdicts as promtool 2.42",
        cases.len()
    );
}
