//! With `exact_counter_windows`, `increase` over consecutive windows adds up to the
//! counter's exact increase over their union, across resets, gaps and windows that
//! split the samples anywhere: the property the SLO engine's slices rest on.

mod support;

use proptest::prelude::*;
use sextant_model::{Labels, Sample};
use sextant_promql::{Engine, EngineOptions, QueryRange, QueryValue};
use support::script::MemStorage;

fn exact_engine() -> Engine {
    Engine::new(EngineOptions {
        exact_counter_windows: true,
        ..EngineOptions::default()
    })
}

/// Increments and reset flags to a counter sampled at `step_ms` with some samples
/// missing.
fn counter(steps: &[(f64, bool, bool)], step_ms: i64) -> Vec<Sample> {
    let mut v = 0.0;
    let mut out = Vec::new();
    for (i, &(inc, reset, missing)) in steps.iter().enumerate() {
        v = if reset { inc } else { v + inc };
        if !missing {
            out.push(Sample::new(1_000 + i as i64 * step_ms, v));
        }
    }
    out
}

/// The increase a reader of every sample would count.
fn true_increase(samples: &[Sample]) -> f64 {
    samples
        .windows(2)
        .map(|p| if p[1].v < p[0].v { p[1].v } else { p[1].v - p[0].v })
        .sum()
}

fn run(storage: &MemStorage, expr: &str, range: QueryRange) -> Vec<Option<f64>> {
    let engine = exact_engine();
    let expr = sextant_promql::parse(expr).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let value = rt.block_on(engine.range(storage, &expr, range)).unwrap();
    let QueryValue::Matrix(series) = value else {
        panic!("not a matrix: {value:?}")
    };
    let n = ((range.end_ms - range.start_ms) / range.step_ms + 1) as usize;
    let mut out = vec![None; n];
    for s in series {
        for p in s.samples {
            out[((p.t_ms - range.start_ms) / range.step_ms) as usize] = Some(p.v);
        }
    }
    out
}

proptest! {
    #[test]
    fn consecutive_windows_sum_to_the_exact_increase(
        steps in proptest::collection::vec((0.0f64..50.0, proptest::bool::weighted(0.05), proptest::bool::weighted(0.1)), 2..200),
        step_s in 5i64..40,
        window_s in 20i64..200,
    ) {
        let samples = counter(&steps, step_s * 1000);
        prop_assume!(samples.len() >= 2);
        let mut storage = MemStorage::default();
        storage.add(Labels::from_pairs([("__name__", "c")]).unwrap(), samples.clone());
        let window = window_s * 1000;
        // Windows (start - window, start], ... covering every sample; the first ends
        // at the first sample, so every increment after it falls in one window.
        let first = samples[0].t_ms;
        let last = samples[samples.len() - 1].t_ms;
        let steps_needed = (last - first + window - 1) / window;
        let range = QueryRange { start_ms: first + window, end_ms: first + steps_needed * window, step_ms: window };
        // Gaps longer than the lookback delta never occur here (steps < 40s).
        let vals = run(&storage, &format!("increase(c[{window_s}s])"), range);
        let sum: f64 = vals.iter().flatten().sum();
        let expected = true_increase(&samples);
        prop_assert!((sum - expected).abs() <= 1e-9 * expected.max(1.0), "sum {sum} expected {expected}");
        let rates = run(&storage, &format!("rate(c[{window_s}s])"), range);
        let rate_sum: f64 = rates.iter().flatten().map(|r| r * window_s as f64).sum();
        prop_assert!((rate_sum - expected).abs() <= 1e-9 * expected.max(1.0));
    }
}

#[test]
fn a_window_without_samples_is_zero_while_the_series_is_present_and_the_base_is_bounded_by_the_lookback() {
    let mut storage = MemStorage::default();
    // Samples at 0s..60s every 15s, then a 10-minute gap, then 660s and 675s.
    let mut samples: Vec<Sample> = (0..5).map(|i| Sample::new(i * 15_000, i as f64 * 10.0)).collect();
    samples.push(Sample::new(660_000, 100.0));
    samples.push(Sample::new(675_000, 110.0));
    storage.add(Labels::from_pairs([("__name__", "c")]).unwrap(), samples);
    let range = QueryRange {
        start_ms: 60_000,
        end_ms: 720_000,
        step_ms: 60_000,
    };
    let vals = run(&storage, "increase(c[1m])", range);
    // (0, 60]: 10+10+10+10 from the sample at 0. Windows ending at 120s..300s have no
    // samples but the series is still present (its last sample within the lookback
    // delta): zero. From 360s it is gone: no value. At (600, 660] the last sample
    // before is 10 minutes old, beyond the lookback: the window starts from its own
    // first sample (0), and (660, 720] adds 10.
    assert_eq!(vals[0], Some(40.0));
    assert!(vals[1..5].iter().all(|v| *v == Some(0.0)), "{vals:?}");
    assert!(vals[5..10].iter().all(Option::is_none), "{vals:?}");
    assert_eq!(vals[10], Some(0.0));
    assert_eq!(vals[11], Some(10.0));
}

#[test]
fn a_staleness_marker_ends_the_series_at_once() {
    let mut storage = MemStorage::default();
    let mut samples: Vec<Sample> = (0..5).map(|i| Sample::new(i * 15_000, i as f64)).collect();
    samples.push(Sample::new(75_000, sextant_model::stale_nan()));
    storage.add(Labels::from_pairs([("__name__", "c")]).unwrap(), samples);
    let range = QueryRange {
        start_ms: 60_000,
        end_ms: 180_000,
        step_ms: 60_000,
    };
    assert_eq!(run(&storage, "increase(c[1m])", range), [Some(4.0), None, None]);
}
