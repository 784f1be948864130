//! Text-format encoder, used by the built-in node collector and round-trip tests.

use std::fmt::Write;

use sextant_model::MetricType;

use crate::Format;

/// Writes an exposition body family by family, without building intermediate values.
#[derive(Debug)]
pub struct TextEncoder {
    out: String,
    format: Format,
}

impl TextEncoder {
    /// A new encoder for `format`.
    pub fn new(format: Format) -> Self {
        Self {
            out: String::new(),
            format,
        }
    }

    /// Starts a family: `# HELP` and `# TYPE` (and `# UNIT` for OpenMetrics when non-empty).
    pub fn family(&mut self, name: &str, typ: MetricType, help: &str, unit: &str) -> &mut Self {
        let typ_name = match (self.format, typ) {
            (Format::PrometheusText, MetricType::Unknown) => "untyped",
            (_, t) => t.as_str(),
        };
        let _ = writeln!(self.out, "# HELP {name} {}", escape(help, false));
        let _ = writeln!(self.out, "# TYPE {name} {typ_name}");
        if self.format == Format::OpenMetrics && !unit.is_empty() {
            let _ = writeln!(self.out, "# UNIT {name} {unit}");
        }
        self
    }

    /// Writes one sample line. `labels` are written in the given order.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64, timestamp_ms: Option<i64>) -> &mut Self {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v, true));
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(&format_value(value));
        if let Some(ts) = timestamp_ms {
            match self.format {
                Format::PrometheusText => {
                    let _ = write!(self.out, " {ts}");
                }
                Format::OpenMetrics => {
                    let _ = write!(self.out, " {}.{:03}", ts.div_euclid(1000), ts.rem_euclid(1000));
                }
            }
        }
        self.out.push('\n');
        self
    }

    /// The finished body (`# EOF` appended for OpenMetrics).
    pub fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }
}

/// Formats a value the way Prometheus does: shortest round-trip decimal, `+Inf`,
/// `-Inf`, `NaN`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v:?}").trim_end_matches(".0").to_owned()
    }
}

fn escape(s: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}
