//! Random PromQL over awkward data (NaN, ±Inf, staleness markers, counter resets,
//! gaps, colliding label sets) never panics: every query either answers or returns
//! an error, as an instant query and as a range query.

mod support;

use proptest::prelude::*;
use sextant_model::{Labels, Sample, stale_nan};
use sextant_promql::{Engine, EngineOptions, QueryRange};
use support::script::MemStorage;

fn storage() -> MemStorage {
    let mut s = MemStorage::default();
    let values = [
        1.0,
        2.0,
        f64::NAN,
        0.0,
        -3.5,
        f64::INFINITY,
        5.0,
        1.0,
        f64::NEG_INFINITY,
        7.0,
    ];
    for (i, name) in ["m", "n"].iter().enumerate() {
        for a in ["1", "2", "3"] {
            let labels =
                Labels::from_pairs([("__name__", *name), ("a", a), ("le", if a == "3" { "+Inf" } else { a })]).unwrap();
            let samples = (0..40)
                .filter(|k| (k + i) % 7 != 3)
                .map(|k| {
                    let v = if k == 20 {
                        stale_nan()
                    } else {
                        values[(k + i) % values.len()] * (k as f64)
                    };
                    Sample::new(k as i64 * 15_000, v)
                })
                .collect();
            s.add(labels, samples);
        }
    }
    s
}

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("m".to_string()),
        Just("n".to_string()),
        Just("m{a=\"1\"}".to_string()),
        Just("{__name__=~\"m|n\"}".to_string()),
        Just("m offset 1m".to_string()),
        Just("n @ 300".to_string()),
        Just("m offset -2m".to_string()),
        prop_oneof![
            Just("0"),
            Just("1"),
            Just("-1"),
            Just("NaN"),
            Just("Inf"),
            Just("0.5"),
            Just("1e308"),
            Just("3")
        ]
        .prop_map(String::from),
    ]
}

fn range(inner: String) -> impl Strategy<Value = String> {
    prop_oneof![
        Just(format!("{inner}[1m]")),
        Just(format!("{inner}[5m:30s]")),
        Just(format!("{inner}[2m:]")),
        Just(format!("{inner}[1m] offset 30s")),
    ]
}

fn expr() -> impl Strategy<Value = String> {
    leaf().prop_recursive(3, 24, 3, |inner| {
        let f1 = [
            "abs",
            "ceil",
            "floor",
            "exp",
            "ln",
            "sqrt",
            "sgn",
            "sort",
            "sort_desc",
            "timestamp",
            "absent",
            "scalar",
            "vector",
            "day_of_week",
            "hour",
            "acosh",
            "atanh",
            "deg",
            "round",
        ];
        let fr = [
            "rate",
            "irate",
            "increase",
            "delta",
            "idelta",
            "deriv",
            "changes",
            "resets",
            "avg_over_time",
            "min_over_time",
            "max_over_time",
            "sum_over_time",
            "count_over_time",
            "last_over_time",
            "stddev_over_time",
            "stdvar_over_time",
            "present_over_time",
            "absent_over_time",
        ];
        let aggs = ["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"];
        let ops = [
            "+",
            "-",
            "*",
            "/",
            "%",
            "^",
            "==",
            "!=",
            ">",
            "<",
            ">=",
            "<=",
            "and",
            "or",
            "unless",
            "atan2",
            "> bool",
            "+ on(a)",
            "* ignoring(le) group_left",
            "/ on(a) group_right",
            "+ on()",
        ];
        prop_oneof![
            (proptest::sample::select(f1.to_vec()), inner.clone()).prop_map(|(f, e)| format!("{f}({e})")),
            (
                proptest::sample::select(fr.to_vec()),
                inner.clone().prop_flat_map(range)
            )
                .prop_map(|(f, e)| format!("{f}({e})")),
            (inner.clone(), inner.clone().prop_flat_map(range))
                .prop_map(|(q, e)| format!("quantile_over_time({q}, {e})")),
            (inner.clone(), inner.clone().prop_flat_map(range)).prop_map(|(t, e)| format!("predict_linear({e}, {t})")),
            (inner.clone().prop_flat_map(range), inner.clone(), inner.clone())
                .prop_map(|(e, a, b)| format!("holt_winters({e}, {a}, {b})")),
            (proptest::sample::select(aggs.to_vec()), inner.clone()).prop_map(|(a, e)| format!("{a} by (a) ({e})")),
            (inner.clone(), inner.clone()).prop_map(|(k, e)| format!("topk({k}, {e})")),
            (inner.clone(), inner.clone()).prop_map(|(k, e)| format!("bottomk without (le) ({k}, {e})")),
            (inner.clone(), inner.clone()).prop_map(|(q, e)| format!("quantile({q}, {e})")),
            inner.clone().prop_map(|e| format!("count_values(\"v\", {e})")),
            (inner.clone(), inner.clone()).prop_map(|(q, e)| format!("histogram_quantile({q}, {e})")),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(e, lo, hi)| format!("clamp({e}, {lo}, {hi})")),
            inner
                .clone()
                .prop_map(|e| format!("label_replace({e}, \"a\", \"$1x\", \"le\", \"(.*)\")")),
            inner
                .clone()
                .prop_map(|e| format!("label_join({e}, \"le\", \"-\", \"a\", \"__name__\")")),
            (inner.clone(), proptest::sample::select(ops.to_vec()), inner.clone())
                .prop_map(|(l, o, r)| format!("({l}) {o} ({r})")),
            inner.clone().prop_map(|e| format!("-({e})")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn evaluation_never_panics(q in expr()) {
        let storage = storage();
        let engine = Engine::new(EngineOptions { max_samples: 200_000, ..EngineOptions::default() });
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let Ok(e) = sextant_promql::parse(&q) else { return Ok(()) };
        let _ = rt.block_on(engine.instant(&storage, &e, 300_000));
        let _ = rt.block_on(engine.range(&storage, &e, QueryRange { start_ms: 0, end_ms: 600_000, step_ms: 20_000 }));
    }
}
