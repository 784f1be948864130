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

/// Compiles `pattern` anchored at both ends, as Prometheus does for label regexes.
pub fn anchored_regex(pattern: &str) -> Result<Regex> {
    Regex::new(&format!("^(?s:{pattern})$")).map_err(|e| Error::InvalidRegex {
        pattern: pattern.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
