//! Prometheus rule files: parsing and the checks `promtool check rules` makes, with
//! errors that name file, line, column, group and rule as promtool's do. Loki's
//! ruler reads the same format with LogQL expressions ([`Language::LogQL`]).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sextant_model::time::PromDuration;
use sextant_model::yaml::Positions;
use sextant_model::{Labels, is_valid_label_name, is_valid_metric_name};
use sextant_promql::Expr;

/// A validated rule file.
#[derive(Debug, Clone)]
pub struct RuleFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its groups, in file order.
    pub groups: Vec<RuleGroup>,
}

/// A group of rules evaluated together, in order, at one timestamp.
#[derive(Debug, Clone)]
pub struct RuleGroup {
    /// Unique within its file.
    pub name: String,
    /// Evaluation interval; `None` means the global `evaluation_interval`.
    pub interval: Option<Duration>,
    /// Most series a rule may produce (0: no limit); beyond it the rule fails.
    pub limit: usize,
    /// The rules, in evaluation order.
    pub rules: Vec<Rule>,
}

/// The query language of a rule file's expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// Prometheus rule files (`rule_files`).
    PromQL,
    /// Loki ruler files (`logs.rule_files`): metric queries over the log store.
    LogQL,
}

/// A rule's parsed expression.
#[derive(Debug, Clone)]
pub enum RuleExpr {
    /// Evaluated by the PromQL engine over the metrics store.
    PromQL(Expr),
    /// A LogQL metric query, evaluated over the log store.
    LogQL(Arc<sextant_logs::logql::ast::Expr>),
}

/// One rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// What the rule does.
    pub kind: RuleKind,
    /// The parsed expression.
    pub expr: RuleExpr,
    /// The expression as written.
    pub expr_text: String,
    /// Labels added to (or replacing those of) every result.
    pub labels: Labels,
}

/// Recording or alerting.
#[derive(Debug, Clone)]
pub enum RuleKind {
    /// `record: NAME`: results are stored as series named NAME.
    Recording {
        /// The recorded metric name.
        record: String,
    },
    /// `alert: NAME`; `labels` of the rule are templates.
    Alerting {
        /// The alert name.
        alert: String,
        /// How long the condition must hold before the alert fires.
        for_: Duration,
        /// How long a firing alert keeps firing after its condition stops holding.
        keep_firing_for: Duration,
        /// Annotation templates.
        annotations: BTreeMap<String, String>,
    },
}

impl Rule {
    /// The expression as the rules API shows it: PromQL as Prometheus prints it,
    /// LogQL as written.
    pub fn query(&self) -> String {
        match &self.expr {
            RuleExpr::PromQL(e) => e.to_string(),
            RuleExpr::LogQL(_) => self.expr_text.trim().to_owned(),
        }
    }

    /// The rule's name (`record` or `alert`).
    pub fn name(&self) -> &str {
        match &self.kind {
            RuleKind::Recording { record } => record,
            RuleKind::Alerting { alert, .. } => alert,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    groups: Vec<GroupDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupDoc {
    #[serde(default)]
    name: String,
    interval: Option<PromDuration>,
    #[serde(default)]
    limit: usize,
    #[serde(default)]
    rules: Vec<RuleDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    record: Option<String>,
    alert: Option<String>,
    expr: Option<serde_yaml::Value>,
    #[serde(rename = "for")]
    for_: Option<PromDuration>,
    keep_firing_for: Option<PromDuration>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
}

/// Reads and validates one rule file; every problem found is returned, each as
/// `FILE: LINE:COL: group "G", rule N, "NAME": message` (promtool's shape).
pub fn load(path: &Path) -> Result<RuleFile, Vec<String>> {
    load_as(path, Language::PromQL)
}

/// Reads and validates one rule file whose expressions are in `lang`.
pub fn load_as(path: &Path, lang: Language) -> Result<RuleFile, Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| vec![format!("{}: {e}", path.display())])?;
    parse_as(&text, path, lang)
}

/// Validates rule-file text (see [`load`]).
pub fn parse(text: &str, path: &Path) -> Result<RuleFile, Vec<String>> {
    parse_as(text, path, Language::PromQL)
}

/// Validates rule-file text whose expressions are in `lang`.
pub fn parse_as(text: &str, path: &Path, lang: Language) -> Result<RuleFile, Vec<String>> {
    let file = path.display().to_string();
    let doc: FileDoc = serde_yaml::from_str(text).map_err(|e| {
        vec![match e.location() {
            Some(l) => format!(
                "{file}: {}:{}: {}",
                l.line(),
                l.column(),
                strip_location(&e.to_string())
            ),
            None => format!("{file}: {e}"),
        }]
    })?;
    let pos = Positions::of(text);
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    let mut seen = HashSet::new();
    for (gi, g) in doc.groups.into_iter().enumerate() {
        let at = |path: &str| pos.get(&format!("groups.{gi}.{path}"));
        let group_at = pos.get(&format!("groups.{gi}"));
        if g.name.is_empty() {
            errors.push(format!("{file}: {group_at}: groupname must not be empty"));
            continue;
        }
        if !seen.insert(g.name.clone()) {
            // Reported, and its rules are still checked, as promtool does.
            errors.push(format!(
                "{file}: {group_at}: groupname: {:?} is repeated in the same file",
                g.name
            ));
        }
        if g.interval.is_some_and(|i| i.0.is_zero()) {
            errors.push(format!(
                "{file}: {}: group {:?}: interval must be positive",
                at("interval"),
                g.name
            ));
        }
        let mut rules = Vec::new();
        for (ri, r) in g.rules.into_iter().enumerate() {
            let name = r.record.clone().or_else(|| r.alert.clone()).unwrap_or_default();
            let key = if r.record.is_some() { "record" } else { "alert" };
            let mut fail = |field: &str, msg: String| {
                // An empty field: promtool names no position for this error.
                let position = if field.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", at(&format!("rules.{ri}.{field}")))
                };
                errors.push(format!(
                    "{file}: {position}group {:?}, rule {}, {:?}: {msg}",
                    g.name,
                    ri + 1,
                    name
                ));
            };
            match validate_rule(r, lang) {
                Ok(rule) => rules.push(rule),
                Err((field, msg)) => fail(if field == "name" { key } else { field }, msg),
            }
        }
        groups.push(RuleGroup {
            name: g.name,
            interval: g.interval.map(|i| i.0),
            limit: g.limit,
            rules,
        });
    }
    if errors.is_empty() {
        Ok(RuleFile {
            path: path.to_path_buf(),
            groups,
        })
    } else {
        Err(errors)
    }
}

/// Checks one rule as Prometheus' `rulefmt` does; the error names the field whose
/// position it should point at ("name" for the record/alert value).
fn validate_rule(r: RuleDoc, lang: Language) -> Result<Rule, (&'static str, String)> {
    let kind = match (&r.record, &r.alert) {
        (Some(_), Some(_)) => return Err(("name", "only one of 'record' and 'alert' must be set".into())),
        (None, None) => return Err(("name", "one of 'record' or 'alert' must be set".into())),
        (Some(record), None) => {
            if r.annotations.is_some() {
                return Err(("name", "invalid field 'annotations' in recording rule".into()));
            }
            if r.for_.is_some() {
                return Err(("name", "invalid field 'for' in recording rule".into()));
            }
            if r.keep_firing_for.is_some() {
                return Err(("name", "invalid field 'keep_firing_for' in recording rule".into()));
            }
            if !is_valid_metric_name(record) {
                return Err(("name", format!("invalid recording rule name: {record}")));
            }
            RuleKind::Recording { record: record.clone() }
        }
        (None, Some(alert)) => {
            if alert.is_empty() {
                return Err(("name", "one of 'record' or 'alert' must be set".into()));
            }
            let annotations = r.annotations.clone().unwrap_or_default();
            for k in annotations.keys() {
                if !is_valid_label_name(k) {
                    return Err(("name", format!("invalid annotation name: {k}")));
                }
            }
            RuleKind::Alerting {
                alert: alert.clone(),
                for_: r.for_.map(|d| d.0).unwrap_or_default(),
                keep_firing_for: r.keep_firing_for.map(|d| d.0).unwrap_or_default(),
                annotations,
            }
        }
    };
    let expr_text = match &r.expr {
        None | Some(serde_yaml::Value::Null) => return Err(("name", "field 'expr' must be set in rule".into())),
        Some(serde_yaml::Value::String(s)) => s.clone(),
        Some(serde_yaml::Value::Number(n)) => n.to_string(),
        Some(serde_yaml::Value::Bool(b)) => b.to_string(),
        Some(_) => return Err(("expr", "expr must be a string".into())),
    };
    if expr_text.trim().is_empty() {
        return Err(("name", "field 'expr' must be set in rule".into()));
    }
    let expr = match lang {
        Language::PromQL => RuleExpr::PromQL(
            sextant_promql::parse(&expr_text).map_err(|e| ("expr", format!("could not parse expression: {e}")))?,
        ),
        Language::LogQL => {
            let e = sextant_logs::logql::parse(&expr_text)
                .map_err(|e| ("expr", format!("could not parse expression: {}", e.0)))?;
            if matches!(e, sextant_logs::logql::ast::Expr::Log(_)) {
                // Loki's ruler: a rule's expression must produce samples.
                return Err((
                    "expr",
                    "could not parse expression: rule expression must be a metric query, not a log query".into(),
                ));
            }
            RuleExpr::LogQL(Arc::new(e))
        }
    };
    let labels = r.labels.unwrap_or_default();
    for k in labels.keys() {
        if k == sextant_model::METRIC_NAME {
            return Err(("", "invalid label name: __name__".into()));
        }
        if !is_valid_label_name(k) {
            return Err(("", format!("invalid label name: {k}")));
        }
    }
    // Alerting rules' labels and annotations must parse as templates (promtool
    // parses them without executing them, and names no position).
    if let RuleKind::Alerting { alert, annotations, .. } = &kind {
        let funcs = crate::templates::prometheus_funcs(None, "");
        for (what, items) in [("label", &labels), ("annotation", annotations)] {
            for (k, v) in items {
                crate::templates::AlertTemplate::parse(alert, v, &funcs)
                    .map_err(|e| ("", format!("{what} {k:?}: {e}")))?;
            }
        }
    }
    let labels = Labels::from_pairs(labels).map_err(|e| ("name", e.to_string()))?;
    Ok(Rule {
        kind,
        expr,
        expr_text,
        labels,
    })
}

fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Also run through promtool by `crates/sextant/tests/check_rules.rs`.
    const BAD: &str = include_str!("../testdata/bad.rules.yml");

    #[test]
    fn errors_match_promtool() {
        let errs = parse(BAD, Path::new("bad.yml")).unwrap_err();
        // The lines and columns promtool 2.42 prints for the same file
        // (`promtool check rules crates/rules/testdata/bad.rules.yml`).
        assert_eq!(
            errs[0],
            r#"bad.yml: 8:17: group "g1", rule 2, "bad name": invalid recording rule name: bad name"#
        );
        assert!(
            errs[1].starts_with(r#"bad.yml: 11:15: group "g1", rule 3, "x:y": could not parse expression: "#),
            "{}",
            errs[1]
        );
        assert_eq!(
            errs[2],
            r#"bad.yml: 12:5: groupname: "g1" is repeated in the same file"#
        );
        assert_eq!(
            errs[3],
            r#"bad.yml: 19:17: group "g1", rule 2, "r": invalid field 'annotations' in recording rule"#
        );
        assert_eq!(errs.len(), 4);
    }

    #[test]
    fn a_valid_file_loads() {
        let f = parse(
            "groups:\n  - name: a\n    interval: 30s\n    limit: 10\n    rules:\n      - record: x\n        expr: up\n        labels: {a: b}\n      - alert: Down\n        expr: up == 0\n        for: 5m\n        annotations: {summary: down}\n",
            Path::new("ok.yml"),
        )
        .unwrap();
        let g = &f.groups[0];
        assert_eq!(g.interval, Some(Duration::from_secs(30)));
        assert_eq!(g.limit, 10);
        assert_eq!(g.rules[0].name(), "x");
        assert_eq!(g.rules[0].labels.get("a"), Some("b"));
        assert!(matches!(g.rules[1].kind, RuleKind::Alerting { for_, .. } if for_ == Duration::from_secs(300)));
    }

    #[test]
    fn logql_rule_files_take_metric_queries_only() {
        let ok = "groups:\n  - name: logs\n    rules:\n      - record: app:errors:rate1m\n        expr: sum by (app) (rate({app=~\".+\"} |= \"error\" [1m]))\n";
        let f = parse_as(ok, Path::new("l.yml"), Language::LogQL).unwrap();
        assert!(matches!(f.groups[0].rules[0].expr, RuleExpr::LogQL(_)));
        assert_eq!(
            f.groups[0].rules[0].query(),
            r#"sum by (app) (rate({app=~".+"} |= "error" [1m]))"#
        );
        // The same file is not PromQL.
        assert!(parse(ok, Path::new("l.yml")).is_err());
        let log_query =
            "groups:\n  - name: logs\n    rules:\n      - alert: Errors\n        expr: '{app=\"a\"} |= \"error\"'\n";
        let errs = parse_as(log_query, Path::new("l.yml"), Language::LogQL).unwrap_err();
        assert!(
            errs[0].starts_with(r#"l.yml: 5:15: group "logs", rule 1, "Errors": could not parse expression: rule expression must be a metric query"#),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn unknown_fields_are_errors_with_a_line() {
        let errs = parse(
            "groups:\n  - name: a\n    rules:\n      - record: x\n        exp: up\n",
            Path::new("f.yml"),
        )
        .unwrap_err();
        assert!(errs[0].starts_with("f.yml: 5:"), "{}", errs[0]);
        assert!(errs[0].contains("unknown field `exp`"), "{}", errs[0]);
    }
}
