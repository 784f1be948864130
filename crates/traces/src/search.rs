//! Trace search: a TraceQL filter compiled to SQL over the buckets a time range
//! overlaps, and tag and tag-value listings.
//!
//! The filter is compiled once into a condition on a span row `s` (and the
//! trace summary `t` when it reads a trace intrinsic) with numbered parameters;
//! the same condition is used for every bucket, with the bucket's attribute
//! table named in it. Span-attribute conditions are semi-joins on the bucket's
//! attribute table by key and value, resource-attribute conditions a lookup in
//! the small `origin_attrs` table; neither decodes a span. Traces are grouped,
//! ordered newest first and cut to the limit only after matching, so a limit
//! never drops a trace that matched.

use duckdb::types::{ToSqlOutput, Value};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::error::{Error, Result};
use crate::span::{PROMOTED, TraceId, ValueKind, kind_name, promoted_column, status_name};
use crate::store::{TraceStore, suffix};
use crate::traceql::{Expr, Field, Intrinsic, Literal, Op, Scope};

/// A search.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// The filter.
    pub filter: Expr,
    /// Spans starting at or after this, ns.
    pub start_ns: i64,
    /// Spans starting at or before this, ns.
    pub end_ns: i64,
    /// Traces returned at most (after matching).
    pub limit: usize,
    /// Matched spans returned per trace at most.
    pub spans_per_set: usize,
}

/// A trace a search found.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceMatch {
    /// The trace.
    pub trace: TraceId,
    /// Its root span's service, if the root has arrived.
    pub root_service: Option<String>,
    /// Its root span's name, if the root has arrived.
    pub root_name: Option<String>,
    /// Earliest span start, ns.
    pub start_ns: i64,
    /// Latest span end minus earliest start, ns.
    pub duration_ns: i64,
    /// How many spans matched.
    pub matched: usize,
    /// The first matched spans (by start), at most `spans_per_set`.
    pub spans: Vec<MatchedSpan>,
}

/// A matched span, with the attributes the query referenced.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchedSpan {
    /// Span id.
    pub span_id: u64,
    /// Its name, when the query referenced `name`.
    pub name: Option<String>,
    /// Start, ns.
    pub start_ns: i64,
    /// Duration, ns.
    pub duration_ns: i64,
    /// Referenced attributes and intrinsics (status, kind as text), bare names.
    pub attributes: Vec<KeyValue>,
}

/// A search parameter.
#[derive(Debug, Clone)]
enum Param {
    Text(String),
    Int(i64),
    Float(f64),
}

impl duckdb::ToSql for Param {
    fn to_sql(&self) -> duckdb::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Param::Text(s) => ToSqlOutput::Owned(Value::Text(s.clone())),
            Param::Int(i) => ToSqlOutput::Owned(Value::BigInt(*i)),
            Param::Float(f) => ToSqlOutput::Owned(Value::Double(*f)),
        })
    }
}

/// The attribute table's name inside a compiled condition, replaced per bucket.
const ATTRS: &str = "{ATTRS}";

struct Compiler {
    params: Vec<Param>,
}

impl Compiler {
    fn param(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.params.len())
    }

    fn expr(&mut self, e: &Expr) -> String {
        match e {
            Expr::True => "true".into(),
            Expr::And(a, b) => format!("({} AND {})", self.expr(a), self.expr(b)),
            Expr::Or(a, b) => format!("({} OR {})", self.expr(a), self.expr(b)),
            Expr::Cmp(f, op, lit) => self.cmp(f, *op, lit),
        }
    }

    /// A comparison of a text column.
    fn text(&mut self, col: &str, op: Op, lit: &Literal) -> String {
        let Literal::Str(s) = lit else {
            return "false".into();
        };
        match op {
            Op::Re => format!(
                "regexp_full_match({col}, {})",
                self.param(Param::Text(format!("(?s:{s})")))
            ),
            Op::NotRe => format!(
                "NOT regexp_full_match({col}, {})",
                self.param(Param::Text(format!("(?s:{s})")))
            ),
            _ => format!("{col} {} {}", op.sql(), self.param(Param::Text(s.clone()))),
        }
    }

    /// A comparison of a stored attribute value (`text`, `num`, `kind` columns),
    /// false for a value of another type.
    fn value(&mut self, text: &str, num: &str, kind: &str, op: Op, lit: &Literal) -> String {
        match lit {
            Literal::Str(_) => format!("({kind} = 0 AND {})", self.text(text, op, lit)),
            Literal::Int(_) | Literal::Float(_) | Literal::Duration(_) => {
                if matches!(op, Op::Re | Op::NotRe) {
                    return "false".into();
                }
                let n = lit.number().unwrap_or(0.0);
                format!(
                    "({kind} IN (1, 2) AND {num} {} {})",
                    op.sql(),
                    self.param(Param::Float(n))
                )
            }
            Literal::Bool(b) => match op {
                Op::Eq | Op::Ne => format!(
                    "({kind} = 3 AND {text} {} {})",
                    op.sql(),
                    self.param(Param::Text(b.to_string()))
                ),
                _ => "false".into(),
            },
            // Nil is handled by the caller; statuses and kinds are never attribute values.
            Literal::Nil | Literal::Status(_) | Literal::Kind(_) => "false".into(),
        }
    }

    /// Whether a span has the attribute, and the comparison on its value.
    fn span_attr(&mut self, name: &str, op: Op, lit: &Literal) -> (String, String) {
        if let Some(i) = PROMOTED.iter().position(|k| *k == name) {
            let c = promoted_column(i);
            let has = format!("(s.{c} IS NOT NULL)");
            let cmp = self.value(&format!("s.{c}"), &format!("s.n{c}"), &format!("s.k{c}"), op, lit);
            return (has, cmp);
        }
        let key = self.param(Param::Text(name.to_owned()));
        let sub = |cond: &str| {
            format!(
                "EXISTS (SELECT 1 FROM {ATTRS} a WHERE a.key = {key} AND a.trace_hi = s.trace_hi \
                 AND a.trace_lo = s.trace_lo AND a.span_id = s.span_id AND {cond})"
            )
        };
        let has = sub("true");
        let cmp = self.value("a.text", "a.num", "a.kind", op, lit);
        let cmp = if cmp == "false" { cmp } else { sub(&cmp) };
        (has, cmp)
    }

    fn resource_attr(&mut self, name: &str, op: Op, lit: &Literal) -> (String, String) {
        let key = self.param(Param::Text(name.to_owned()));
        let sub = |cond: &str| format!("s.origin IN (SELECT o.id FROM origin_attrs o WHERE o.key = {key} AND {cond})");
        let has = sub("true");
        let cmp = self.value("o.text", "o.num", "o.kind", op, lit);
        let cmp = if cmp == "false" { cmp } else { sub(&cmp) };
        (has, cmp)
    }

    fn cmp(&mut self, f: &Field, op: Op, lit: &Literal) -> String {
        match f {
            Field::Attr(scope, name) => {
                let nil = *lit == Literal::Nil;
                let (has, cmp) = match scope {
                    Scope::Span => self.span_attr(name, op, lit),
                    Scope::Resource => self.resource_attr(name, op, lit),
                    Scope::Unscoped => {
                        // The span's value if it has one, else the resource's.
                        let (shas, scmp) = self.span_attr(name, op, lit);
                        let (rhas, rcmp) = self.resource_attr(name, op, lit);
                        (
                            format!("({shas} OR {rhas})"),
                            format!("({scmp} OR (NOT {shas} AND {rcmp}))"),
                        )
                    }
                };
                match (nil, op) {
                    (true, Op::Ne) => has,
                    (true, _) => format!("NOT {has}"),
                    (false, _) => cmp,
                }
            }
            Field::Intrinsic(i) => match i {
                Intrinsic::Name => self.text("s.name", op, lit),
                Intrinsic::StatusMessage => self.text("s.status_message", op, lit),
                Intrinsic::RootName => self.text("t.root_name", op, lit),
                Intrinsic::RootServiceName => self.text("t.root_service", op, lit),
                Intrinsic::Status => {
                    let code = match lit {
                        Literal::Status(c) => *c as i64,
                        Literal::Int(i) => *i,
                        _ => return "false".into(),
                    };
                    format!("s.status {} {}", op.sql(), self.param(Param::Int(code)))
                }
                Intrinsic::Kind => {
                    let Literal::Kind(k) = lit else {
                        return "false".into();
                    };
                    format!("s.kind {} {}", op.sql(), self.param(Param::Int(*k as i64)))
                }
                Intrinsic::Duration | Intrinsic::TraceDuration => {
                    let Some(n) = lit.number() else {
                        return "false".into();
                    };
                    let col = if *i == Intrinsic::Duration {
                        "s.duration_ns"
                    } else {
                        "(t.end_ns - t.start_ns)"
                    };
                    let p = match lit {
                        Literal::Float(f) => self.param(Param::Float(*f)),
                        _ => self.param(Param::Int(n as i64)),
                    };
                    format!("{col} {} {p}", op.sql())
                }
            },
        }
    }
}

/// The merged summaries of the buckets, one row per trace.
fn summaries_sql(buckets: &[i64], restrict: Option<&str>) -> String {
    let union = buckets
        .iter()
        .map(|b| format!("SELECT * FROM traces_{}", suffix(*b)))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let filter = restrict
        .map(|r| {
            format!(" WHERE EXISTS (SELECT 1 FROM {r} WHERE {r}.trace_hi = x.trace_hi AND {r}.trace_lo = x.trace_lo)")
        })
        .unwrap_or_default();
    format!(
        "SELECT trace_hi, trace_lo, min(start_ns) AS start_ns, max(end_ns) AS end_ns, \
         any_value(root_service) AS root_service, any_value(root_name) AS root_name \
         FROM ({union}) x{filter} GROUP BY ALL"
    )
}

fn get_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref())
}

fn string_value(s: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s.to_owned())),
    }
}

impl TraceStore {
    /// Traces with spans matching the filter, newest first. Blocking.
    pub fn search(&self, req: &SearchRequest) -> Result<Vec<TraceMatch>> {
        let buckets = self.buckets_in(req.start_ns, req.end_ns);
        if buckets.is_empty() || req.limit == 0 {
            return Ok(Vec::new());
        }
        let mut c = Compiler { params: Vec::new() };
        let from = c.param(Param::Int(req.start_ns));
        let to = c.param(Param::Int(req.end_ns));
        let cond = c.expr(&req.filter);
        let limit = c.param(Param::Int(req.limit as i64));
        let spss = c.param(Param::Int(req.spans_per_set.max(1) as i64));
        let reads_trace = req.filter.reads_trace();
        let matches = buckets
            .iter()
            .map(|b| {
                let s = suffix(*b);
                let join = if reads_trace {
                    " JOIN ta t USING (trace_hi, trace_lo)"
                } else {
                    ""
                };
                format!(
                    "SELECT s.trace_hi, s.trace_lo, s.span_id, s.start_ns, s.duration_ns, s.name, s.kind, s.status, \
                     s.origin, {b} AS bucket FROM spans_{s} s{join} WHERE s.start_ns BETWEEN {from} AND {to} AND {}",
                    cond.replace(ATTRS, &format!("attrs_{s}"))
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        // A filter on the trace needs every summary in range; otherwise only the
        // matched traces' summaries are merged.
        let (ta, t) = if reads_trace {
            (format!("ta AS ({}), ", summaries_sql(&buckets, None)), "ta")
        } else {
            (String::new(), "t")
        };
        let t_cte = if reads_trace {
            String::new()
        } else {
            format!(", t AS ({})", summaries_sql(&buckets, Some("g")))
        };
        // Matched spans are computed once (small columns only); the spans' bodies
        // are read afterwards for the few returned, and only when the query
        // referenced span attributes.
        let sql = if req.filter == Expr::True {
            // `{}` matches every span: the traces come straight from the merged
            // summaries (those overlapping the range), and only their spans are
            // read (`matched` counts each span id once, as a retry stores twice).
            let union = buckets
                .iter()
                .map(|b| format!("SELECT *, {b} AS bucket FROM spans_{}", suffix(*b)))
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            let merged = summaries_sql(&buckets, None);
            format!(
                "WITH top AS (SELECT trace_hi, trace_lo, start_ns AS t_start, end_ns AS t_end, root_service, \
                         root_name FROM ({merged}) WHERE end_ns >= {from} AND start_ns <= {to} \
                         ORDER BY t_start DESC, trace_hi, trace_lo LIMIT {limit}) \
                 , m AS MATERIALIZED (SELECT s.* FROM ({union}) s SEMI JOIN top USING (trace_hi, trace_lo)), \
                 c AS (SELECT trace_hi, trace_lo, count(DISTINCT span_id) AS matched FROM m GROUP BY ALL) \
                 SELECT top.trace_hi, top.trace_lo, c.matched, top.t_start, top.t_end, top.root_service, top.root_name, \
                        m.span_id, m.start_ns, m.duration_ns, m.name, m.kind, m.status, m.origin, m.bucket \
                 FROM top JOIN c USING (trace_hi, trace_lo) JOIN m USING (trace_hi, trace_lo) \
                 QUALIFY row_number() OVER (PARTITION BY top.trace_hi, top.trace_lo ORDER BY m.start_ns, m.span_id) <= {spss} \
                 ORDER BY top.t_start DESC, top.trace_hi, top.trace_lo, m.start_ns, m.span_id"
            )
        } else {
            format!(
                "WITH {ta}m AS MATERIALIZED ({matches}), \
             g AS (SELECT trace_hi, trace_lo, count(DISTINCT span_id) AS matched FROM m GROUP BY ALL){t_cte}, \
             top AS (SELECT g.trace_hi, g.trace_lo, g.matched, x.start_ns AS t_start, x.end_ns AS t_end, \
                     x.root_service, x.root_name FROM g JOIN {t} x USING (trace_hi, trace_lo) \
                     ORDER BY x.start_ns DESC, g.trace_hi, g.trace_lo LIMIT {limit}) \
             SELECT top.trace_hi, top.trace_lo, top.matched, top.t_start, top.t_end, top.root_service, top.root_name, \
                    m.span_id, m.start_ns, m.duration_ns, m.name, m.kind, m.status, m.origin, m.bucket \
             FROM top JOIN m USING (trace_hi, trace_lo) \
             QUALIFY row_number() OVER (PARTITION BY top.trace_hi, top.trace_lo ORDER BY m.start_ns, m.span_id) <= {spss} \
             ORDER BY top.t_start DESC, top.trace_hi, top.trace_lo, m.start_ns, m.span_id"
            )
        };
        type Row = (
            (i64, i64, i64, i64, i64, Option<String>, Option<String>),
            (i64, i64, i64, String, i8, i8, i64, i64),
        );
        let fields = req.filter.fields();
        let needs_body = fields.iter().any(|f| {
            matches!(
                f,
                Field::Attr(Scope::Span | Scope::Unscoped, _) | Field::Intrinsic(Intrinsic::StatusMessage)
            )
        });
        // Span bodies by (trace halves, span id).
        type Bodies = std::collections::HashMap<(i64, i64, i64), Vec<u8>>;
        let (rows, bodies): (Vec<Row>, Bodies) = self.with_reader(|conn| {
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt
                .query_map(duckdb::params_from_iter(c.params.iter()), |r| {
                    Ok((
                        (
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                        ),
                        (
                            r.get(7)?,
                            r.get(8)?,
                            r.get(9)?,
                            r.get(10)?,
                            r.get(11)?,
                            r.get(12)?,
                            r.get(13)?,
                            r.get(14)?,
                        ),
                    ))
                })?
                .collect::<duckdb::Result<Vec<Row>>>()?;
            let mut bodies = std::collections::HashMap::new();
            if needs_body && !rows.is_empty() {
                let mut by_bucket: std::collections::BTreeMap<i64, Vec<(i64, i64, i64)>> = Default::default();
                for ((hi, lo, ..), (span_id, .., bucket)) in &rows {
                    by_bucket.entry(*bucket).or_default().push((*hi, *lo, *span_id));
                }
                for (bucket, keys) in by_bucket {
                    // Constants, so the scan can skip row groups by trace id.
                    let his: Vec<String> = keys.iter().map(|k| k.0.to_string()).collect();
                    let sql = format!(
                        "SELECT trace_hi, trace_lo, span_id, detail FROM spans_{} WHERE trace_hi IN ({})",
                        suffix(bucket),
                        his.join(",")
                    );
                    let mut stmt = conn.prepare(&sql)?;
                    let found =
                        stmt.query_map([], |r| Ok(((r.get(0)?, r.get(1)?, r.get(2)?), r.get::<_, Vec<u8>>(3)?)))?;
                    for f in found {
                        let (k, body) = f?;
                        if keys.contains(&k) {
                            bodies.entry(k).or_insert(body);
                        }
                    }
                }
            }
            Ok((rows, bodies))
        })?;
        let mut out: Vec<TraceMatch> = Vec::new();
        for (
            (hi, lo, matched, t_start, t_end, rs, rn),
            (span_id, start_ns, duration_ns, name, kind, status, origin, _bucket),
        ) in rows
        {
            let trace = TraceId::from_halves(hi, lo);
            if out.last().is_none_or(|m| m.trace != trace) {
                out.push(TraceMatch {
                    trace,
                    root_service: rs,
                    root_name: rn,
                    start_ns: t_start,
                    duration_ns: (t_end - t_start).max(0),
                    matched: matched as usize,
                    spans: Vec::new(),
                });
            }
            let m = out.last_mut().expect("pushed above");
            if m.spans.iter().any(|s| s.span_id == span_id as u64) {
                continue;
            }
            let span = bodies
                .get(&(hi, lo, span_id))
                .and_then(|b| Span::decode(b.as_slice()).ok())
                .unwrap_or_default();
            let origin = self.origin(origin);
            let resource_attrs: &[KeyValue] = origin
                .as_ref()
                .and_then(|o| o.resource.as_ref())
                .map(|r| r.attributes.as_slice())
                .unwrap_or(&[]);
            let mut attributes = Vec::new();
            let mut show_name = false;
            for f in &fields {
                let (key, value) = match f {
                    Field::Intrinsic(Intrinsic::Name) => {
                        show_name = true;
                        continue;
                    }
                    Field::Intrinsic(Intrinsic::Status) => {
                        ("status".to_owned(), Some(string_value(status_name(status))))
                    }
                    Field::Intrinsic(Intrinsic::Kind) => ("kind".to_owned(), Some(string_value(kind_name(kind)))),
                    Field::Intrinsic(Intrinsic::StatusMessage) => (
                        "statusMessage".to_owned(),
                        span.status.as_ref().map(|s| string_value(&s.message)),
                    ),
                    Field::Intrinsic(_) => continue,
                    Field::Attr(Scope::Span, n) => (n.clone(), get_attr(&span.attributes, n).cloned()),
                    Field::Attr(Scope::Resource, n) => (n.clone(), get_attr(resource_attrs, n).cloned()),
                    Field::Attr(Scope::Unscoped, n) => (
                        n.clone(),
                        get_attr(&span.attributes, n)
                            .or_else(|| get_attr(resource_attrs, n))
                            .cloned(),
                    ),
                };
                if let Some(value) = value
                    && !attributes.iter().any(|kv: &KeyValue| kv.key == key)
                {
                    attributes.push(KeyValue {
                        key,
                        value: Some(value),
                        ..Default::default()
                    });
                }
            }
            m.spans.push(MatchedSpan {
                span_id: span_id as u64,
                name: show_name.then_some(name),
                start_ns,
                duration_ns,
                attributes,
            });
        }
        Ok(out)
    }

    /// Attribute names by scope (`span`, `resource`) seen in `[from_ns, to_ns]`,
    /// sorted, at most `limit` per scope. Blocking.
    pub fn tag_names(&self, from_ns: i64, to_ns: i64, limit: usize) -> Result<Vec<(&'static str, Vec<String>)>> {
        let buckets = self.buckets_in(from_ns, to_ns);
        let mut span_tags: Vec<String> = Vec::new();
        if !buckets.is_empty() {
            let mut parts: Vec<String> = buckets
                .iter()
                .map(|b| format!("SELECT DISTINCT key FROM attrs_{}", suffix(*b)))
                .collect();
            for b in &buckets {
                for (i, k) in PROMOTED.iter().enumerate() {
                    parts.push(format!(
                        "(SELECT '{k}' AS key FROM spans_{} WHERE {} IS NOT NULL LIMIT 1)",
                        suffix(*b),
                        promoted_column(i)
                    ));
                }
            }
            let sql = format!(
                "SELECT DISTINCT key FROM ({}) ORDER BY key LIMIT {limit}",
                parts.join(" UNION ALL ")
            );
            span_tags = self.with_reader(|c| {
                let mut stmt = c.prepare(&sql)?;
                let v = stmt
                    .query_map([], |r| r.get::<_, String>(0))?
                    .collect::<duckdb::Result<Vec<_>>>()?;
                Ok(v)
            })?;
        }
        let resource_tags = self.with_reader(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT DISTINCT key FROM origin_attrs ORDER BY key LIMIT {limit}"
            ))?;
            let v = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<duckdb::Result<Vec<_>>>()?;
            Ok(v)
        })?;
        Ok(vec![("resource", resource_tags), ("span", span_tags)])
    }

    /// Values of a tag (`span.x`, `resource.x`, `.x`, or an intrinsic) with
    /// their types, among spans in `[from_ns, to_ns]` that match `filter`,
    /// at most `limit`. Blocking.
    pub fn tag_values(
        &self,
        tag: &Field,
        filter: &Expr,
        from_ns: i64,
        to_ns: i64,
        limit: usize,
    ) -> Result<Vec<(String, &'static str)>> {
        match tag {
            Field::Intrinsic(Intrinsic::Status) => {
                return Ok(["error", "ok", "unset"]
                    .iter()
                    .map(|s| (s.to_string(), "keyword"))
                    .collect());
            }
            Field::Intrinsic(Intrinsic::Kind) => {
                return Ok(["client", "consumer", "internal", "producer", "server", "unspecified"]
                    .iter()
                    .map(|s| (s.to_string(), "keyword"))
                    .collect());
            }
            Field::Intrinsic(Intrinsic::Duration | Intrinsic::TraceDuration) => return Ok(Vec::new()),
            _ => {}
        }
        let buckets = self.buckets_in(from_ns, to_ns);
        if buckets.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = Compiler { params: Vec::new() };
        let from = c.param(Param::Int(from_ns));
        let to = c.param(Param::Int(to_ns));
        let cond = c.expr(filter);
        let reads_trace = filter.reads_trace() || matches!(tag, Field::Intrinsic(i) if i.is_trace_level());
        // (value expression, kind expression, extra FROM) per bucket.
        let per_bucket = |s: i64, c: &mut Compiler| -> String {
            let attrs = format!("attrs_{s}");
            let (value, kind, join) = match tag {
                Field::Intrinsic(Intrinsic::Name) => ("s.name".to_owned(), "0".to_owned(), String::new()),
                Field::Intrinsic(Intrinsic::StatusMessage) => {
                    ("s.status_message".to_owned(), "0".to_owned(), String::new())
                }
                Field::Intrinsic(Intrinsic::RootName) => ("t.root_name".to_owned(), "0".to_owned(), String::new()),
                Field::Intrinsic(_) => ("t.root_service".to_owned(), "0".to_owned(), String::new()),
                Field::Attr(Scope::Span | Scope::Unscoped, n) => match PROMOTED.iter().position(|k| k == n) {
                    Some(i) => {
                        let col = promoted_column(i);
                        (format!("s.{col}"), format!("s.k{col}"), String::new())
                    }
                    None => {
                        let key = c.param(Param::Text(n.clone()));
                        (
                            "a.text".to_owned(),
                            "a.kind".to_owned(),
                            format!(
                                " JOIN {attrs} a ON a.trace_hi = s.trace_hi AND a.trace_lo = s.trace_lo \
                                 AND a.span_id = s.span_id AND a.key = {key}"
                            ),
                        )
                    }
                },
                Field::Attr(_, n) => {
                    let key = c.param(Param::Text(n.clone()));
                    (
                        "o.text".to_owned(),
                        "o.kind".to_owned(),
                        format!(" JOIN origin_attrs o ON o.id = s.origin AND o.key = {key}"),
                    )
                }
            };
            let tjoin = if reads_trace {
                " JOIN ta t USING (trace_hi, trace_lo)"
            } else {
                ""
            };
            format!(
                "SELECT DISTINCT {value} AS v, {kind} AS k FROM spans_{s} s{tjoin}{join} \
                 WHERE s.start_ns BETWEEN {from} AND {to} AND {} AND {value} IS NOT NULL",
                cond.replace(ATTRS, &attrs)
            )
        };
        let parts: Vec<String> = buckets.iter().map(|b| per_bucket(suffix(*b), &mut c)).collect();
        let ta = if reads_trace {
            format!("WITH ta AS ({}) ", summaries_sql(&buckets, None))
        } else {
            String::new()
        };
        let sql = format!(
            "{ta}SELECT DISTINCT v, k FROM ({}) ORDER BY v LIMIT {limit}",
            parts.join(" UNION ALL ")
        );
        // An unscoped tag also lists the resource's values.
        let mut out: Vec<(String, &'static str)> = self.with_reader(|conn| {
            let mut stmt = conn.prepare(&sql)?;
            let v = stmt
                .query_map(duckdb::params_from_iter(c.params.iter()), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Option<i8>>(1)?.unwrap_or(0)))
                })?
                .collect::<duckdb::Result<Vec<_>>>()?;
            Ok(v.into_iter()
                .map(|(v, k)| (v, ValueKind::from_code(k).tempo_name()))
                .collect())
        })?;
        if let Field::Attr(Scope::Unscoped, n) = tag {
            let more = self.tag_values(&Field::Attr(Scope::Resource, n.clone()), filter, from_ns, to_ns, limit)?;
            for v in more {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            out.sort();
            out.truncate(limit);
        }
        Ok(out)
    }
}

/// Parses a tag name as Tempo's tag-value endpoints take it: `span.x`,
/// `resource.x`, `.x`, or an intrinsic; with `bare_is_attribute` (the v1
/// endpoint) any other name is an unscoped attribute.
pub fn parse_tag(tag: &str, bare_is_attribute: bool) -> Result<Field> {
    match crate::traceql::parse_field(tag) {
        Ok(f) => Ok(f),
        Err(_) if bare_is_attribute && !tag.is_empty() => Ok(Field::Attr(Scope::Unscoped, tag.to_owned())),
        Err(e) => Err(Error::BadQuery(format!("please provide a valid tagName: {e}"))),
    }
}
