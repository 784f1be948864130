//! The side-by-side query list (`tests/promql-side-by-side/queries.promql`, run against
//! Prometheus by `scripts/prometheus-side-by-side`) stays valid and complete: at least 200
//! queries, each parses, and every 2.42 function, aggregation, operator and modifier
//! appears.

use std::path::PathBuf;

const FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_quantile",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

const AGGREGATIONS: &[&str] = &[
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
];

const OPERATORS_AND_MODIFIERS: &[&str] = &[
    " + ",
    " - ",
    " * ",
    " / ",
    " % ",
    " ^ ",
    " atan2 ",
    " == ",
    " != ",
    " > ",
    " < ",
    " >= ",
    " <= ",
    " bool ",
    " and ",
    " or ",
    " unless ",
    "on(",
    "ignoring(",
    "group_left",
    "group_right",
    " by (",
    " without (",
    " offset ",
    "offset -",
    "@ {T}",
    "@ start()",
    "@ end()",
    ":]",
    ":5s]",
];

#[test]
fn the_query_list_parses_and_covers_promql() {
    let path = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("../../tests/promql-side-by-side/queries.promql");
    let text = std::fs::read_to_string(&path).unwrap();
    let queries: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(queries.len() >= 200, "only {} queries", queries.len());
    for q in &queries {
        let q = q.replace("{T}", "1700000000");
        sextant_promql::parse(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
    }
    let all = queries.join("\n");
    let called = |name: &str| {
        all.match_indices(&format!("{name}("))
            .any(|(i, _)| i == 0 || !all.as_bytes()[i - 1].is_ascii_alphanumeric() && all.as_bytes()[i - 1] != b'_')
    };
    for f in FUNCTIONS {
        assert!(called(f), "no query calls {f}()");
    }
    for a in AGGREGATIONS {
        assert!(
            called(a) || all.contains(&format!("{a} by (")) || all.contains(&format!("{a} without (")),
            "no query uses {a}"
        );
    }
    for o in OPERATORS_AND_MODIFIERS {
        assert!(all.contains(o), "no query uses {o:?}");
    }
}
