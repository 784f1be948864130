//! Runs the OpenMetrics project's parser test suite (`../shared/conformance/openmetrics`,
//! or `$SEXTANT_CONFORMANCE_DIR/openmetrics`): every `shouldParse: true` input must
//! parse and every `false` one must be rejected. Prints `openmetrics conformance: N/211`.
//! The scrape path's `scan` must give the same verdict on every case, and on the valid
//! ones the same samples and label sets as `parse`.

use std::ops::ControlFlow;
use std::path::PathBuf;

use sextant_expfmt::{Format, parse, scan};

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
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let mut scanned = Vec::new();
        let scan_result = scan(&input, Format::OpenMetrics, |raw| {
            scanned.push((raw.labels(), raw.value.to_bits(), raw.timestamp_ms));
            ControlFlow::Continue(())
        });
        // The scrape path asks for a label set the first time it sees a line, so a label
        // set that does not build fails it just as it fails `parse`.
        let scan_ok = scan_result.is_ok() && scanned.iter().all(|(labels, _, _)| labels.is_ok());
        assert_eq!(scan_ok, result.is_ok(), "{name}: scan and parse disagree");
        if let (Ok(parsed), Ok(metadata)) = (&result, &scan_result) {
            let scanned: Vec<_> = scanned.into_iter().map(|(l, v, t)| (l.unwrap(), v, t)).collect();
            let expected: Vec<_> = parsed
                .samples
                .iter()
                .map(|s| (s.labels.clone(), s.value.to_bits(), s.timestamp_ms))
                .collect();
            assert_eq!(scanned, expected, "{name}: scan's samples differ from parse's");
            assert_eq!(*metadata, parsed.metadata, "{name}: scan's metadata differs");
        }
        if result.is_ok() != should_parse {
            failures.push(format!("{name}: shouldParse={should_parse}, got {:?}", result.err()));
        }
    }
    let passed = cases.len() - failures.len();
    eprintln!("openmetrics conformance: {passed}/{}", cases.len());
    assert_eq!(cases.len(), 211, "the suite has 211 cases");
    assert!(failures.is_empty(), "failing cases:\n{}", failures.join("\n"));
}
