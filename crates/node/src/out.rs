//! What collectors write into: metric families gathered by name, rendered once at the
//! end in the text format, sorted as node_exporter's registry sorts them (families by
//! name, series by label values, labels by name).

use std::collections::HashMap;

use sextant_expfmt::{Format, TextEncoder};
use sextant_model::MetricType;

/// One series of a family. `name` differs from the family's only for histogram and
/// summary parts read from text files (`_bucket`, `_sum`, `_count`).
#[derive(Debug)]
struct Series {
    name: Option<String>,
    labels: Vec<(String, String)>,
    value: f64,
    timestamp_ms: Option<i64>,
}

#[derive(Debug)]
struct Family {
    name: String,
    typ: MetricType,
    help: String,
    series: Vec<Series>,
}

/// Metric families under construction. A family exists only once it has a series, as
/// in node_exporter, where a family without metrics is never exposed.
#[derive(Debug, Default)]
pub(crate) struct Out {
    families: Vec<Family>,
    by_name: HashMap<String, usize>,
}

impl Out {
    /// A gauge sample.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.push(name, MetricType::Gauge, help, None, labels, value, None);
    }

    /// A counter sample.
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.push(name, MetricType::Counter, help, None, labels, value, None);
    }

    /// An untyped sample.
    pub fn untyped(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.push(name, MetricType::Unknown, help, None, labels, value, None);
    }

    /// A sample of family `family` whose own name may differ (`x_bucket` of histogram
    /// `x`), with an optional timestamp: what a text file can hold.
    #[allow(clippy::too_many_arguments)]
    pub fn sample_of(
        &mut self,
        family: &str,
        typ: MetricType,
        help: &str,
        sample_name: &str,
        labels: &[(&str, &str)],
        value: f64,
        timestamp_ms: Option<i64>,
    ) {
        let own = (sample_name != family).then_some(sample_name);
        self.push(family, typ, help, own, labels, value, timestamp_ms);
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        family: &str,
        typ: MetricType,
        help: &str,
        sample_name: Option<&str>,
        labels: &[(&str, &str)],
        value: f64,
        timestamp_ms: Option<i64>,
    ) {
        let i = match self.by_name.get(family) {
            Some(&i) => i,
            None => {
                self.families.push(Family {
                    name: family.to_owned(),
                    typ,
                    help: help.to_owned(),
                    series: Vec::new(),
                });
                self.by_name.insert(family.to_owned(), self.families.len() - 1);
                self.families.len() - 1
            }
        };
        let mut labels: Vec<(String, String)> =
            labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.families[i].series.push(Series {
            name: sample_name.map(str::to_owned),
            labels,
            value,
            timestamp_ms,
        });
    }

    /// The exposition body in the Prometheus text format. A series written twice is
    /// exposed once (the first), where node_exporter's registry would log an error.
    pub fn render(mut self) -> String {
        self.families.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let mut e = TextEncoder::new(Format::PrometheusText);
        for f in &mut self.families {
            // client_golang's order: fewer labels first, then label values pairwise.
            f.series.sort_by(|a, b| {
                a.name
                    .cmp(&b.name)
                    .then_with(|| a.labels.len().cmp(&b.labels.len()))
                    .then_with(|| a.labels.iter().map(|l| &l.1).cmp(b.labels.iter().map(|l| &l.1)))
            });
            f.series.dedup_by(|b, a| a.name == b.name && a.labels == b.labels);
            e.family(&f.name, f.typ, &f.help, "");
            for s in &f.series {
                let labels: Vec<(&str, &str)> = s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                e.sample(s.name.as_deref().unwrap_or(&f.name), &labels, s.value, s.timestamp_ms);
            }
        }
        e.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_sorted_series_sorted_duplicates_dropped() {
        let mut o = Out::default();
        o.gauge("node_b", "B.", &[("x", "2")], 2.0);
        o.counter("node_a_total", "A.", &[], 1.0);
        o.gauge("node_b", "B.", &[("x", "1")], 1.0);
        o.gauge("node_b", "B.", &[("x", "1")], 9.0);
        assert_eq!(
            o.render(),
            "# HELP node_a_total A.\n# TYPE node_a_total counter\nnode_a_total 1\n\
             # HELP node_b B.\n# TYPE node_b gauge\nnode_b{x=\"1\"} 1\nnode_b{x=\"2\"} 2\n"
        );
    }
}
