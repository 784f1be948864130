use regex::Regex;

use crate::{Error, Labels, Result};

/// How a [`Matcher`] compares a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~` (fully anchored)
    Regex,
    /// `!~` (fully anchored)
    NotRegex,
}

/// A label matcher from a series selector, e.g. `job=~"api|web"`.
///
/// As in Prometheus, a missing label has the value `""`, so `{foo=""}` selects series
/// without `foo`, and regexes are anchored at both ends.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// The label name.
    pub name: String,
    /// The comparison.
    pub op: MatchOp,
    /// The value or pattern as written.
    pub value: String,
    regex: Option<Regex>,
}

impl Matcher {
    /// Builds a matcher, compiling the anchored regex for `=~`/`!~`.
    pub fn new(op: MatchOp, name: impl Into<String>, value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(anchored_regex(&value)?),
            _ => None,
        };
        Ok(Self {
            name: name.into(),
            op,
            value,
            regex,
        })
    }

    /// Whether `value` (`""` for an absent label) satisfies this matcher.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => self.value == value,
            MatchOp::NotEqual => self.value != value,
            MatchOp::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// Whether a series with these labels is selected by this matcher.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }

    /// True when the matcher also selects series that lack the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

/// Compiles `pattern` anchored at both ends, as Prometheus 2.42 does for label regexes
/// (`^(?:pattern)$`: `.` does not match a newline), with Go's RE2 syntax where it
/// differs from Rust's (see [`go_regex_syntax`]).
pub fn anchored_regex(pattern: &str) -> Result<Regex> {
    let invalid = |reason: String| Error::InvalidRegex {
        pattern: pattern.to_owned(),
        reason,
    };
    let translated = go_regex_syntax(pattern).map_err(invalid)?;
    Regex::new(&format!("^(?:{translated})$")).map_err(|e| invalid(e.to_string()))
}

/// Go 1.19's RE2 (Prometheus 2.42's regex engine) rewritten for Rust's `regex`, or the
/// error Go gives. Go has `\Q...\E` literals, where Rust has none; Rust accepts
/// `(?<name>...)` groups and repetition counts over 1000, which Go refuses; and `\<`,
/// `\>` are word boundaries in Rust but literal characters in Go.
pub fn go_regex_syntax(pattern: &str) -> std::result::Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len());
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            let n = chars[i + 1];
            if n == 'Q' && !in_class {
                // Everything up to `\E` (or the end) is literal.
                let mut j = i + 2;
                while j < chars.len() && !(chars[j] == '\\' && chars.get(j + 1) == Some(&'E')) {
                    out.push_str(&regex::escape(&chars[j].to_string()));
                    j += 1;
                }
                i = if j < chars.len() { j + 2 } else { j };
                continue;
            }
            if (n == '<' || n == '>') && !in_class {
                out.push(n);
                i += 2;
                continue;
            }
            out.push(c);
            out.push(n);
            i += 2;
            continue;
        }
        if in_class {
            if c == ']' {
                in_class = false;
            }
            out.push(c);
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push(c);
                // A `]` right after `[` or `[^` is a literal.
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i + 1) == Some(&']') {
                    out.push(']');
                    i += 1;
                }
            }
            '(' if chars.get(i + 1) == Some(&'?') && chars.get(i + 2) == Some(&'<') => {
                return Err("invalid or unsupported Perl syntax: `(?<`".into());
            }
            '{' => {
                let close = chars[i..].iter().position(|&x| x == '}').map(|p| i + p);
                if let Some(close) = close {
                    let body: String = chars[i + 1..close].iter().collect();
                    let counts: Vec<&str> = body.split(',').collect();
                    let is_repeat = !body.is_empty()
                        && counts.len() <= 2
                        && counts[0].chars().all(|d| d.is_ascii_digit())
                        && !counts[0].is_empty()
                        && counts.get(1).is_none_or(|s| s.chars().all(|d| d.is_ascii_digit()));
                    if is_repeat && counts.iter().any(|n| n.parse::<u64>().is_ok_and(|n| n > 1000)) {
                        let text: String = chars[i..=close].iter().collect();
                        return Err(format!("invalid repeat count: `{text}`"));
                    }
                }
                out.push(c);
            }
            _ => out.push(c),
        }
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_regex_dialect() {
        assert!(anchored_regex(r"a\Q.*\Eb").unwrap().is_match("a.*b"));
        assert!(!anchored_regex(r"a\Q.*\Eb").unwrap().is_match("axxb"));
        assert!(anchored_regex("(?<n>x)").is_err());
        assert!(anchored_regex("a{1001}").is_err());
        assert!(anchored_regex("a{2,1000}").is_ok());
        assert!(anchored_regex(r"\<x\>").unwrap().is_match("<x>"));
        // 2.42 compiles `^(?:re)$`: `.` stops at a newline.
        assert!(!anchored_regex("a.b").unwrap().is_match("a\nb"));
        assert!(anchored_regex("[]a]").unwrap().is_match("]"));
    }

    #[test]
    fn regex_is_anchored_and_absent_is_empty() {
        let m = Matcher::new(MatchOp::Regex, "job", "api|web").unwrap();
        assert!(m.matches("api"));
        assert!(!m.matches("xapi"));
        let l = Labels::from_pairs([("a", "1")]).unwrap();
        assert!(Matcher::new(MatchOp::Equal, "foo", "").unwrap().matches_labels(&l));
        assert!(!Matcher::new(MatchOp::NotEqual, "foo", "").unwrap().matches_labels(&l));
        assert!(Matcher::new(MatchOp::NotRegex, "a", "2").unwrap().matches_labels(&l));
    }

    #[test]
    fn bad_regex_is_an_error() {
        assert!(matches!(
            Matcher::new(MatchOp::Regex, "a", "("),
            Err(Error::InvalidRegex { .. })
        ));
    }
}
