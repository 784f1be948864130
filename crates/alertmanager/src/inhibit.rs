//! Inhibition with Alertmanager 0.25's semantics: a firing alert matching a rule's
//! source matchers mutes alerts matching its target matchers when the `equal`
//! labels agree (a missing label counts as empty); an alert matching both sides is
//! not muted by another alert that also matches both.

use std::collections::HashMap;

use sextant_model::Labels;

use crate::alert::{Alert, fingerprint};
use crate::config::InhibitRule;
use crate::matchers::matches_all;

/// The inhibitor: per rule, the latest version of every alert that matched its
/// source side.
#[derive(Debug, Default)]
pub struct Inhibitor {
    rules: Vec<InhibitRule>,
    sources: Vec<HashMap<u64, Alert>>,
}

impl Inhibitor {
    /// An inhibitor for `rules` with no alerts seen yet.
    pub fn new(rules: Vec<InhibitRule>) -> Self {
        let sources = vec![HashMap::new(); rules.len()];
        Self { rules, sources }
    }

    /// Records a new version of an alert.
    pub fn observe(&mut self, a: &Alert) {
        let fp = a.fingerprint();
        for (rule, cache) in self.rules.iter().zip(self.sources.iter_mut()) {
            if matches_all(&rule.source, &a.labels) {
                cache.insert(fp, a.clone());
            }
        }
    }

    /// Forgets an alert (garbage collection of resolved alerts).
    pub fn forget(&mut self, fp: u64) {
        for c in &mut self.sources {
            c.remove(&fp);
        }
    }

    /// The fingerprint of the alert that mutes `target` at `now`, if one does.
    pub fn muted_by(&self, target: &Labels, now: i64) -> Option<u64> {
        let target_fp = fingerprint(target);
        for (rule, cache) in self.rules.iter().zip(&self.sources) {
            if !matches_all(&rule.target, target) {
                continue;
            }
            let target_is_source = matches_all(&rule.source, target);
            for (fp, s) in cache {
                if s.resolved_at(now) {
                    continue;
                }
                if target_is_source && (*fp == target_fp || matches_all(&rule.target, &s.labels)) {
                    continue;
                }
                let equal = rule
                    .equal
                    .iter()
                    .all(|n| s.labels.get(n).unwrap_or("") == target.get(n).unwrap_or(""));
                if equal {
                    return Some(*fp);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::matchers::{MatchType, Matcher};

    const NOW: i64 = 1_000_000;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    fn alert(labels: &[(&str, &str)], resolved: bool) -> Alert {
        Alert {
            labels: l(labels),
            annotations: BTreeMap::new(),
            starts_at: NOW - 10,
            ends_at: Some(if resolved { NOW - 1 } else { NOW + 1_000 }),
            generator_url: String::new(),
            updated_at: NOW - 10,
            timeout: false,
        }
    }

    fn rule(src: (MatchType, &str, &str), tgt: (MatchType, &str, &str), equal: &[&str]) -> InhibitRule {
        InhibitRule {
            source: vec![Matcher::new(src.0, src.1, src.2).unwrap()],
            target: vec![Matcher::new(tgt.0, tgt.1, tgt.2).unwrap()],
            equal: equal.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// `inhibit/inhibit_test.go`, `TestInhibitRuleMatches` and `TestInhibitRuleMatchers`.
    #[test]
    fn rule_matches() {
        use MatchType::*;
        for (r1, r2, want) in [
            (
                rule((Equal, "s1", "1"), (Equal, "t1", "1"), &["e"]),
                rule((Equal, "s2", "1"), (Equal, "t2", "1"), &["e"]),
                [true, true, true, true, false, true, false, false],
            ),
            (
                rule((Equal, "s1", "1"), (NotEqual, "t1", "1"), &["e"]),
                rule((Equal, "s2", "1"), (Equal, "t2", "1"), &["e"]),
                [false, true, false, true, true, false, true, false],
            ),
        ] {
            let mut inh = Inhibitor::new(vec![r1, r2]);
            inh.observe(&alert(&[("s1", "1"), ("t1", "2"), ("e", "1")], false));
            inh.observe(&alert(&[("s2", "1"), ("t2", "1"), ("e", "1")], false));
            let targets = [
                l(&[("t1", "1"), ("e", "1")]),
                l(&[("t2", "1"), ("e", "1")]),
                l(&[("t1", "1"), ("t3", "1"), ("e", "1")]),
                l(&[("t1", "1"), ("t2", "1"), ("e", "1")]),
                l(&[("t1", "0"), ("e", "1")]),
                l(&[("s1", "1"), ("t1", "1"), ("e", "1")]),
                l(&[("s2", "1"), ("t2", "1"), ("e", "1")]),
                l(&[("t1", "1"), ("e", "0")]),
            ];
            for (t, w) in targets.iter().zip(want) {
                assert_eq!(inh.muted_by(t, NOW).is_some(), w, "{t}");
            }
        }
    }

    /// `TestInhibit`.
    #[test]
    fn a_resolved_source_stops_muting() {
        let mut inh = Inhibitor::new(vec![rule(
            (MatchType::Equal, "s", "1"),
            (MatchType::Equal, "t", "1"),
            &["e"],
        )]);
        let one = l(&[("t", "1"), ("e", "f")]);
        inh.observe(&alert(&[("t", "1"), ("e", "f")], false));
        assert_eq!(inh.muted_by(&one, NOW), None);
        let two = alert(&[("s", "1"), ("e", "f")], false);
        inh.observe(&two);
        assert_eq!(inh.muted_by(&one, NOW), Some(two.fingerprint()));
        assert_eq!(inh.muted_by(&two.labels, NOW), None);
        inh.observe(&alert(&[("s", "1"), ("e", "f")], true));
        assert_eq!(inh.muted_by(&one, NOW), None);
        // Without `equal`, any firing source mutes.
        let mut inh = Inhibitor::new(vec![rule(
            (MatchType::Equal, "s", "1"),
            (MatchType::Equal, "t", "1"),
            &[],
        )]);
        inh.observe(&alert(&[("s", "1"), ("x", "y")], false));
        assert!(inh.muted_by(&l(&[("t", "1")]), NOW).is_some());
    }
}
