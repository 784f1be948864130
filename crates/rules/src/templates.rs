//! Alert label and annotation templates as Prometheus 2.42 expands them: Go
//! text/template with Prometheus' functions (`humanize`, `query`, ...), the
//! variables `$labels`, `$externalLabels`, `$externalURL` and `$value`, and an
//! expansion error written into the value instead of failing the rule.

use std::collections::BTreeMap;
use std::sync::Arc;

use sextant_model::Labels;
use sextant_template::gofmt::format_float;
use sextant_template::{CallError, Funcs, GoTime, Map, Object, Template, Value, query_escape};

/// Runs a PromQL instant query at the evaluation time: result labels (with
/// `__name__`) and values.
pub type QueryFn = Arc<dyn Fn(&str) -> Result<Vec<(Labels, f64)>, String> + Send + Sync>;

/// The variables Prometheus declares before every alert template (112 bytes, no
/// newline, so positions on the first line include it, as in Prometheus).
const PREFIX: &str =
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// What a rule's templates are expanded against.
#[derive(Clone)]
pub struct TemplateData {
    /// The sample's labels, `__name__` included when the result has one.
    pub labels: Labels,
    /// `global.external_labels`.
    pub external_labels: Arc<Labels>,
    /// The external URL.
    pub external_url: Arc<str>,
    /// The sample's value.
    pub value: f64,
}

/// The data's Go type, as Prometheus' errors name it.
const DATA_TYPE: &str =
    "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value float64 }";

fn labels_map(l: &Labels) -> Value {
    Value::from(Map::strings(l.iter().map(|l| (l.name.clone(), l.value.clone()))))
}

impl Object for TemplateData {
    fn type_name(&self) -> &str {
        DATA_TYPE
    }

    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "Labels" => labels_map(&self.labels),
            "ExternalLabels" => labels_map(&self.external_labels),
            "ExternalURL" => Value::from(&*self.external_url),
            "Value" => Value::Float(self.value),
            _ => return None,
        })
    }

    fn format(&self) -> String {
        format!(
            "{{{} {} {} {}}}",
            labels_map(&self.labels).to_go_string(),
            labels_map(&self.external_labels).to_go_string(),
            self.external_url,
            format_float(self.value, 'g', None)
        )
    }
}

/// One sample of a `query` result.
struct QuerySample {
    labels: Labels,
    value: f64,
}

impl Object for QuerySample {
    fn type_name(&self) -> &str {
        "*template.sample"
    }

    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "Labels" => labels_map(&self.labels),
            "Value" => Value::Float(self.value),
            _ => return None,
        })
    }

    fn format(&self) -> String {
        format!(
            "&{{{} {}}}",
            labels_map(&self.labels).to_go_string(),
            format_float(self.value, 'g', None)
        )
    }
}

fn sample_of(v: &Value) -> Result<(Labels, f64), CallError> {
    if let Value::Object(o) = v
        && o.type_name() == "*template.sample"
        && let (Some(Value::Map(m)), Some(Value::Float(f))) = (o.field("Labels"), o.field("Value"))
    {
        let labels = Labels::from_pairs(
            m.entries
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())),
        )
        .unwrap_or_default();
        return Ok((labels, f));
    }
    Err(CallError::Args(format!(
        "wrong type for value; expected *template.sample; got {}",
        v.type_name()
    )))
}

/// Go's `strconv.ParseFloat` for the humanize functions' string inputs.
fn parse_float(s: &str) -> Result<f64, CallError> {
    let lower = s.to_ascii_lowercase();
    let t = lower.trim_start_matches(['+', '-']);
    let ok_word = matches!(t, "inf" | "infinity" | "nan");
    let ok_num = !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-' | '_'))
        && t.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '.');
    if ok_word || ok_num {
        let cleaned = s.replace('_', "");
        if let Ok(v) = cleaned.parse::<f64>() {
            return Ok(v);
        }
    }
    Err(CallError::Failed(format!(
        "strconv.ParseFloat: parsing {}: invalid syntax",
        sextant_template::gofmt::quote(s)
    )))
}

/// The numeric inputs Prometheus' functions accept (float, ints, strings).
fn to_float(v: &Value) -> Result<f64, CallError> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Uint(u) => Ok(*u as f64),
        Value::String(s) => parse_float(s),
        other => Err(CallError::Failed(format!(
            "can't convert {} to float",
            other.type_name()
        ))),
    }
}

fn one<'a>(name: &str, args: &'a [Value]) -> Result<&'a Value, CallError> {
    match args {
        [v] => Ok(v),
        _ => Err(CallError::Args(format!(
            "wrong number of args for {name}: want 1 got {}",
            args.len()
        ))),
    }
}

fn two<'a>(name: &str, args: &'a [Value]) -> Result<(&'a Value, &'a Value), CallError> {
    match args {
        [a, b] => Ok((a, b)),
        _ => Err(CallError::Args(format!(
            "wrong number of args for {name}: want 2 got {}",
            args.len()
        ))),
    }
}

fn string_arg(v: &Value) -> Result<&str, CallError> {
    v.as_str()
        .ok_or_else(|| CallError::Args(format!("wrong type for value; expected string; got {}", v.type_name())))
}

fn g4(v: f64) -> String {
    format_float(v, 'g', Some(4))
}

/// Prometheus' `humanize`: SI prefixes, 4 significant digits.
pub fn humanize(v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v.abs() >= 1.0 {
        let mut prefix = "";
        let mut v = v;
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
        return format!("{}{prefix}", g4(v));
    }
    let mut prefix = "";
    let mut v = v;
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}", g4(v))
}

/// Prometheus' `humanize1024`: binary prefixes.
pub fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut prefix = "";
    let mut v = v;
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g4(v))
}

/// Prometheus' `humanizeDuration` (seconds).
pub fn humanize_duration(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let a = v.abs();
        let n = a as i64;
        let (d, h, m, s) = (n / 86_400, n / 3600 % 24, n / 60 % 60, n % 60);
        return if d != 0 {
            format!("{sign}{d}d {h}h {m}m {s}s")
        } else if h != 0 {
            format!("{sign}{h}h {m}m {s}s")
        } else if m != 0 {
            format!("{sign}{m}m {s}s")
        } else {
            format!("{sign}{}s", g4(a))
        };
    }
    let mut prefix = "";
    let mut v = v;
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", g4(v))
}

/// Prometheus' `toTime`: seconds to a time, truncated to milliseconds.
fn to_time(v: f64) -> Result<GoTime, CallError> {
    if v.is_nan() || v.is_infinite() {
        return Err(CallError::Failed("value is NaN or Inf".into()));
    }
    let ns = v * 1e9;
    if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
        return Err(CallError::Failed(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            format_float(v, 'g', None)
        )));
    }
    let ns = ns as i64;
    Ok(GoTime::from_millis(ns / 1_000_000))
}

/// Go's `net.SplitHostPort`.
fn split_host_port(hp: &str) -> Option<(&str, &str)> {
    let i = hp.rfind(':')?;
    let (host, j, k) = if hp.starts_with('[') {
        let end = hp.find(']')?;
        if end + 1 != i {
            return None;
        }
        (&hp[1..end], 1, end + 1)
    } else {
        let host = &hp[..i];
        if host.contains(':') {
            return None;
        }
        (host, 0, 0)
    };
    if hp[j..].contains('[') || hp[k..].contains(']') {
        return None;
    }
    Some((host, &hp[i + 1..]))
}

fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Go's `strings.Title`: the first letter of each word upper-cased.
pub fn go_title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(simple_upper(c));
        } else {
            out.push(c);
        }
        prev_sep = if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            c.is_whitespace()
        };
    }
    out
}

/// Go's one-to-one case mapping: characters whose upper case is several characters
/// (`ß`) stay as they are.
fn simple_upper(c: char) -> impl Iterator<Item = char> {
    let mut up = c.to_uppercase();
    let first = up.next();
    let single = up.next().is_none();
    std::iter::once(if single { first.unwrap_or(c) } else { c })
}

fn simple_lower(c: char) -> char {
    let mut low = c.to_lowercase();
    let first = low.next();
    if low.next().is_none() { first.unwrap_or(c) } else { c }
}

/// Go's `strings.ToUpper`.
pub fn go_to_upper(s: &str) -> String {
    s.chars().flat_map(simple_upper).collect()
}

/// Go's `strings.ToLower`.
pub fn go_to_lower(s: &str) -> String {
    s.chars().map(simple_lower).collect()
}

fn regex(pattern: &str) -> Result<regex::Regex, CallError> {
    regex::Regex::new(pattern).map_err(|e| CallError::Failed(format!("error parsing regexp: {e}")))
}

/// Prometheus' template functions (its `text` mode, as alert templates use them).
pub fn prometheus_funcs(query: Option<QueryFn>, external_url: &str) -> Funcs {
    let mut f = Funcs::new();
    let url = external_url.trim_end_matches('/').to_owned();
    let path_prefix = url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
        .unwrap_or_default();
    f.insert("query", move |args| {
        let q = string_arg(one("query", args)?)?;
        let Some(run) = &query else {
            return Err(CallError::Failed("queries are not available here".into()));
        };
        let samples = run(q).map_err(CallError::Failed)?;
        Ok(Value::list(
            samples
                .into_iter()
                .map(|(labels, value)| Value::object(QuerySample { labels, value }))
                .collect(),
        ))
    });
    f.insert("first", |args| match one("first", args)? {
        Value::List(l) => l
            .first()
            .cloned()
            .ok_or_else(|| CallError::Failed("first() called on vector with no elements".into())),
        other => Err(CallError::Args(format!(
            "wrong type for value; expected template.queryResult; got {}",
            other.type_name()
        ))),
    });
    f.insert("label", |args| {
        let (name, s) = two("label", args)?;
        let (labels, _) = sample_of(s)?;
        Ok(Value::from(labels.get(string_arg(name)?).unwrap_or_default()))
    });
    f.insert("value", |args| Ok(Value::Float(sample_of(one("value", args)?)?.1)));
    f.insert("strvalue", |args| {
        let (labels, _) = sample_of(one("strvalue", args)?)?;
        Ok(Value::from(labels.get("__value__").unwrap_or_default()))
    });
    f.insert("sortByLabel", |args| {
        let (name, list) = two("sortByLabel", args)?;
        let name = string_arg(name)?.to_owned();
        let Value::List(l) = list else {
            return Err(CallError::Args(format!(
                "wrong type for value; expected template.queryResult; got {}",
                list.type_name()
            )));
        };
        let mut keyed: Vec<(String, Value)> = l
            .iter()
            .map(|v| {
                let key = sample_of(v)
                    .map(|(l, _)| l.get(&name).unwrap_or_default().to_owned())
                    .unwrap_or_default();
                (key, v.clone())
            })
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Value::list(keyed.into_iter().map(|(_, v)| v).collect()))
    });
    f.insert("args", |args| {
        Ok(Value::from(Map::values(
            args.iter()
                .enumerate()
                .map(|(i, v)| (format!("arg{i}"), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        )))
    });
    f.insert("reReplaceAll", |args| match args {
        [p, r, t] => {
            let re = regex(string_arg(p)?)?;
            Ok(Value::from(re.replace_all(string_arg(t)?, string_arg(r)?).into_owned()))
        }
        _ => Err(CallError::Args(format!(
            "wrong number of args for reReplaceAll: want 3 got {}",
            args.len()
        ))),
    });
    f.insert("match", |args| {
        let (p, t) = two("match", args)?;
        Ok(Value::Bool(regex(string_arg(p)?)?.is_match(string_arg(t)?)))
    });
    f.insert("safeHtml", |args| Ok(Value::from(string_arg(one("safeHtml", args)?)?)));
    f.insert("title", |args| {
        Ok(Value::from(go_title(string_arg(one("title", args)?)?)))
    });
    f.insert("toUpper", |args| {
        Ok(Value::from(go_to_upper(string_arg(one("toUpper", args)?)?)))
    });
    f.insert("toLower", |args| {
        Ok(Value::from(go_to_lower(string_arg(one("toLower", args)?)?)))
    });
    f.insert("graphLink", |args| {
        Ok(Value::from(format!(
            "/graph?g0.expr={}&g0.tab=0",
            query_escape(string_arg(one("graphLink", args)?)?)
        )))
    });
    f.insert("tableLink", |args| {
        Ok(Value::from(format!(
            "/graph?g0.expr={}&g0.tab=1",
            query_escape(string_arg(one("tableLink", args)?)?)
        )))
    });
    f.insert("humanize", |args| {
        Ok(Value::from(humanize(to_float(one("humanize", args)?)?)))
    });
    f.insert("humanize1024", |args| {
        Ok(Value::from(humanize1024(to_float(one("humanize1024", args)?)?)))
    });
    f.insert("humanizeDuration", |args| {
        Ok(Value::from(humanize_duration(to_float(one(
            "humanizeDuration",
            args,
        )?)?)))
    });
    f.insert("humanizePercentage", |args| {
        Ok(Value::from(format!(
            "{}%",
            g4(to_float(one("humanizePercentage", args)?)? * 100.0)
        )))
    });
    f.insert("humanizeTimestamp", |args| {
        let v = to_float(one("humanizeTimestamp", args)?)?;
        if v.is_nan() || v.is_infinite() {
            return Ok(Value::from(g4(v)));
        }
        Ok(Value::from(to_time(v)?.go_string()))
    });
    f.insert("toTime", |args| {
        Ok(Value::object(to_time(to_float(one("toTime", args)?)?)?))
    });
    f.insert("pathPrefix", move |_| Ok(Value::from(path_prefix.as_str())));
    let u = url.clone();
    f.insert("externalURL", move |_| Ok(Value::from(u.as_str())));
    f.insert("stripPort", |args| {
        let hp = string_arg(one("stripPort", args)?)?;
        Ok(Value::from(split_host_port(hp).map_or(hp, |(h, _)| h)))
    });
    f.insert("stripDomain", |args| {
        let hp = string_arg(one("stripDomain", args)?)?;
        let (host, port) = split_host_port(hp).unwrap_or((hp, ""));
        let is_ip = host.parse::<std::net::IpAddr>().is_ok();
        if is_ip {
            return Ok(Value::from(hp));
        }
        let host = host.split('.').next().unwrap_or_default();
        Ok(Value::from(if port.is_empty() {
            host.to_owned()
        } else {
            join_host_port(host, port)
        }))
    });
    f.insert("parseDuration", |args| {
        let s = string_arg(one("parseDuration", args)?)?;
        let d = sextant_model::time::parse_duration(s).map_err(|e| CallError::Failed(e.to_string()))?;
        Ok(Value::Float(d.as_secs_f64()))
    });
    f
}

/// A rule's label or annotation template, parsed as Prometheus parses it.
#[derive(Clone, Debug)]
pub struct AlertTemplate {
    name: String,
    template: Template,
}

impl AlertTemplate {
    /// Parses `text` for the alert `alert`; the error is promtool's
    /// (`template: __alert_NAME:LINE: message`).
    pub fn parse(alert: &str, text: &str, funcs: &Funcs) -> Result<Self, String> {
        let name = format!("__alert_{alert}");
        let template = Template::parse(&name, &format!("{PREFIX}{text}"), funcs.clone()).map_err(|e| e.to_string())?;
        Ok(Self { name, template })
    }

    /// Expands the template; an error becomes the value, as in Prometheus.
    pub fn expand(&self, data: &TemplateData) -> String {
        match self.template.execute(Value::object(data.clone())) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(template = %self.name, error = %e, "expanding alert template failed");
                format!(
                    "<error expanding template: error executing template {}: {e}>",
                    self.name
                )
            }
        }
    }
}

#[cfg(test)]
mod tests;
