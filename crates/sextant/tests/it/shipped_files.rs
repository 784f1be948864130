//! Files shipped in the repository stay valid: alert rules pass the real `promtool`,
//! the example config passes `sextant check config`, the compose file parses.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("../..")
}

#[test]
fn alert_rules_pass_promtool() {
    let promtool = crate::support::peer_binary("promtool", "prometheus");
    let rules: Vec<PathBuf> = std::fs::read_dir(repo().join("alert-rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    assert!(!rules.is_empty());
    // Both checkers accept them.
    for checker in [promtool, PathBuf::from(env!("CARGO_BIN_EXE_sextant"))] {
        let out = Command::new(&checker)
            .arg("check")
            .arg("rules")
            .args(&rules)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}{}",
            checker.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn example_config_passes_check() {
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["check", "config"])
        .arg(repo().join("examples/sextant.yml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("SUCCESS: 3 scrape configs found"), "{text}");
    assert!(text.contains("SUCCESS: 9 SLOs found"), "{text}");
}

/// The cluster SLOs pass `sextant check slo`, and the rules `sextant slo generate`
/// writes for them pass the real `promtool check rules`.
#[test]
fn example_slos_pass_check_and_their_rules_pass_promtool() {
    let specs: Vec<PathBuf> = std::fs::read_dir(repo().join("examples/slo"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    assert!(specs.len() >= 3);
    let sextant = env!("CARGO_BIN_EXE_sextant");
    let out = Command::new(sextant)
        .args(["check", "slo"])
        .args(&specs)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("SUCCESS").count(), specs.len(), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("slo.rules.yml");
    let out = Command::new(sextant)
        .args(["slo", "generate", "-o"])
        .arg(&rules)
        .args(&specs)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let promtool = crate::support::peer_binary("promtool", "prometheus");
    let out = Command::new(promtool)
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn compose_file_parses() {
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert!(doc["services"]["sextant"]["build"].is_mapping() || doc["services"]["sextant"]["build"].is_string());
}
