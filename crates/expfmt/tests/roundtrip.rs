//! Encode → parse → the same samples, for both formats, on generated families; and the
//! scrape path's `scan` → the same samples as `parse`.

use std::ops::ControlFlow;

use proptest::prelude::*;
use sextant_expfmt::{Format, TextEncoder, parse, scan};
use sextant_model::MetricType;

#[derive(Debug, Clone)]
struct Gen {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
    ts_ms: Option<i64>,
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN),
        (-1000i64..1000).prop_map(|v| v as f64),
    ]
}

fn family() -> impl Strategy<Value = Gen> {
    (
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,20}",
        proptest::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,10}", "\\PC{1,12}", 0..4),
        value(),
        proptest::option::of(0i64..4_000_000_000_000),
    )
        .prop_map(|(name, labels, value, ts_ms)| Gen {
            name,
            labels: labels.into_iter().filter(|(k, _)| k != "__name__").collect(),
            value,
            ts_ms,
        })
}

fn check(format: Format, fams: &[Gen]) -> Result<(), TestCaseError> {
    let mut enc = TextEncoder::new(format);
    let mut seen = std::collections::HashSet::new();
    let fams: Vec<&Gen> = fams.iter().filter(|f| seen.insert(f.name.clone())).collect();
    for f in &fams {
        let labels: Vec<(&str, &str)> = f.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        enc.family(&f.name, MetricType::Gauge, "help \\ with\nnewline", "");
        enc.sample(&f.name, &labels, f.value, f.ts_ms);
    }
    let body = enc.finish();
    let parsed = parse(body.as_bytes(), format).map_err(|e| TestCaseError::fail(format!("{e}\n{body}")))?;
    prop_assert_eq!(parsed.samples.len(), fams.len());
    for (s, f) in parsed.samples.iter().zip(&fams) {
        prop_assert_eq!(s.labels.metric_name(), Some(f.name.as_str()));
        for (k, v) in &f.labels {
            prop_assert_eq!(s.labels.get(k), Some(v.as_str()));
        }
        prop_assert_eq!(s.labels.len(), f.labels.len() + 1);
        prop_assert!(s.value.to_bits() == f.value.to_bits() || (s.value.is_nan() && f.value.is_nan()));
        prop_assert_eq!(s.timestamp_ms, f.ts_ms);
    }
    prop_assert!(parsed.metadata.iter().all(|(_, m)| m.help == "help \\ with\nnewline"));
    let mut scanned = Vec::new();
    let metadata = scan(body.as_bytes(), format, |raw| {
        scanned.push((raw.labels().unwrap(), raw.value.to_bits(), raw.timestamp_ms));
        ControlFlow::Continue(())
    })
    .map_err(|e| TestCaseError::fail(format!("{e}\n{body}")))?;
    let expected: Vec<_> = parsed
        .samples
        .iter()
        .map(|s| (s.labels.clone(), s.value.to_bits(), s.timestamp_ms))
        .collect();
    prop_assert_eq!(scanned, expected);
    prop_assert_eq!(metadata, parsed.metadata);
    Ok(())
}

proptest! {
    #[test]
    fn text_round_trip(fams in proptest::collection::vec(family(), 1..6)) {
        check(Format::PrometheusText, &fams)?;
    }

    #[test]
    fn openmetrics_round_trip(fams in proptest::collection::vec(family(), 1..6)) {
        check(Format::OpenMetrics, &fams)?;
    }

    #[test]
    fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        for format in [Format::OpenMetrics, Format::PrometheusText] {
            let parsed = parse(&body, format);
            let mut labels_ok = true;
            let scanned = scan(&body, format, |raw| {
                labels_ok &= raw.labels().is_ok();
                ControlFlow::Continue(())
            });
            prop_assert_eq!(parsed.is_ok(), scanned.is_ok() && labels_ok, "scan and parse disagree on {:?}", body);
        }
    }
}
