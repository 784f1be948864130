//! Label matchers as Alertmanager 0.25 parses, prints and applies them: `a="b"`,
//! `a!~"re"`, lists in braces, quoting and escaping rules, anchored regexes, and a
//! missing label matching as the empty string.

use std::cmp::Ordering;
use std::fmt;

use regex::Regex;
use sextant_model::Labels;

/// The operator of a matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchType {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regexp,
    /// `!~`
    NotRegexp,
}

impl MatchType {
    /// The operator's text.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regexp => "=~",
            MatchType::NotRegexp => "!~",
        }
    }

    /// Whether the value is a regular expression.
    pub fn is_regex(self) -> bool {
        matches!(self, MatchType::Regexp | MatchType::NotRegexp)
    }

    /// Whether the operator is positive (`=`, `=~`): the API's `isEqual`.
    pub fn is_equal(self) -> bool {
        matches!(self, MatchType::Equal | MatchType::Regexp)
    }

    /// From the API's `isEqual` and `isRegex`.
    pub fn from_flags(is_equal: bool, is_regex: bool) -> Self {
        match (is_equal, is_regex) {
            (true, false) => MatchType::Equal,
            (false, false) => MatchType::NotEqual,
            (true, true) => MatchType::Regexp,
            (false, true) => MatchType::NotRegexp,
        }
    }
}

/// One matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Operator.
    pub op: MatchType,
    /// Value or regular expression (unanchored, as written).
    pub value: String,
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}

impl Eq for Matcher {}

impl Matcher {
    /// A matcher; regexes are compiled anchored (`^(?:value)$`).
    pub fn new(op: MatchType, name: impl Into<String>, value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        let re = if op.is_regex() {
            Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("error parsing regexp: {}", regex_error(&e)))?,
            )
        } else {
            None
        };
        Ok(Self {
            name: name.into(),
            op,
            value,
            re,
        })
    }

    /// Whether the label value `v` (empty when the label is missing) matches.
    pub fn matches(&self, v: &str) -> bool {
        match self.op {
            MatchType::Equal => v == self.value,
            MatchType::NotEqual => v != self.value,
            MatchType::Regexp => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchType::NotRegexp => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// Whether the matcher matches a label set.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }

    /// Alertmanager's sort order: name, value, operator.
    pub fn cmp_am(&self, o: &Self) -> Ordering {
        self.name
            .cmp(&o.name)
            .then_with(|| self.value.cmp(&o.value))
            .then_with(|| self.op.cmp(&o.op))
    }
}

/// The first line of a regex error, as short as Go's.
fn regex_error(e: &regex::Error) -> String {
    e.to_string()
        .lines()
        .filter(|l| l.trim_start().starts_with("error:"))
        .map(|l| l.trim_start().trim_start_matches("error:").trim().to_owned())
        .next()
        .unwrap_or_else(|| e.to_string())
}

impl fmt::Display for Matcher {
    /// `name="value"` with `\`, newline and `"` escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"{}\"", self.name, self.op.as_str(), escape(&self.value))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n").replace('"', "\\\"")
}

/// `{a="b",c!="d"}`; `{}` when empty.
pub fn format_matchers(ms: &[Matcher]) -> String {
    let parts: Vec<String> = ms.iter().map(Matcher::to_string).collect();
    format!("{{{}}}", parts.join(","))
}

/// Whether every matcher matches.
pub fn matches_all(ms: &[Matcher], labels: &Labels) -> bool {
    ms.iter().all(|m| m.matches_labels(labels))
}

fn is_label_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// One matcher (`name op value`, the value optionally in double quotes), as
/// Alertmanager's `ParseMatcher` reads it: API filters and command-line matchers.
pub fn parse_matcher(s: &str) -> Result<Matcher, String> {
    let bad = || format!("bad matcher format: {s}");
    let t = s.trim_start();
    let name_len = t
        .char_indices()
        .find(|(i, c)| {
            if *i == 0 {
                !is_label_start(*c)
            } else {
                !is_label_char(*c)
            }
        })
        .map_or(t.len(), |(i, _)| i);
    if name_len == 0 {
        return Err(bad());
    }
    let name = &t[..name_len];
    let rest = t[name_len..].trim_start();
    let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
        (MatchType::Regexp, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (MatchType::NotEqual, r)
    } else if let Some(r) = rest.strip_prefix("!~") {
        (MatchType::NotRegexp, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (MatchType::Equal, r)
    } else {
        return Err(bad());
    };
    let raw = rest.trim_matches(|c: char| c.is_whitespace());
    let (quoted, body) = match raw.strip_prefix('"') {
        Some(b) => (true, b),
        None => (false, raw),
    };
    let unescaped_quote = || format!("matcher value contains unescaped double quote: {raw}");
    let mut value = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    let mut closed = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => value.push('\n'),
                Some('"') => value.push('"'),
                Some('\\') => value.push('\\'),
                Some(other) => {
                    value.push('\\');
                    value.push(other);
                }
                None => value.push('\\'),
            },
            '"' => {
                if quoted && chars.peek().is_none() {
                    closed = true;
                } else {
                    return Err(unescaped_quote());
                }
            }
            c => value.push(c),
        }
    }
    if quoted && !closed {
        return Err(unescaped_quote());
    }
    Matcher::new(op, name, value)
}

/// A list of matchers, optionally in braces and separated by commas outside
/// quotes, as Alertmanager's `ParseMatchers` reads them (config `matchers`,
/// `source_matchers`, ...).
pub fn parse_matchers(s: &str) -> Result<Vec<Matcher>, String> {
    let mut t = s;
    if let Some(r) = t.strip_prefix('{') {
        t = r;
    }
    if let Some(r) = t.strip_suffix('}') {
        t = r;
    }
    let mut tokens = Vec::new();
    let mut start = 0;
    let (mut in_quotes, mut escaped) = (false, false);
    for (i, c) in t.char_indices() {
        match c {
            ',' if !in_quotes => {
                tokens.push(&t[start..i]);
                start = i + 1;
            }
            '"' if !escaped => in_quotes = !in_quotes,
            _ => {}
        }
        escaped = c == '\\' && !escaped;
    }
    let last = &t[start..];
    if !last.trim().is_empty() {
        tokens.push(last);
    }
    tokens.into_iter().map(parse_matcher).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(op: MatchType, n: &str, v: &str) -> Matcher {
        Matcher::new(op, n, v).unwrap()
    }

    /// Alertmanager's `pkg/labels/parse_test.go`.
    #[test]
    fn parse_matchers_cases() {
        use MatchType::*;
        let ok: Vec<(&str, Vec<Matcher>)> = vec![
            (r#"{foo="bar"}"#, vec![m(Equal, "foo", "bar")]),
            (r#"{foo=~"bar.*"}"#, vec![m(Regexp, "foo", "bar.*")]),
            (r#"{foo!="bar"}"#, vec![m(NotEqual, "foo", "bar")]),
            (r#"{foo!~"bar.*"}"#, vec![m(NotRegexp, "foo", "bar.*")]),
            (
                r#"{foo="bar", baz!="quux"}"#,
                vec![m(Equal, "foo", "bar"), m(NotEqual, "baz", "quux")],
            ),
            (
                r#"{foo="bar", baz!~"quux.*"}"#,
                vec![m(Equal, "foo", "bar"), m(NotRegexp, "baz", "quux.*")],
            ),
            (
                r#"{foo="bar",baz!~".*quux", derp="wat"}"#,
                vec![
                    m(Equal, "foo", "bar"),
                    m(NotRegexp, "baz", ".*quux"),
                    m(Equal, "derp", "wat"),
                ],
            ),
            (r#"{foo=""}"#, vec![m(Equal, "foo", "")]),
            (
                r#"{foo="bar,quux", job="job1"}"#,
                vec![m(Equal, "foo", "bar,quux"), m(Equal, "job", "job1")],
            ),
            (
                r#"{foo = "bar", dings != "bums", }"#,
                vec![m(Equal, "foo", "bar"), m(NotEqual, "dings", "bums")],
            ),
            (
                "foo=bar,dings!=bums",
                vec![m(Equal, "foo", "bar"), m(NotEqual, "dings", "bums")],
            ),
            (
                r#"{quote="She said: \"Hi, ladies! That's gender-neutral…\""}"#,
                vec![m(Equal, "quote", r#"She said: "Hi, ladies! That's gender-neutral…""#)],
            ),
            (r#"statuscode=~"5..""#, vec![m(Regexp, "statuscode", "5..")]),
            ("tricky=~~~", vec![m(Regexp, "tricky", "~~")]),
            (r#"trickier==\\=\=\""#, vec![m(Equal, "trickier", r#"=\=\=""#)]),
            (
                r#"contains_quote != "\"" , contains_comma !~ "foo,bar" , "#,
                vec![
                    m(NotEqual, "contains_quote", "\""),
                    m(NotRegexp, "contains_comma", "foo,bar"),
                ],
            ),
            ("job=", vec![m(Equal, "job", "")]),
        ];
        for (input, want) in ok {
            assert_eq!(parse_matchers(input).unwrap(), want, "{input}");
        }
        for (input, want) in [
            (
                r#"job="value"#,
                r#"matcher value contains unescaped double quote: "value"#,
            ),
            (
                r#"job=value""#,
                r#"matcher value contains unescaped double quote: value""#,
            ),
            (
                r#"trickier==\\=\=\"""#,
                r#"matcher value contains unescaped double quote: =\\=\=\"""#,
            ),
            (
                r#"contains_unescaped_quote = foo"bar"#,
                r#"matcher value contains unescaped double quote: foo"bar"#,
            ),
            (
                r#"{invalid-name = "valid label"}"#,
                r#"bad matcher format: invalid-name = "valid label""#,
            ),
            (r#""{foo=\"bar"}"#, r#"bad matcher format: "{foo=\"bar""#),
            (r#""foo=\"bar""#, r#"bad matcher format: "foo=\"bar""#),
            (r#""foo="bar"""#, r#"bad matcher format: "foo="bar"""#),
        ] {
            assert_eq!(parse_matchers(input).unwrap_err(), want, "{input}");
        }
        assert!(
            parse_matchers(r#"{foo=~"invalid[regexp"}"#)
                .unwrap_err()
                .starts_with("error parsing regexp")
        );
    }

    /// `matcher_test.go`.
    #[test]
    fn matching_and_printing() {
        use MatchType::*;
        for (op, value, input, want) in [
            (Equal, "bar", "bar", true),
            (Equal, "bar", "foo-bar", false),
            (NotEqual, "bar", "bar", false),
            (NotEqual, "bar", "foo-bar", true),
            (Regexp, "bar", "bar", true),
            (Regexp, "bar", "foo-bar", false),
            (Regexp, ".*bar", "foo-bar", true),
            (NotRegexp, "bar", "bar", false),
            (NotRegexp, "bar", "foo-bar", true),
            (NotRegexp, ".*bar", "foo-bar", false),
            (Regexp, "foo.bar", "foo-bar", true),
            (Regexp, r"foo\.bar", "foo-bar", false),
            (Regexp, r"foo\.bar", "foo.bar", true),
            (Equal, "foo\nbar", "foo\nbar", true),
            (Regexp, "foo.bar", "foo\nbar", false),
            (Regexp, "(?s)foo.bar", "foo\nbar", true),
            (Equal, "~!=\"", "~!=\"", true),
        ] {
            assert_eq!(m(op, "foo", value).matches(input), want, "{op:?} {value:?} {input:?}");
        }
        assert_eq!(m(Equal, "foo", "bar").to_string(), r#"foo="bar""#);
        assert_eq!(m(NotRegexp, "foo", "bar").to_string(), r#"foo!~"bar""#);
        assert_eq!(m(Equal, "foo", r"back\slash").to_string(), r#"foo="back\\slash""#);
        assert_eq!(m(Equal, "foo", "double\"quote").to_string(), r#"foo="double\"quote""#);
        assert_eq!(m(Equal, "foo", "new\nline").to_string(), r#"foo="new\nline""#);
        assert_eq!(m(Equal, "foo", "tab\tstop").to_string(), "foo=\"tab\tstop\"");
        assert_eq!(format_matchers(&[]), "{}");
    }
}
