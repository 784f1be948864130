//! LogQL's syntax tree.

use regex::Regex;
use sextant_model::Matcher;
use sextant_template::Template;

/// A parsed query.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A log query: entries.
    Log(LogExpr),
    /// A metric query: samples.
    Metric(MetricExpr),
}

/// A stream selector with its pipeline.
#[derive(Debug, Clone)]
pub struct LogExpr {
    /// `{...}`
    pub matchers: Vec<Matcher>,
    /// `| ...` stages in order.
    pub stages: Vec<Stage>,
}

/// Line filter operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineOp {
    /// `|=`
    Contains,
    /// `!=`
    NotContains,
    /// `|~`
    Match,
    /// `!~`
    NotMatch,
    /// `|>`
    Pattern,
    /// `!>`
    NotPattern,
}

/// One operand of a line filter.
#[derive(Debug, Clone)]
pub enum LineValue {
    /// A substring.
    Text(String),
    /// A regular expression (unanchored).
    Regex(Regex),
    /// A pattern of literals and `<_>`.
    Pattern(super::parsers::Pattern),
}

/// A pipeline stage.
#[derive(Debug, Clone)]
pub enum Stage {
    /// `|= "a" or "b"`: the operator and its operands (any matches; for the
    /// negative operators, none matches).
    Line {
        /// The operator of the first operand, inherited by the others.
        op: LineOp,
        /// The operands.
        values: Vec<LineValue>,
    },
    /// `| json` or `| json a="path", b`
    Json(Vec<(String, Vec<JsonPathPart>)>),
    /// `| logfmt [--strict] [--keep-empty] [a, b="c"]`
    Logfmt {
        /// `--strict`
        strict: bool,
        /// `--keep-empty`
        keep_empty: bool,
        /// Requested keys (label, key).
        params: Vec<(String, String)>,
    },
    /// `| regexp "re"`
    Regexp(Regex),
    /// `| pattern "p"`
    Pattern(super::parsers::Pattern),
    /// `| unpack`
    Unpack,
    /// `| decolorize`
    Decolorize,
    /// A label filter.
    Filter(LabelFilter),
    /// `| line_format "tmpl"`
    LineFormat(Template),
    /// `| label_format a="tmpl", b=c`
    LabelFormat(Vec<LabelFmt>),
    /// `| drop a, b="x"`
    Drop(Vec<NamedMatcher>),
    /// `| keep a, b="x"`
    Keep(Vec<NamedMatcher>),
}

/// A `json` extraction path element.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonPathPart {
    /// `.key` or `["key"]`
    Key(String),
    /// `[0]`
    Index(usize),
}

/// One `label_format` entry.
#[derive(Debug, Clone)]
pub enum LabelFmt {
    /// `dst=src`
    Rename {
        /// New name.
        dst: String,
        /// Old name.
        src: String,
    },
    /// `dst="template"`
    Template {
        /// Label set.
        dst: String,
        /// The template.
        tmpl: Template,
    },
}

/// A `drop`/`keep` entry: a name, or a matcher on a name's value.
#[derive(Debug, Clone)]
pub struct NamedMatcher {
    /// The label.
    pub name: String,
    /// Only when the value matches.
    pub matcher: Option<Matcher>,
}

/// Comparison operators of label filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=` or `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

impl CmpOp {
    /// Applies the comparison.
    pub fn test(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
        }
    }
}

/// What a numeric label filter converts the label with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// A float.
    Number,
    /// A Go duration, in seconds.
    Duration,
    /// A byte size.
    Bytes,
}

/// A label filter expression.
#[derive(Debug, Clone)]
pub enum LabelFilter {
    /// Both.
    And(Box<LabelFilter>, Box<LabelFilter>),
    /// Either (the left first).
    Or(Box<LabelFilter>, Box<LabelFilter>),
    /// A string matcher.
    Str(Matcher),
    /// A numeric comparison.
    Num {
        /// The label.
        name: String,
        /// Operator.
        op: CmpOp,
        /// Converted literal (seconds for durations, bytes for sizes).
        value: f64,
        /// How the label's value is converted.
        conv: Conversion,
    },
}

/// `| unwrap` with its conversion and the filters after it.
#[derive(Debug, Clone)]
pub struct Unwrap {
    /// The label.
    pub name: String,
    /// How its value is converted.
    pub conv: Conversion,
    /// Label filters after `unwrap`.
    pub post_filters: Vec<LabelFilter>,
}

/// Range aggregation functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum RangeFn {
    CountOverTime,
    Rate,
    RateCounter,
    BytesOverTime,
    BytesRate,
    AvgOverTime,
    SumOverTime,
    MinOverTime,
    MaxOverTime,
    StdvarOverTime,
    StddevOverTime,
    QuantileOverTime,
    FirstOverTime,
    LastOverTime,
    AbsentOverTime,
}

impl RangeFn {
    /// From its name.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "count_over_time" => Self::CountOverTime,
            "rate" => Self::Rate,
            "rate_counter" => Self::RateCounter,
            "bytes_over_time" => Self::BytesOverTime,
            "bytes_rate" => Self::BytesRate,
            "avg_over_time" => Self::AvgOverTime,
            "sum_over_time" => Self::SumOverTime,
            "min_over_time" => Self::MinOverTime,
            "max_over_time" => Self::MaxOverTime,
            "stdvar_over_time" => Self::StdvarOverTime,
            "stddev_over_time" => Self::StddevOverTime,
            "quantile_over_time" => Self::QuantileOverTime,
            "first_over_time" => Self::FirstOverTime,
            "last_over_time" => Self::LastOverTime,
            "absent_over_time" => Self::AbsentOverTime,
            _ => return None,
        })
    }

    /// Whether it needs `unwrap`.
    pub fn needs_unwrap(self) -> bool {
        !matches!(
            self,
            Self::CountOverTime | Self::Rate | Self::BytesOverTime | Self::BytesRate | Self::AbsentOverTime
        )
    }
}

/// Vector aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum AggOp {
    Sum,
    Avg,
    Count,
    Max,
    Min,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Sort,
    SortDesc,
}

impl AggOp {
    /// From its name.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "sum" => Self::Sum,
            "avg" => Self::Avg,
            "count" => Self::Count,
            "max" => Self::Max,
            "min" => Self::Min,
            "stddev" => Self::Stddev,
            "stdvar" => Self::Stdvar,
            "topk" => Self::Topk,
            "bottomk" => Self::Bottomk,
            "sort" => Self::Sort,
            "sort_desc" => Self::SortDesc,
            _ => return None,
        })
    }
}

/// `by (...)` or `without (...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Grouping {
    /// `without` rather than `by`.
    pub without: bool,
    /// The labels.
    pub labels: Vec<String>,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    And,
    Or,
    Unless,
}

impl BinOp {
    /// Whether it is a comparison.
    pub fn is_comparison(self) -> bool {
        matches!(self, Self::Eq | Self::Ne | Self::Gt | Self::Ge | Self::Lt | Self::Le)
    }

    /// Whether it is a set operator.
    pub fn is_set(self) -> bool {
        matches!(self, Self::And | Self::Or | Self::Unless)
    }
}

/// `on`/`ignoring` and `group_left`/`group_right`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VectorMatching {
    /// `on(...)` (`Some(true)`), `ignoring(...)` (`Some(false)`).
    pub on: Option<bool>,
    /// Their labels.
    pub labels: Vec<String>,
    /// `group_left` (`Some(true)`), `group_right` (`Some(false)`).
    pub group_left: Option<bool>,
    /// Labels copied from the "one" side.
    pub include: Vec<String>,
}

/// A metric expression.
#[derive(Debug, Clone)]
pub enum MetricExpr {
    /// `fn([param,] log-range) [grouping]`
    Range {
        /// Function.
        func: RangeFn,
        /// Selector and pipeline.
        log: LogExpr,
        /// Range, ns.
        range: i64,
        /// Offset, ns.
        offset: i64,
        /// `| unwrap`
        unwrap: Option<Unwrap>,
        /// `by`/`without` on the range aggregation.
        grouping: Option<Grouping>,
        /// φ of `quantile_over_time`.
        param: Option<f64>,
    },
    /// `op [grouping] ([param,] expr)`
    Agg {
        /// Operator.
        op: AggOp,
        /// Grouping.
        grouping: Option<Grouping>,
        /// k of topk/bottomk.
        param: Option<f64>,
        /// Operand.
        inner: Box<MetricExpr>,
    },
    /// `lhs op rhs`
    Binary {
        /// Operator.
        op: BinOp,
        /// `bool`
        return_bool: bool,
        /// Matching.
        matching: VectorMatching,
        /// Left.
        lhs: Box<MetricExpr>,
        /// Right.
        rhs: Box<MetricExpr>,
    },
    /// A number.
    Literal(f64),
    /// `vector(n)`
    Vector(f64),
    /// `label_replace(expr, dst, replacement, src, regex)`
    LabelReplace {
        /// Operand.
        inner: Box<MetricExpr>,
        /// Destination label.
        dst: String,
        /// Replacement with `$1`.
        replacement: String,
        /// Source label.
        src: String,
        /// Anchored regex.
        regex: Regex,
    },
}
