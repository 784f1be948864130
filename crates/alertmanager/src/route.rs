//! The routing tree: which routes (and so receivers and timings) an alert's labels
//! reach, depth first, most specific match, `continue` letting later siblings match
//! too; group labels; route keys as Alertmanager writes them.

use std::time::Duration;

use sextant_model::Labels;

use crate::matchers::{Matcher, matches_all};

/// A node of the routing tree, with its options resolved (inherited values filled
/// in).
#[derive(Debug, Clone)]
pub struct Route {
    /// Receiver.
    pub receiver: String,
    /// Labels to group by.
    pub group_by: Vec<String>,
    /// Group by every label (`...`).
    pub group_by_all: bool,
    /// Matchers, sorted as Alertmanager sorts them.
    pub matchers: Vec<Matcher>,
    /// Keep matching later siblings.
    pub continue_: bool,
    /// Wait before a new group's first notification.
    pub group_wait: Duration,
    /// Wait between notifications about a group's changes.
    pub group_interval: Duration,
    /// Wait before repeating an unchanged notification.
    pub repeat_interval: Duration,
    /// Muted during these intervals (not inherited).
    pub mute_time_intervals: Vec<String>,
    /// Muted outside these intervals (not inherited).
    pub active_time_intervals: Vec<String>,
    /// Sextant: escalate unacknowledged groups after this long.
    pub escalate_after: Option<Duration>,
    /// Sextant: receivers to escalate to, in order.
    pub escalate_to: Vec<String>,
    /// Children.
    pub routes: Vec<Route>,
    /// `{}/{a="b"}/...`: the matchers from the root down.
    pub key: String,
    /// Position in a depth-first walk (the root is 0): identity of the node.
    pub id: usize,
}

impl Route {
    /// Numbers the nodes in depth-first order.
    pub(crate) fn number(&mut self, next: &mut usize) {
        self.id = *next;
        *next += 1;
        for r in &mut self.routes {
            r.number(next);
        }
    }

    /// The routes `labels` reach, in tree order (may repeat a receiver).
    pub fn matches(&self, labels: &Labels) -> Vec<&Route> {
        if !matches_all(&self.matchers, labels) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for child in &self.routes {
            let m = child.matches(labels);
            let matched = !m.is_empty();
            out.extend(m);
            if matched && !child.continue_ {
                break;
            }
        }
        if out.is_empty() {
            out.push(self);
        }
        out
    }

    /// Every node, depth first.
    pub fn walk(&self) -> Vec<&Route> {
        let mut out = vec![self];
        for r in &self.routes {
            out.extend(r.walk());
        }
        out
    }

    /// The node with this id.
    pub fn by_id(&self, id: usize) -> Option<&Route> {
        if self.id == id {
            return Some(self);
        }
        self.routes.iter().find_map(|r| r.by_id(id))
    }

    /// The labels an alert is grouped by on this route.
    pub fn group_labels(&self, labels: &Labels) -> Labels {
        if self.group_by_all {
            return labels.clone();
        }
        labels.filter(|l| self.group_by.contains(&l.name))
    }
}

/// Alertmanager's `LabelSet.String()`: `{a="b", c="d"}` with Go-quoted values.
pub fn labelset_string(labels: &Labels) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|l| format!("{}={}", l.name, sextant_template::gofmt::quote(&l.value)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::parse;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    const RECEIVERS: &str = "receivers:\n- name: notify-def\n- name: notify-A\n- name: notify-testing\n- name: notify-productionA\n- name: notify-productionB\n- name: notify-BC\n";

    /// `dispatch/route_test.go`, `TestRouteMatch`: the legacy syntax.
    const LEGACY: &str = r#"
route:
  receiver: 'notify-def'
  routes:
  - match: {owner: 'team-A'}
    receiver: 'notify-A'
    routes:
    - match: {env: 'testing'}
      receiver: 'notify-testing'
      group_by: [...]
    - match: {env: "production"}
      receiver: 'notify-productionA'
      group_wait: 1m
      continue: true
    - match_re: {env: "produ.*", job: ".*"}
      receiver: 'notify-productionB'
      group_wait: 30s
      group_interval: 5m
      repeat_interval: 1h
      group_by: ['job']
  - match_re: {owner: 'team-(B|C)'}
    group_by: ['foo', 'bar']
    group_wait: 2m
    receiver: 'notify-BC'
  - match: {group_by: 'role'}
    group_by: ['role']
    routes:
    - match: {env: 'testing'}
      receiver: 'notify-testing'
      routes:
      - match: {wait: 'long'}
        group_wait: 2m
"#;

    /// The same tree in the `matchers` syntax (`TestRouteMatchers`).
    const MATCHERS: &str = r#"
route:
  receiver: 'notify-def'
  routes:
  - matchers: ['{owner="team-A"}', '{level!="critical"}']
    receiver: 'notify-A'
    routes:
    - matchers: ['{env="testing"}', '{baz!~".*quux"}']
      receiver: 'notify-testing'
      group_by: [...]
    - matchers: ['{env="production"}']
      receiver: 'notify-productionA'
      group_wait: 1m
      continue: true
    - matchers: [ env=~"produ.*", job=~".*"]
      receiver: 'notify-productionB'
      group_wait: 30s
      group_interval: 5m
      repeat_interval: 1h
      group_by: ['job']
  - matchers: [owner=~"team-(B|C)"]
    group_by: ['foo', 'bar']
    group_wait: 2m
    receiver: 'notify-BC'
  - matchers: [group_by="role"]
    group_by: ['role']
    routes:
    - matchers: ['{env="testing"}']
      receiver: 'notify-testing'
      routes:
      - matchers: [wait="long"]
        group_wait: 2m
"#;

    type Want<'a> = (&'a str, &'a [&'a str], bool, u64, u64, u64, &'a str);

    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [Want<'a>]);

    fn check(cfg: &str, cases: &[Case<'_>]) {
        let text = format!("{cfg}{RECEIVERS}");
        let c = parse(&text, Path::new("route.yml")).unwrap();
        for (labels, want) in cases {
            let got: Vec<Want<'_>> = c
                .route
                .matches(&l(labels))
                .into_iter()
                .map(|r| {
                    (
                        r.receiver.as_str(),
                        &[][..],
                        r.group_by_all,
                        r.group_wait.as_secs(),
                        r.group_interval.as_secs(),
                        r.repeat_interval.as_secs(),
                        r.key.as_str(),
                    )
                })
                .collect();
            let by: Vec<Vec<String>> = c.route.matches(&l(labels)).iter().map(|r| r.group_by.clone()).collect();
            assert_eq!(got.len(), want.len(), "{labels:?}");
            for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
                assert_eq!(
                    (g.0, g.2, g.3, g.4, g.5, g.6),
                    (w.0, w.2, w.3, w.4, w.5, w.6),
                    "{labels:?}"
                );
                let mut want_by: Vec<String> = w.1.iter().map(|s| s.to_string()).collect();
                let mut got_by = by[i].clone();
                want_by.sort();
                got_by.sort();
                assert_eq!(got_by, want_by, "{labels:?}");
            }
        }
    }

    #[test]
    fn routes_match_as_alertmanager_routes_them() {
        let h = 3600;
        check(
            LEGACY,
            &[
                (
                    &[("owner", "team-A")],
                    &[("notify-A", &[], false, 30, 300, 4 * h, r#"{}/{owner="team-A"}"#)],
                ),
                (
                    &[("owner", "team-A"), ("env", "unset")],
                    &[("notify-A", &[], false, 30, 300, 4 * h, r#"{}/{owner="team-A"}"#)],
                ),
                (
                    &[("owner", "team-C")],
                    &[(
                        "notify-BC",
                        &["foo", "bar"],
                        false,
                        120,
                        300,
                        4 * h,
                        r#"{}/{owner=~"^(?:team-(B|C))$"}"#,
                    )],
                ),
                (
                    &[("owner", "team-A"), ("env", "testing")],
                    &[(
                        "notify-testing",
                        &[],
                        true,
                        30,
                        300,
                        4 * h,
                        r#"{}/{owner="team-A"}/{env="testing"}"#,
                    )],
                ),
                (
                    &[("owner", "team-A"), ("env", "production")],
                    &[
                        (
                            "notify-productionA",
                            &[],
                            false,
                            60,
                            300,
                            4 * h,
                            r#"{}/{owner="team-A"}/{env="production"}"#,
                        ),
                        (
                            "notify-productionB",
                            &["job"],
                            false,
                            30,
                            300,
                            h,
                            r#"{}/{owner="team-A"}/{env=~"^(?:produ.*)$",job=~"^(?:.*)$"}"#,
                        ),
                    ],
                ),
                (
                    &[("group_by", "role")],
                    &[(
                        "notify-def",
                        &["role"],
                        false,
                        30,
                        300,
                        4 * h,
                        r#"{}/{group_by="role"}"#,
                    )],
                ),
                (
                    &[("env", "testing"), ("group_by", "role")],
                    &[(
                        "notify-testing",
                        &["role"],
                        false,
                        30,
                        300,
                        4 * h,
                        r#"{}/{group_by="role"}/{env="testing"}"#,
                    )],
                ),
                (
                    &[("env", "testing"), ("group_by", "role"), ("wait", "long")],
                    &[(
                        "notify-testing",
                        &["role"],
                        false,
                        120,
                        300,
                        4 * h,
                        r#"{}/{group_by="role"}/{env="testing"}/{wait="long"}"#,
                    )],
                ),
            ],
        );
        check(
            MATCHERS,
            &[
                (
                    &[("owner", "team-A")],
                    &[(
                        "notify-A",
                        &[],
                        false,
                        30,
                        300,
                        4 * h,
                        r#"{}/{level!="critical",owner="team-A"}"#,
                    )],
                ),
                (
                    &[("owner", "team-C")],
                    &[(
                        "notify-BC",
                        &["foo", "bar"],
                        false,
                        120,
                        300,
                        4 * h,
                        r#"{}/{owner=~"team-(B|C)"}"#,
                    )],
                ),
                (
                    &[("owner", "team-A"), ("env", "testing")],
                    &[(
                        "notify-testing",
                        &[],
                        true,
                        30,
                        300,
                        4 * h,
                        r#"{}/{level!="critical",owner="team-A"}/{baz!~".*quux",env="testing"}"#,
                    )],
                ),
                (
                    &[("owner", "team-A"), ("env", "production")],
                    &[
                        (
                            "notify-productionA",
                            &[],
                            false,
                            60,
                            300,
                            4 * h,
                            r#"{}/{level!="critical",owner="team-A"}/{env="production"}"#,
                        ),
                        (
                            "notify-productionB",
                            &["job"],
                            false,
                            30,
                            300,
                            h,
                            r#"{}/{level!="critical",owner="team-A"}/{env=~"produ.*",job=~".*"}"#,
                        ),
                    ],
                ),
            ],
        );
    }

    #[test]
    fn walk_order_and_group_by_all_inheritance() {
        let c = parse(&format!("{LEGACY}{RECEIVERS}"), Path::new("r.yml")).unwrap();
        let walk: Vec<&str> = c.route.walk().iter().map(|r| r.receiver.as_str()).collect();
        assert_eq!(
            walk,
            [
                "notify-def",
                "notify-A",
                "notify-testing",
                "notify-productionA",
                "notify-productionB",
                "notify-BC",
                "notify-def",
                "notify-testing",
                "notify-testing"
            ]
        );
        let c = parse(
            "route:\n  receiver: r\n  group_by: ['...']\n  routes:\n  - matchers: [a=b]\n  - matchers: [c=d]\n    group_by: [foo]\nreceivers: [{name: r}]\n",
            Path::new("r.yml"),
        )
        .unwrap();
        assert!(c.route.routes[0].group_by_all);
        assert!(!c.route.routes[1].group_by_all);
    }

    /// `cli/test_routing_test.go`.
    #[test]
    fn continue_reaches_later_siblings() {
        let routing = "route:\n  receiver: default\n  routes:\n  - match_re: {test: '^[12]$'}\n    receiver: test1\n    continue: true\n  - match: {test: '2'}\n    receiver: test2\nreceivers: [{name: default}, {name: test1}, {name: test2}]\n";
        let c = parse(routing, Path::new("r.yml")).unwrap();
        let names = |labels: &[(&str, &str)]| -> Vec<String> {
            c.route.matches(&l(labels)).iter().map(|r| r.receiver.clone()).collect()
        };
        assert_eq!(names(&[("test", "1")]), ["test1"]);
        assert_eq!(names(&[("test", "2")]), ["test1", "test2"]);
        assert_eq!(names(&[("test", "volovina")]), ["default"]);
    }

    #[test]
    fn group_labels_and_keys() {
        let c = parse(
            "route: {receiver: r, group_by: [a, b]}\nreceivers: [{name: r}]\n",
            Path::new("r.yml"),
        )
        .unwrap();
        assert_eq!(
            c.route.group_labels(&l(&[("a", "v1"), ("b", "v2"), ("c", "v3")])),
            l(&[("a", "v1"), ("b", "v2")])
        );
        assert_eq!(
            labelset_string(&l(&[("alertname", "X"), ("b", "a\"b")])),
            r#"{alertname="X", b="a\"b"}"#
        );
        assert_eq!(c.route.key, "{}");
    }
}
