//! `sextant check rules` against `promtool check rules` (Prometheus 2.42) on the same
//! files: the same verdicts, and the same lines for every problem.

use std::process::Command;

use crate::support::peer_binary;

/// Shared with the rule-file unit tests, which assert promtool's positions for it.
const BAD: &str = include_str!("../../../rules/testdata/bad.rules.yml");

const GOOD: &str = "groups:
  - name: a
    interval: 30s
    limit: 10
    rules:
      - record: job:x:sum
        expr: sum by (job) (rate(x[5m]))
        labels: {team: sre}
      - alert: Down
        expr: up == 0
        for: 5m
        annotations: {summary: down}
";

fn run(cmd: &mut Command) -> (bool, Vec<String>) {
    let out = cmd.output().unwrap();
    // promtool prints problems to stderr; both streams together are the report.
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text.lines().map(str::to_owned).collect())
}

#[test]
fn verdicts_and_lines_match_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.rules.yml");
    let good = dir.path().join("good.rules.yml");
    std::fs::write(&bad, BAD).unwrap();
    std::fs::write(&good, GOOD).unwrap();
    for file in [&good, &bad] {
        let (p_ok, p_lines) = run(Command::new(peer_binary("promtool", "prometheus"))
            .args(["check", "rules"])
            .arg(file)
            .current_dir(dir.path()));
        let (s_ok, s_lines) = run(Command::new(env!("CARGO_BIN_EXE_sextant"))
            .args(["check", "rules"])
            .arg(file)
            .current_dir(dir.path()));
        assert_eq!(p_ok, s_ok, "{p_lines:?}\n{s_lines:?}");
        // Every problem line promtool prints (`FILE: L:C: ...: message`), Sextant
        // prints with the same position, group and rule; parse-error wording differs
        // between the two PromQL parsers, so it is compared up to "could not parse".
        let problems = |lines: &[String]| -> Vec<String> {
            lines
                .iter()
                .filter(|l| l.contains(".yml: "))
                .map(|l| match l.find("could not parse expression") {
                    Some(i) => l[..i + "could not parse expression".len()].to_string(),
                    None => l.clone(),
                })
                .collect()
        };
        assert_eq!(
            problems(&p_lines),
            problems(&s_lines),
            "promtool: {p_lines:#?}\nsextant: {s_lines:#?}"
        );
        if p_ok {
            assert!(
                s_lines.iter().any(|l| l.contains("SUCCESS: 2 rules found")),
                "{s_lines:?}"
            );
        }
    }
}
