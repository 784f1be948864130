//! Runs the OpenMetrics project's parser test suite (`../shared/conformance/openmetrics`,
//! or `$SEXTANT_CONFORMANCE_DIR/openmetrics`): every `shouldParse: true` input must
//! parse and every `false` one must be rejected. Prints `openmetrics conformance: N/211`.

use std::path::PathBuf;

use sextant_expfmt::{Format, parse};

fn conformance_dir() -> PathBuf {
    match std::env::var_os("SEXTANT_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
            .join("../../../shared/conformance"),
    }
}

#[test]
fn openmetrics_parser_suite() {
    let dir = conformance_dir().join("openmetrics");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    let mut failures = Vec::new();
    for case in &cases {
        let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(case.join("test.json")).unwrap()).unwrap();
        assert_eq!(meta["type"], "text");
        let should_parse = meta["shouldParse"].as_bool().unwrap();
        let input = std::fs::read(case.join("metrics")).unwrap();
        let result = parse(&input, Format::OpenMetrics);
        if result.is_ok() != should_parse {
            failures.push(format!(
                "{}: shouldParse={should_parse}, got {:?}",
                case.file_name().unwrap().to_string_lossy(),
                result.err()
            ));
        }
    }
    let passed = cases.len() - failures.len();
    eprintln!("openmetrics conformance: {passed}/{}", cases.len());
    assert_eq!(cases.len(), 211, "the suite has 211 cases");
    assert!(failures.is_empty(), "failing cases:\n{}", failures.join("\n"));
}
