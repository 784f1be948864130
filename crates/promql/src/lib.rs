//! PromQL evaluation with Prometheus 2.42's semantics, over any [`Queryable`] storage.
//!
//! A query runs in two phases. First the expression tree is walked to find every
//! selector and the time range it can touch (offsets, `@`, ranges, subqueries and the
//! lookback delta included); each distinct selector is fetched from storage once.
//! Then the tree is evaluated over all steps at once: every node yields, per series, a
//! dense array with one optional value per step. Selectors and range functions walk
//! each series once with a sliding window instead of seeking per step; aggregations
//! and binary operators work step by step, as Prometheus defines them. An instant
//! query is a range query with one step.
//!
//! Parsing is `promql-parser`'s; the evaluator accepts its AST, so callers may build or
//! rewrite expressions (the conformance harness adds `@` modifiers this way).

// Evaluation walks several per-step arrays in lockstep; indexing by step reads
// better there than zipped iterators.
#![allow(clippy::needless_range_loop)]

mod aggregate;
mod eval;
mod functions;
mod prefetch;
mod value;

use std::future::Future;
use std::time::{Duration, Instant};

pub use promql_parser::parser::Expr;
use promql_parser::parser::value::ValueType;
use sextant_model::{Matcher, SeriesData};

pub use value::{InstantSample, QueryValue, RangeSeries, format_value, write_value};

/// Where a query reads samples from.
pub trait Queryable: Sync {
    /// Every series matching all `matchers`, with its samples in `[start_ms, end_ms]`
    /// (both inclusive) in time order, staleness markers included. Series without
    /// samples in the range may be left out.
    fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> impl Future<Output = Result<Vec<SeriesData>, String>> + Send;
}

#[cfg(feature = "store")]
impl Queryable for sextant_store::MetricsStore {
    async fn select(&self, matchers: &[Matcher], start_ms: i64, end_ms: i64) -> Result<Vec<SeriesData>, String> {
        sextant_store::MetricsStore::select(self, matchers, start_ms, end_ms)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Why a query failed; maps onto Prometheus' API error types.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The expression does not parse or is not valid for this kind of query
    /// (`bad_data`).
    #[error("{0}")]
    BadData(String),
    /// Evaluation failed (`execution`), e.g. many-to-many matching.
    #[error("{0}")]
    Execution(String),
    /// The query ran past its timeout (`timeout`).
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// The query would hold more samples in memory than allowed (`execution`).
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(&'static str),
    /// Storage failed (`internal`).
    #[error("{0}")]
    Storage(String),
}

/// Engine settings; the defaults are Prometheus'.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for the latest sample (5m).
    pub lookback_delta: Duration,
    /// Most samples a query may hold in memory at once (50,000,000).
    pub max_samples: usize,
    /// Longest a query may run (2m).
    pub timeout: Duration,
    /// Step of a subquery written without one (`x[1h:]`): the global evaluation
    /// interval (1m).
    pub default_subquery_step: Duration,
    /// `rate` and `increase` count the exact increase from the last sample at or before
    /// the window's start (within the lookback delta) to the last sample in it, with
    /// counter resets and without extrapolation; the window is open at its start. So
    /// consecutive windows add up to exactly the increase over their union, which is
    /// what the SLO engine's slices need. Off (Prometheus' extrapolation) by default.
    pub exact_counter_windows: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step: Duration::from_secs(60),
            exact_counter_windows: false,
        }
    }
}

/// The time range of a query: one step for an instant query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryRange {
    /// First evaluation time, epoch milliseconds.
    pub start_ms: i64,
    /// Last evaluation time, epoch milliseconds (inclusive).
    pub end_ms: i64,
    /// Step between evaluation times, milliseconds (> 0).
    pub step_ms: i64,
}

impl QueryRange {
    /// An instant query at `t_ms`.
    pub fn instant(t_ms: i64) -> Self {
        Self {
            start_ms: t_ms,
            end_ms: t_ms,
            step_ms: 1,
        }
    }
}

/// The matchers of every selector in `expr` (for callers that fetch the data of
/// many queries at once; selectors with invalid matchers are left out).
pub fn selector_matchers(expr: &Expr) -> Vec<Vec<sextant_model::Matcher>> {
    prefetch::plan(expr, QueryRange::instant(0), &EngineOptions::default())
        .into_iter()
        .map(|f| f.matchers)
        .collect()
}

/// Data fetched once for many queries: the series matching some selectors over a
/// time range, held in memory. Reads inside that range and the selectors are served
/// from it; any other read goes to the store, so answers never depend on what was
/// prefetched.
#[cfg(feature = "store")]
pub struct Prefetched {
    store: sextant_store::MetricsStore,
    start_ms: i64,
    end_ms: i64,
    covered: std::collections::HashSet<String>,
    series: Vec<SeriesData>,
}

#[cfg(feature = "store")]
impl Prefetched {
    /// Fetches, in one read, the series of every selector of `exprs` over
    /// `[start_ms, end_ms]`.
    pub async fn load(
        store: &sextant_store::MetricsStore,
        exprs: &[&Expr],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Self, String> {
        let mut sets = Vec::new();
        let mut covered = std::collections::HashSet::new();
        for e in exprs {
            for f in prefetch::plan(e, QueryRange::instant(0), &EngineOptions::default()) {
                if covered.insert(matcher_key(&f.matchers)) {
                    sets.push(f.matchers);
                }
            }
        }
        let series = store
            .select_many(&sets, start_ms, end_ms)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self {
            store: store.clone(),
            start_ms,
            end_ms,
            covered,
            series,
        })
    }
}

#[cfg(feature = "store")]
fn matcher_key(ms: &[sextant_model::Matcher]) -> String {
    let mut parts: Vec<String> = ms.iter().map(|m| format!("{m:?}")).collect();
    parts.sort();
    parts.join(",")
}

#[cfg(feature = "store")]
impl Queryable for Prefetched {
    async fn select(
        &self,
        matchers: &[sextant_model::Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesData>, String> {
        if start_ms < self.start_ms || end_ms > self.end_ms || !self.covered.contains(&matcher_key(matchers)) {
            return Queryable::select(&self.store, matchers, start_ms, end_ms).await;
        }
        Ok(self
            .series
            .iter()
            .filter(|s| matchers.iter().all(|m| m.matches(s.labels.get(&m.name).unwrap_or(""))))
            .filter_map(|s| {
                let lo = s.samples.partition_point(|x| x.t_ms < start_ms);
                let hi = s.samples.partition_point(|x| x.t_ms <= end_ms);
                (hi > lo).then(|| SeriesData {
                    labels: s.labels.clone(),
                    samples: s.samples[lo..hi].to_vec(),
                })
            })
            .collect())
    }
}

/// Parses a PromQL expression, with Prometheus' error text.
pub fn parse(query: &str) -> Result<Expr, Error> {
    register_functions();
    promql_parser::parser::parse(query).map_err(Error::BadData)
}

/// Teaches the parser the Prometheus 2.42 functions it no longer knows
/// (`holt_winters`, renamed in Prometheus 3).
fn register_functions() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use promql_parser::parser::Function;
        let holt_winters = Function::new(
            "holt_winters",
            vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
            0,
            ValueType::Vector,
            false,
        );
        // Only fails if a future parser knows the name itself, which is fine.
        let _ = promql_parser::parser::register_extra_functions(vec![holt_winters]);
    });
}

/// Evaluates PromQL expressions. Cheap to clone; holds only settings.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    options: EngineOptions,
}

impl Engine {
    /// An engine with `options`.
    pub fn new(options: EngineOptions) -> Self {
        Self { options }
    }

    /// The engine's settings.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Evaluates `expr` at one time. Scalars, strings, instant vectors and range
    /// vectors are all valid results.
    pub async fn instant<Q: Queryable>(&self, storage: &Q, expr: &Expr, t_ms: i64) -> Result<QueryValue, Error> {
        self.run_instant(storage, expr, t_ms, self.options.timeout).await
    }

    /// Evaluates `expr` at every step of `range`; the result is a matrix sorted by
    /// labels, even for a single step. Only scalar and instant-vector expressions
    /// are valid.
    pub async fn range<Q: Queryable>(&self, storage: &Q, expr: &Expr, range: QueryRange) -> Result<QueryValue, Error> {
        self.run_range(storage, expr, range, self.options.timeout).await
    }

    /// [`Engine::instant`] with a timeout other than the engine's (the API's `timeout`
    /// parameter; the smaller of the two should be passed).
    pub async fn run_instant<Q: Queryable>(
        &self,
        storage: &Q,
        expr: &Expr,
        t_ms: i64,
        timeout: Duration,
    ) -> Result<QueryValue, Error> {
        self.execute(storage, expr, QueryRange::instant(t_ms), true, timeout)
            .await
    }

    /// [`Engine::range`] with a timeout other than the engine's.
    pub async fn run_range<Q: Queryable>(
        &self,
        storage: &Q,
        expr: &Expr,
        range: QueryRange,
        timeout: Duration,
    ) -> Result<QueryValue, Error> {
        if range.step_ms <= 0 {
            return Err(Error::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        match expr.value_type() {
            ValueType::Scalar | ValueType::Vector => {}
            other => {
                return Err(Error::BadData(format!(
                    "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                    type_name(other)
                )));
            }
        }
        self.execute(storage, expr, range, false, timeout).await
    }

    async fn execute<Q: Queryable>(
        &self,
        storage: &Q,
        expr: &Expr,
        range: QueryRange,
        instant: bool,
        timeout: Duration,
    ) -> Result<QueryValue, Error> {
        let deadline = Instant::now() + timeout;
        let fetches = prefetch::plan(expr, range, &self.options);
        let mut data = prefetch::Fetched::default();
        let mut loaded = 0usize;
        for f in fetches {
            if Instant::now() > deadline {
                return Err(Error::Timeout("query queue"));
            }
            let series = storage
                .select(&f.matchers, f.start_ms, f.end_ms)
                .await
                .map_err(Error::Storage)?;
            loaded += series.iter().map(|s| s.samples.len()).sum::<usize>();
            if loaded > self.options.max_samples {
                return Err(Error::TooManySamples("query execution"));
            }
            data.insert(f.key, series);
        }
        eval::evaluate(expr, range, instant, &self.options, &data, deadline)
    }
}

fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
        ValueType::Vector => "instant vector",
        ValueType::Matrix => "range vector",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_are_bad_data() {
        assert!(matches!(parse("sum(").unwrap_err(), Error::BadData(_)));
        assert!(parse("rate(x[5m])").is_ok());
    }
}
