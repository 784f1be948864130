//! Prometheus 2.42's alerting-rule behaviour (`rules/alerting_test.go`, `manager_test.go`
//! and what the 2.42 server was seen to do), on the state machine alone.

use std::time::Duration;

use sextant_model::{Labels, Sample, stale_nan};

use super::*;
use crate::templates::prometheus_funcs;

const MIN: i64 = 60_000;

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).unwrap()
}

fn rule(for_s: u64, keep_s: u64, labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> AlertingRule {
    let own = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    };
    AlertingRule::new(
        "HighValue",
        "metric > 50",
        Duration::from_secs(for_s),
        Duration::from_secs(keep_s),
        &own(labels),
        &own(annotations),
        &prometheus_funcs(None, "http://localhost:9090"),
        true,
    )
    .unwrap()
}

fn series(v: f64) -> Vec<(Labels, f64)> {
    if v > 50.0 {
        vec![(l(&[("__name__", "metric"), ("instance", "a")]), v)]
    } else {
        vec![]
    }
}

/// The state of the one alert after each evaluation, one per minute.
fn timeline(r: &mut AlertingRule, values: &[f64]) -> Vec<Option<AlertState>> {
    let opts = AlertingOptions::default();
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            r.eval(i as i64 * MIN, series(*v), 0, &opts).unwrap();
            r.active_alerts().first().map(|a| a.state)
        })
        .collect()
}

#[test]
fn keep_firing_for_holds_a_firing_alert_but_not_a_pending_one() {
    use AlertState::*;
    let mut r = rule(60, 60, &[], &[]);
    assert_eq!(
        timeline(&mut r, &[75.0, 85.0, 70.0, 70.0, 10.0, 10.0, 10.0]),
        [
            Some(Pending),
            Some(Firing),
            Some(Firing),
            Some(Firing),
            Some(Firing),
            None,
            None
        ]
    );
    let mut r = rule(60, 60, &[], &[]);
    assert_eq!(timeline(&mut r, &[75.0, 10.0, 10.0]), [Some(Pending), None, None]);
}

#[test]
fn for_zero_fires_at_once_and_a_refiring_alert_starts_pending_again() {
    use AlertState::*;
    let mut r = rule(0, 0, &[], &[]);
    assert_eq!(timeline(&mut r, &[75.0, 10.0]), [Some(Firing), None]);
    let mut r = rule(120, 0, &[], &[]);
    assert_eq!(
        timeline(&mut r, &[75.0, 75.0, 75.0, 10.0, 75.0]),
        [Some(Pending), Some(Pending), Some(Firing), None, Some(Pending)]
    );
    // The resolved alert was replaced, so its active time is the new one.
    assert_eq!(r.active_alerts()[0].active_at_ms, 4 * MIN);
}

#[test]
fn labels_and_annotations_are_templates_and_identity_follows_labels() {
    let mut r = rule(
        60,
        0,
        &[
            ("severity", "{{ if gt $value 80.0 }}page{{ else }}ticket{{ end }}"),
            ("empty", "{{ if false }}x{{ end }}"),
        ],
        &[("summary", "{{ $labels.instance }} is at {{ $value }}")],
    );
    let opts = AlertingOptions::default();
    r.eval(0, series(75.0), 0, &opts).unwrap();
    let a = &r.active_alerts()[0];
    assert_eq!(
        a.labels,
        l(&[("alertname", "HighValue"), ("instance", "a"), ("severity", "ticket")])
    );
    assert_eq!(a.annotations["summary"], "a is at 75");
    // A label that changes with the value is a new alert: pending starts over.
    r.eval(MIN, series(85.0), 0, &opts).unwrap();
    let alerts = r.active_alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].labels.get("severity"), Some("page"));
    assert_eq!(alerts[0].state, AlertState::Pending);
}

#[test]
fn alerts_series_use_the_raw_rule_labels_and_wait_for_restore() {
    let mut r = rule(0, 0, &[("empty", "{{ if false }}x{{ end }}")], &[]);
    let opts = AlertingOptions::default();
    r.restored = false;
    assert!(r.eval(0, series(75.0), 0, &opts).unwrap().series.is_empty());
    r.restored = true;
    let out = r.eval(MIN, series(75.0), 0, &opts).unwrap();
    let alerts = out
        .series
        .iter()
        .find(|(l, _)| l.metric_name() == Some("ALERTS"))
        .unwrap();
    assert_eq!(
        alerts.0,
        l(&[
            ("__name__", "ALERTS"),
            ("alertname", "HighValue"),
            ("alertstate", "firing"),
            ("empty", "{{ if false }}x{{ end }}"),
            ("instance", "a")
        ])
    );
    let for_state = out
        .series
        .iter()
        .find(|(l, _)| l.metric_name() == Some("ALERTS_FOR_STATE"))
        .unwrap();
    assert_eq!(for_state.1, 0.0, "active since 0s");
    assert_eq!(for_state.0.get("alertstate"), None);
}

#[test]
fn duplicate_label_sets_and_limits_fail_the_rule() {
    let mut r = rule(0, 0, &[], &[]);
    let opts = AlertingOptions::default();
    let two = vec![
        (l(&[("__name__", "a"), ("x", "1")]), 60.0),
        (l(&[("__name__", "b"), ("x", "1")]), 70.0),
    ];
    assert_eq!(
        r.eval(0, two, 0, &opts).unwrap_err(),
        "vector contains metrics with the same labelset after applying alert labels"
    );
    let two = vec![(l(&[("x", "1")]), 60.0), (l(&[("x", "2")]), 70.0)];
    assert_eq!(
        r.eval(0, two, 1, &opts).unwrap_err(),
        "exceeded limit of 1 with 2 alerts"
    );
    assert!(r.active.is_empty(), "exceeding the limit forgets every alert");
}

#[test]
fn resends_wait_for_the_delay_strictly_and_resolutions_go_at_once() {
    let mut r = rule(0, 0, &[], &[]);
    let opts = AlertingOptions {
        resend_delay: Duration::from_secs(2),
        ..Default::default()
    };
    let interval = Duration::from_secs(1);
    let mut sent_at = Vec::new();
    for t in 0..8 {
        r.eval(t * 1000, series(75.0), 0, &opts).unwrap();
        let due = r.due(t * 1000, interval, &opts);
        if !due.is_empty() {
            sent_at.push(t);
            assert_eq!(due[0].starts_at_ms, Some(0));
            // Valid for 4 x max(resend delay, interval).
            assert_eq!(due[0].ends_at_ms, Some(t * 1000 + 8000));
        }
    }
    assert_eq!(sent_at, [0, 3, 6], "every resend delay plus one interval");
    // Resolved at 8s: sent at once with endsAt = the resolution, then re-sent.
    r.eval(8000, vec![], 0, &opts).unwrap();
    let due = r.due(8000, interval, &opts);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].ends_at_ms, Some(8000));
    assert!(r.due(9000, interval, &opts).is_empty());
    r.eval(11_000, vec![], 0, &opts).unwrap();
    assert_eq!(r.due(11_000, interval, &opts).len(), 1);
    // Forgotten 15 minutes after resolving.
    r.eval(8000 + 15 * MIN + 1, vec![], 0, &opts).unwrap();
    assert!(r.active.is_empty());
}

#[test]
fn generator_url_and_external_labels() {
    let mut r = rule(0, 0, &[("severity", "page")], &[]);
    let opts = AlertingOptions {
        external_labels: Arc::new(l(&[("cluster", "c1"), ("severity", "ext")])),
        external_url: "http://example.com:9090/prom".into(),
        ..Default::default()
    };
    r.eval(0, series(75.0), 0, &opts).unwrap();
    let due = r.due(0, Duration::from_secs(60), &opts);
    assert_eq!(
        due[0].labels,
        l(&[
            ("alertname", "HighValue"),
            ("cluster", "c1"),
            ("instance", "a"),
            ("severity", "page")
        ])
    );
    assert_eq!(
        due[0].generator_url,
        "http://example.com:9090/prom/graph?g0.expr=metric+%3E+50&g0.tab=1"
    );
}

#[test]
fn restore_shifts_pending_by_the_downtime_and_respects_the_grace_period() {
    let opts = AlertingOptions::default();
    let at = |h: i64, m: i64, s: i64| ((h * 60 + m) * 60 + s) * 1000;
    // `for: 1h`, active at 17:28:10, last seen at 17:29:20, restored at 17:29:45.9:
    // pending shifted by the 25.9s of downtime.
    let mut r = rule(3600, 0, &[], &[]);
    r.restored = false;
    r.eval(at(17, 29, 40), series(75.0), 0, &opts).unwrap();
    let now = at(17, 29, 45) + 900;
    r.restore(now, &opts, |_| {
        Some(Sample::new(at(17, 29, 20) + 895, (at(17, 28, 10) / 1000) as f64))
    });
    assert!(r.restored);
    assert_eq!(
        r.active_alerts()[0].active_at_ms,
        at(17, 28, 10) + (now - at(17, 29, 20))
    );
    // `for: 10m` with 21s already spent: less than the grace period remains, so it
    // fires a grace period after the restore.
    let mut r = rule(600, 0, &[], &[]);
    r.eval(at(17, 29, 40), series(75.0), 0, &opts).unwrap();
    r.restore(now, &opts, |_| {
        Some(Sample::new(at(17, 29, 20), (at(17, 28, 59) / 1000) as f64))
    });
    assert_eq!(r.active_alerts()[0].active_at_ms, now);
    // Already firing before the restart: the original active time, so it fires next.
    let mut r = rule(600, 0, &[], &[]);
    r.eval(at(17, 29, 40), series(75.0), 0, &opts).unwrap();
    r.restore(now, &opts, |_| {
        Some(Sample::new(at(17, 29, 20), (at(17, 10, 0) / 1000) as f64))
    });
    assert_eq!(r.active_alerts()[0].active_at_ms, at(17, 10, 0));
    // A resolved alert (staleness marker last) and `for` under the grace period are
    // not restored.
    let mut r = rule(600, 0, &[], &[]);
    r.eval(at(17, 29, 40), series(75.0), 0, &opts).unwrap();
    r.restore(now, &opts, |_| Some(Sample::new(at(17, 29, 20), stale_nan())));
    assert_eq!(r.active_alerts()[0].active_at_ms, at(17, 29, 40));
    let mut r = rule(300, 0, &[], &[]);
    r.eval(at(17, 29, 40), series(75.0), 0, &opts).unwrap();
    r.restore(now, &opts, |_| panic!("not looked up"));
    assert!(r.restored);
}
