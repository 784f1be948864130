//! Prometheus exposition formats: parsing the text format 0.0.4 and OpenMetrics 1.0
//! text, and encoding the text format.
//!
//! The OpenMetrics parser is strict (it passes the OpenMetrics project's parser test
//! suite: every malformed input is rejected); the 0.0.4 parser is as lenient as
//! Prometheus' own, because real targets rely on that leniency. Parsing never panics.
//! This crate knows nothing of scraping or storage.

mod encode;
mod error;
mod number;
mod openmetrics;
mod text;

use std::ops::ControlFlow;

use sextant_model::{Labels, MetricMetadata};

pub use encode::TextEncoder;
pub use error::{Error, Result};

/// `Accept` header Prometheus 2.42 sends on scrapes: OpenMetrics preferred, then text.
pub const SCRAPE_ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Content type of the Prometheus text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Content type of OpenMetrics text.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which exposition format a body is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    PrometheusText,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// The format a scrape response's `Content-Type` announces. Anything that is not
    /// OpenMetrics is read as the text format, as Prometheus does.
    pub fn from_content_type(content_type: &str) -> Self {
        let media = content_type.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Self::OpenMetrics
        } else {
            Self::PrometheusText
        }
    }
}

/// An exemplar attached to a counter or histogram bucket sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    /// The exemplar's own labels (e.g. `trace_id`).
    pub labels: Labels,
    /// The observed value.
    pub value: f64,
    /// When it was observed, epoch milliseconds.
    pub timestamp_ms: Option<i64>,
}

/// One parsed sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample {
    /// Labels including `__name__`; empty values are dropped.
    pub labels: Labels,
    /// The value.
    pub value: f64,
    /// Explicit timestamp in epoch milliseconds, if the line had one.
    pub timestamp_ms: Option<i64>,
    /// Exemplar, OpenMetrics only.
    pub exemplar: Option<Exemplar>,
}

/// A parsed exposition body: samples in input order and metadata per metric family.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// Every sample line.
    pub samples: Vec<ParsedSample>,
    /// `(family name, metadata)` for every family that had `# TYPE`, `# HELP` or `# UNIT`.
    pub metadata: Vec<(String, MetricMetadata)>,
}

/// Parses `body` in `format`.
pub fn parse(body: &[u8], format: Format) -> Result<Exposition> {
    let text = std::str::from_utf8(body).map_err(|e| Error::new(0, format!("invalid UTF-8: {e}")))?;
    match format {
        Format::PrometheusText => text::parse(text),
        Format::OpenMetrics => openmetrics::parse(text),
    }
}

/// One sample line as [`scan`] hands it over, borrowed from the body.
#[derive(Debug, Clone, Copy)]
pub struct RawSample<'a> {
    /// The series as the line writes it, from the metric name through the end of its
    /// label set (`up{job="a"}`). Equal text means an equal label set, which makes it the
    /// key of a scrape cache.
    pub series: &'a str,
    /// The value.
    pub value: f64,
    /// Explicit timestamp in epoch milliseconds, if the line had one.
    pub timestamp_ms: Option<i64>,
    /// The line's number in the body, from 1.
    pub line: usize,
}

impl RawSample<'_> {
    /// The line's label set, with `__name__`, parsed from `series` here, so a caller that
    /// already knows `series` skips the work; an error names the line. (OpenMetrics' label
    /// syntax is a strict subset of the text format's, with the same escapes.)
    pub fn labels(&self) -> Result<Labels> {
        text::labels(self.series).map_err(|m| Error::new(self.line, m))
    }
}

/// Scans `body` in `format`, calling `visit` with each sample line in order until it
/// returns [`ControlFlow::Break`], and returns the metric families' metadata.
///
/// This is the scrape path's parser: nothing is allocated per sample (except for escaped
/// label values and exemplars in OpenMetrics), since a line's label set is parsed only
/// by [`RawSample::labels`]. OpenMetrics is checked as strictly as [`parse`] checks it. A
/// malformed line fails the whole scan with its line number, possibly after earlier
/// lines were visited, and so does a body that breaks a rule only its end shows (a
/// histogram without `+Inf`, a missing `# EOF`).
pub fn scan(
    body: &[u8],
    format: Format,
    mut visit: impl FnMut(&RawSample<'_>) -> ControlFlow<()>,
) -> Result<Vec<(String, MetricMetadata)>> {
    let text = std::str::from_utf8(body).map_err(|e| Error::new(0, format!("invalid UTF-8: {e}")))?;
    match format {
        Format::PrometheusText => text::scan(text, visit),
        Format::OpenMetrics => openmetrics::scan(text, &mut visit),
    }
}
