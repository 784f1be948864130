//! Parser throughput on a node_exporter-shaped body (1,000 series in 50 families): the
//! full parse into label sets, and the scrape path's scan.
//! `cargo bench --profile dev -p sextant-expfmt --bench parse`

#![allow(missing_docs)] // criterion's macros generate undocumented items

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::ops::ControlFlow;

use sextant_expfmt::{Format, TextEncoder, parse, scan};
use sextant_model::MetricType;

fn body(format: Format) -> Vec<u8> {
    let mut e = TextEncoder::new(format);
    for f in 0..50 {
        let name = format!("node_family_{f}_total");
        e.family(
            &format!("node_family_{f}"),
            MetricType::Counter,
            "A family of counters with a help text.",
            "",
        );
        for s in 0..20 {
            let (cpu, mode) = (format!("{s}"), format!("mode{}", s % 8));
            e.sample(
                &name,
                &[("cpu", &cpu), ("mode", &mode), ("instance", "host-01:9100")],
                12345.678 + s as f64,
                None,
            );
        }
    }
    e.finish().into_bytes()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for (label, format) in [
        ("text_0.0.4", Format::PrometheusText),
        ("openmetrics", Format::OpenMetrics),
    ] {
        let b = body(format);
        g.throughput(Throughput::Elements(1000));
        g.bench_function(label, |bench| bench.iter(|| parse(&b, format).unwrap()));
        // The scrape path: each line's series text, value and timestamp, as a scrape
        // whose cache knows every series consumes them.
        g.bench_function(format!("{label}_scan"), |bench| {
            bench.iter(|| {
                let mut sum = 0.0;
                scan(&b, format, |raw| {
                    sum += raw.value + raw.series.len() as f64;
                    ControlFlow::Continue(())
                })
                .unwrap();
                sum
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
