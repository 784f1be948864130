//! Notification templates as Alertmanager 0.25 renders them: its template data
//! (`.Status`, `.Alerts.Firing`, `.CommonLabels.SortedPairs`, ...), its functions
//! (`toUpper`, `join`, `reReplaceAll`, ...), its default templates, and the user's
//! `templates:` files, which may redefine them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use sextant_model::Labels;
use sextant_template::{CallError, Funcs, GoTime, Object, Set, Template, Value};

use crate::alert::{Alert, fingerprint, fingerprint_string};

/// Alertmanager's default templates (`template/default.tmpl`).
pub const DEFAULT_TEMPLATES: &str = include_str!("../templates/default.tmpl");

/// Label or annotation pairs, sorted (`KV` in Alertmanager).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Kv(pub BTreeMap<String, String>);

impl Kv {
    fn sorted_pairs(&self) -> Vec<(String, String)> {
        // `alertname` first, the rest by name.
        let mut v: Vec<(String, String)> = self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        v.sort_by(|a, b| match (a.0 == "alertname", b.0 == "alertname") {
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            _ => a.0.cmp(&b.0),
        });
        v
    }
}

fn strings(v: Vec<String>) -> Value {
    Value::list(v.into_iter().map(Value::from).collect())
}

fn string_list(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::List(l) => Ok(l.iter().map(|x| x.as_str().unwrap_or_default().to_owned()).collect()),
        Value::Object(o) => Ok(o
            .elements()
            .unwrap_or_default()
            .iter()
            .map(|x| x.as_str().unwrap_or_default().to_owned())
            .collect()),
        other => Err(format!(
            "wrong type for value; expected []string; got {}",
            other.type_name()
        )),
    }
}

impl Object for Kv {
    fn type_name(&self) -> &str {
        "template.KV"
    }

    /// Its methods first, then (a `map[string]string` in Go) its keys, a missing
    /// one being `""`.
    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "SortedPairs" => Value::object(Pairs(self.sorted_pairs())),
            "Names" => strings(self.sorted_pairs().into_iter().map(|p| p.0).collect()),
            "Values" => strings(self.sorted_pairs().into_iter().map(|p| p.1).collect()),
            "Remove" => return None,
            key => Value::from(self.0.get(key).map(String::as_str).unwrap_or("")),
        })
    }

    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        (name == "Remove").then(|| {
            let [keys] = args else {
                return Err(format!("wrong number of args for Remove: want 1 got {}", args.len()));
            };
            let keys = string_list(keys)?;
            let mut out = self.0.clone();
            for k in keys {
                out.remove(&k);
            }
            Ok(Value::object(Kv(out)))
        })
    }

    fn format(&self) -> String {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("map[{}]", parts.join(" "))
    }

    fn entries(&self) -> Option<Vec<(String, Value)>> {
        Some(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect(),
        )
    }
}

/// `SortedPairs`: a list of `Pair`s with `Names` and `Values`.
#[derive(Debug, Clone)]
struct Pairs(Vec<(String, String)>);

impl Object for Pairs {
    fn type_name(&self) -> &str {
        "template.Pairs"
    }

    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "Names" => strings(self.0.iter().map(|p| p.0.clone()).collect()),
            "Values" => strings(self.0.iter().map(|p| p.1.clone()).collect()),
            _ => return None,
        })
    }

    fn format(&self) -> String {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{{{k} {v}}}")).collect();
        format!("[{}]", parts.join(" "))
    }

    fn elements(&self) -> Option<Vec<Value>> {
        Some(
            self.0
                .iter()
                .map(|(n, v)| Value::object(Pair(n.clone(), v.clone())))
                .collect(),
        )
    }
}

#[derive(Debug, Clone)]
struct Pair(String, String);

impl Object for Pair {
    fn type_name(&self) -> &str {
        "template.Pair"
    }

    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "Name" => Value::from(self.0.as_str()),
            "Value" => Value::from(self.1.as_str()),
            _ => return None,
        })
    }

    fn format(&self) -> String {
        format!("{{{} {}}}", self.0, self.1)
    }
}

/// One alert in template data.
#[derive(Debug, Clone)]
pub struct TemplateAlert {
    /// `firing` or `resolved`.
    pub status: &'static str,
    /// Labels.
    pub labels: Kv,
    /// Annotations.
    pub annotations: Kv,
    /// Start.
    pub starts_at: GoTime,
    /// End (Go's zero time while firing).
    pub ends_at: GoTime,
    /// Source link.
    pub generator_url: String,
    /// Fingerprint (16 hex digits).
    pub fingerprint: String,
}

impl TemplateAlert {
    /// From a stored alert, as of `now`. A firing alert's end is not shown.
    pub fn new(a: &Alert, now: i64) -> Self {
        let resolved = a.resolved_at(now);
        Self {
            status: if resolved { "resolved" } else { "firing" },
            labels: kv(&a.labels),
            annotations: Kv(a.annotations.clone()),
            starts_at: GoTime::from_millis(a.starts_at),
            ends_at: match a.ends_at {
                Some(e) if resolved => GoTime::from_millis(e),
                _ => GoTime::zero(),
            },
            generator_url: a.generator_url.clone(),
            fingerprint: fingerprint_string(fingerprint(&a.labels)),
        }
    }
}

/// Labels as template pairs.
pub fn kv(labels: &Labels) -> Kv {
    Kv(labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect())
}

impl Object for TemplateAlert {
    fn type_name(&self) -> &str {
        "template.Alert"
    }

    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "Status" => Value::from(self.status),
            "Labels" => Value::object(self.labels.clone()),
            "Annotations" => Value::object(self.annotations.clone()),
            "StartsAt" => Value::object(self.starts_at),
            "EndsAt" => Value::object(self.ends_at),
            "GeneratorURL" => Value::from(self.generator_url.as_str()),
            "Fingerprint" => Value::from(self.fingerprint.as_str()),
            _ => return None,
        })
    }

    fn format(&self) -> String {
        format!(
            "{{{} {} {} {} {} {} {}}}",
            self.status,
            self.labels.format(),
            self.annotations.format(),
            self.starts_at.go_string(),
            self.ends_at.go_string(),
            self.generator_url,
            self.fingerprint
        )
    }
}

/// `.Alerts`: a list with `Firing` and `Resolved`.
#[derive(Debug, Clone)]
pub struct AlertList(pub Vec<TemplateAlert>);

impl Object for AlertList {
    fn type_name(&self) -> &str {
        "template.Alerts"
    }

    fn field(&self, name: &str) -> Option<Value> {
        let pick = |status: &str| {
            Value::object(AlertList(
                self.0.iter().filter(|a| a.status == status).cloned().collect(),
            ))
        };
        Some(match name {
            "Firing" => pick("firing"),
            "Resolved" => pick("resolved"),
            _ => return None,
        })
    }

    fn format(&self) -> String {
        let parts: Vec<String> = self.0.iter().map(|a| a.format()).collect();
        format!("[{}]", parts.join(" "))
    }

    fn elements(&self) -> Option<Vec<Value>> {
        Some(self.0.iter().map(|a| Value::object(a.clone())).collect())
    }
}

/// The data of a notification (Alertmanager's `template.Data`), also the body of a
/// webhook.
#[derive(Debug, Clone)]
pub struct Data {
    /// The receiver's name, regex-quoted as Alertmanager quotes it.
    pub receiver: String,
    /// `firing` if any alert is, else `resolved`.
    pub status: &'static str,
    /// The alerts.
    pub alerts: Vec<TemplateAlert>,
    /// The group's labels.
    pub group_labels: Kv,
    /// Labels every alert has with the same value.
    pub common_labels: Kv,
    /// Annotations every alert has with the same value.
    pub common_annotations: Kv,
    /// The router's external URL.
    pub external_url: String,
}

/// Go's `regexp.QuoteMeta`.
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn common(items: impl Iterator<Item = BTreeMap<String, String>>) -> Kv {
    let mut it = items;
    let Some(mut acc) = it.next() else {
        return Kv::default();
    };
    for m in it {
        acc.retain(|k, v| m.get(k) == Some(v));
    }
    Kv(acc)
}

impl Data {
    /// The data for `alerts` (already in notification order) sent to `receiver`.
    pub fn new(receiver: &str, group_labels: &Labels, alerts: &[Alert], external_url: &str, now: i64) -> Self {
        let alerts: Vec<TemplateAlert> = alerts.iter().map(|a| TemplateAlert::new(a, now)).collect();
        Self {
            receiver: quote_meta(receiver),
            status: if alerts.iter().any(|a| a.status == "firing") {
                "firing"
            } else {
                "resolved"
            },
            group_labels: kv(group_labels),
            common_labels: common(alerts.iter().map(|a| a.labels.0.clone())),
            common_annotations: common(alerts.iter().map(|a| a.annotations.0.clone())),
            alerts,
            external_url: external_url.to_owned(),
        }
    }
}

impl Object for Data {
    fn type_name(&self) -> &str {
        "*template.Data"
    }

    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "Receiver" => Value::from(self.receiver.as_str()),
            "Status" => Value::from(self.status),
            "Alerts" => Value::object(AlertList(self.alerts.clone())),
            "GroupLabels" => Value::object(self.group_labels.clone()),
            "CommonLabels" => Value::object(self.common_labels.clone()),
            "CommonAnnotations" => Value::object(self.common_annotations.clone()),
            "ExternalURL" => Value::from(self.external_url.as_str()),
            _ => return None,
        })
    }

    fn format(&self) -> String {
        format!("&{{{} {}}}", self.receiver, self.status)
    }
}

/// Alertmanager's template functions (0.25).
pub fn alertmanager_funcs() -> Funcs {
    fn s(v: &Value) -> Result<&str, CallError> {
        v.as_str()
            .ok_or_else(|| CallError::Args(format!("wrong type for value; expected string; got {}", v.type_name())))
    }
    fn one<'a>(name: &str, a: &'a [Value]) -> Result<&'a Value, CallError> {
        match a {
            [v] => Ok(v),
            _ => Err(CallError::Args(format!(
                "wrong number of args for {name}: want 1 got {}",
                a.len()
            ))),
        }
    }
    let mut f = Funcs::new();
    f.insert("toUpper", |a| {
        Ok(Value::from(
            s(one("toUpper", a)?)?.chars().map(upper1).collect::<String>(),
        ))
    });
    f.insert("toLower", |a| {
        Ok(Value::from(
            s(one("toLower", a)?)?.chars().map(lower1).collect::<String>(),
        ))
    });
    f.insert("title", |a| Ok(Value::from(title(s(one("title", a)?)?))));
    f.insert("join", |a| match a {
        [sep, list] => Ok(Value::from(string_list(list).map_err(CallError::Args)?.join(s(sep)?))),
        _ => Err(CallError::Args(format!(
            "wrong number of args for join: want 2 got {}",
            a.len()
        ))),
    });
    f.insert("match", |a| match a {
        [re, text] => {
            let re = regex::Regex::new(s(re)?).map_err(|e| CallError::Failed(format!("error parsing regexp: {e}")))?;
            Ok(Value::Bool(re.is_match(s(text)?)))
        }
        _ => Err(CallError::Args(format!(
            "wrong number of args for match: want 2 got {}",
            a.len()
        ))),
    });
    f.insert("safeHtml", |a| Ok(Value::from(s(one("safeHtml", a)?)?)));
    f.insert("reReplaceAll", |a| match a {
        [re, repl, text] => {
            let re = regex::Regex::new(s(re)?).map_err(|e| CallError::Failed(format!("error parsing regexp: {e}")))?;
            Ok(Value::from(re.replace_all(s(text)?, s(repl)?).into_owned()))
        }
        _ => Err(CallError::Args(format!(
            "wrong number of args for reReplaceAll: want 3 got {}",
            a.len()
        ))),
    });
    f.insert("stringSlice", |a| Ok(Value::list(a.to_vec())));
    f
}

fn upper1(c: char) -> char {
    let mut u = c.to_uppercase();
    match (u.next(), u.next()) {
        (Some(x), None) => x,
        _ => c,
    }
}

fn lower1(c: char) -> char {
    let mut u = c.to_lowercase();
    match (u.next(), u.next()) {
        (Some(x), None) => x,
        _ => c,
    }
}

/// `cases.Title`: each word capitalised, the rest of it lower case.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if c.is_alphanumeric() {
            out.push(if start { upper1(c) } else { lower1(c) });
            start = false;
        } else {
            out.push(c);
            start = c != '\'';
        }
    }
    out
}

/// Parsed notification templates: the defaults, the user's files, and every field
/// template parsed once.
pub struct Templates {
    set: Set,
    cache: Mutex<HashMap<String, Result<Arc<Template>, String>>>,
}

impl Templates {
    /// The defaults plus the user's files (later files override earlier
    /// definitions); errors name the file.
    pub fn load(files: &[std::path::PathBuf]) -> Result<Self, String> {
        let mut set = Set::new(alertmanager_funcs());
        set.add("default.tmpl", DEFAULT_TEMPLATES).map_err(|e| e.to_string())?;
        for f in files {
            let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            set.add(&name, &text).map_err(|e| e.to_string())?;
        }
        Ok(Self {
            set,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Renders `text` (a config field) with `data`; empty text renders empty.
    pub fn render(&self, text: &str, data: &Data) -> Result<String, String> {
        if text.is_empty() {
            return Ok(String::new());
        }
        let t = {
            let mut cache = self.cache.lock().expect("poisoned");
            cache
                .entry(text.to_owned())
                .or_insert_with(|| self.set.parse("", text).map(Arc::new).map_err(|e| e.to_string()))
                .clone()?
        };
        t.execute(Value::object(data.clone())).map_err(|e| e.to_string())
    }

    /// Renders a list of values of a map field.
    pub fn render_map(&self, m: &BTreeMap<String, String>, data: &Data) -> Result<BTreeMap<String, String>, String> {
        m.iter()
            .map(|(k, v)| self.render(v, data).map(|r| (k.clone(), r)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    fn alert(labels: &[(&str, &str)], ann: &[(&str, &str)], resolved: bool) -> Alert {
        Alert {
            labels: l(labels),
            annotations: ann.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            starts_at: 1_000,
            ends_at: Some(if resolved { 2_000 } else { 10_000_000 }),
            generator_url: String::new(),
            updated_at: 1_000,
            timeout: false,
        }
    }

    /// `template/template_test.go`.
    #[test]
    fn data_as_alertmanager_builds_it() {
        let d = Data::new("webhook", &Labels::empty(), &[], "http://x", 5_000);
        assert_eq!(d.status, "resolved");
        assert!(d.common_labels.0.is_empty());
        let a1 = alert(
            &[("severity", "warning"), ("job", "foo")],
            &[("description", "something happened"), ("runbook", "foo")],
            false,
        );
        let a2 = alert(
            &[("severity", "critical"), ("job", "foo")],
            &[("description", "something else happened"), ("runbook", "foo")],
            true,
        );
        let d = Data::new("webhook", &l(&[("job", "foo")]), &[a1.clone(), a2], "http://x", 5_000);
        assert_eq!(d.status, "firing");
        assert_eq!(d.alerts[0].fingerprint, "9266ef3da838ad95");
        assert_eq!(d.alerts[1].fingerprint, "3b15fd163d36582e");
        assert_eq!(d.common_labels, Kv([("job".into(), "foo".into())].into()));
        assert_eq!(d.common_annotations, Kv([("runbook".into(), "foo".into())].into()));
        let a3 = alert(&[("severity", "critical"), ("job", "bar")], &[("runbook", "bar")], true);
        let d = Data::new("webhook", &Labels::empty(), &[a1, a3], "http://x", 5_000);
        assert_eq!(d.alerts[1].fingerprint, "c7e68cb08e3e67f9");
        assert!(d.common_labels.0.is_empty() && d.common_annotations.0.is_empty());
        assert_eq!(quote_meta("team.mail"), r"team\.mail");
    }

    #[test]
    fn functions_and_default_templates() {
        let t = Templates::load(&[]).unwrap();
        let group = l(&[("alertname", "S")]);
        let alerts = [
            alert(
                &[("alertname", "S"), ("kind", "slack"), ("i", "1")],
                &[("summary", "s")],
                false,
            ),
            alert(
                &[("alertname", "S"), ("kind", "slack"), ("i", "2")],
                &[("summary", "s")],
                false,
            ),
        ];
        let d = Data::new("slack", &group, &alerts, "http://vm:9093", 5_000);
        let r = |text: &str| t.render(text, &d).unwrap();
        assert_eq!(r(r#"{{ template "slack.default.title" . }}"#), "[FIRING:2] S (slack)");
        assert_eq!(
            r(r#"{{ template "__alertmanagerURL" . }}"#),
            "http://vm:9093/#/alerts?receiver=slack"
        );
        assert_eq!(
            r(r#"{{ template "slack.default.fallback" . }}"#),
            "[FIRING:2] S (slack) | http://vm:9093/#/alerts?receiver=slack"
        );
        assert_eq!(
            r(r#"{{ "abc" | toUpper }} {{ "ABC" | toLower }} {{ "aa bb CC" | title }}"#),
            "ABC abc Aa Bb Cc"
        );
        assert_eq!(r(r#"{{ match "^a" "abc" }} {{ match "abcd" "abc" }}"#), "true false");
        assert_eq!(r(r#"{{ reReplaceAll "ab" "AB" "abcdabcda" }}"#), "ABcdABcda");
        assert_eq!(r(r#"{{ stringSlice "a" "b" "c" | join "," }}"#), "a,b,c");
        assert_eq!(
            r(
                r#"{{ with .CommonLabels }}{{ with .Remove (stringSlice "alertname" "kind") }}{{ .SortedPairs.Values }}{{ end }}{{ end }}"#
            ),
            "",
            "an empty map is false, as in Go"
        );
        assert_eq!(
            r(r#"{{ with .CommonLabels.Remove (stringSlice "alertname") }}{{ .Names }}{{ end }}"#),
            "[kind]"
        );
        assert_eq!(r("{{ .CommonLabels.SortedPairs.Names }}"), "[alertname kind]");
        assert_eq!(r("{{ .GroupLabels.alertname }}/{{ .CommonLabels.nope }}"), "S/");
        assert_eq!(
            r(r#"{{ template "__text_alert_list" .Alerts.Firing }}"#).lines().next(),
            Some("Labels:")
        );
        let resolved = [alert(&[("alertname", "X")], &[], true)];
        let d = Data::new("r", &l(&[("alertname", "X")]), &resolved, "http://vm:9093", 5_000);
        assert_eq!(
            t.render(r#"{{ template "__subject" . }}"#, &d).unwrap(),
            "[RESOLVED] X "
        );
    }
}
