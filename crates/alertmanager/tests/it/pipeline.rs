//! Grouping, timers, silences, inhibition, repeats, retries, acknowledgement,
//! escalation and incidents, with a real webhook receiver.

use std::time::{Duration, Instant};

use sextant_alertmanager::matchers::{MatchType, Matcher};
use sextant_alertmanager::silence::Silence;

use crate::support::{Sink, alert, alerts_of, open};

fn config(url: &str, extra_route: &str) -> String {
    format!(
        "route:\n  receiver: web\n  group_by: [alertname]\n  group_wait: 500ms\n  group_interval: 1s\n  repeat_interval: 3s\n{extra_route}\
         receivers:\n- name: web\n  webhook_configs: [{{url: '{url}'}}]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_wait_then_notify_changes_at_intervals_and_repeat() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let am = open(dir.path(), &config(&sink.url, ""));
    let t0 = Instant::now();
    am.post(vec![
        alert(&[("alertname", "A"), ("i", "1")], None),
        alert(&[("alertname", "A"), ("i", "2")], None),
    ])
    .await
    .unwrap();
    let got = sink.wait_for(1, Duration::from_secs(5)).await;
    // Both alerts in one notification, after group_wait.
    assert!(got[0].at - t0 >= Duration::from_millis(450), "{:?}", got[0].at - t0);
    assert_eq!(
        alerts_of(&got[0]),
        [("A1".into(), "firing".into()), ("A2".into(), "firing".into())]
    );
    let body = &got[0].body;
    assert_eq!(body["version"], "4");
    assert_eq!(body["groupKey"], "{}:{alertname=\"A\"}");
    assert_eq!(body["receiver"], "web");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["groupLabels"]["alertname"], "A");
    assert_eq!(body["commonLabels"]["alertname"], "A");
    assert_eq!(body["commonAnnotations"]["summary"], "s");
    assert_eq!(body["externalURL"], "http://am.test:9093");
    assert_eq!(body["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(body["alerts"][0]["fingerprint"].as_str().unwrap().len(), 16);
    // A third alert joins: the next notification comes at the group's interval,
    // not after group_wait.
    am.post(vec![alert(&[("alertname", "A"), ("i", "3")], None)])
        .await
        .unwrap();
    let got = sink.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(got[1].body["alerts"].as_array().unwrap().len(), 3);
    // Unchanged: nothing until repeat_interval has passed since the last send.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.received().len(), 2);
    let got = sink.wait_for(3, Duration::from_secs(6)).await;
    assert!(
        got[2].at - got[1].at >= Duration::from_secs(3),
        "{:?}",
        got[2].at - got[1].at
    );
    // Resolved: sent once, then the group is done.
    am.post(vec![
        alert(&[("alertname", "A"), ("i", "1")], Some(-1)),
        alert(&[("alertname", "A"), ("i", "2")], Some(-1)),
        alert(&[("alertname", "A"), ("i", "3")], Some(-1)),
    ])
    .await
    .unwrap();
    let got = sink.wait_for(4, Duration::from_secs(5)).await;
    assert_eq!(got[3].body["status"], "resolved");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(sink.received().len(), 4, "nothing after the resolution");
    am.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_and_inhibition_mute_and_old_alerts_skip_group_wait() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&sink.url, "")
        + "inhibit_rules:\n- source_matchers: [severity=critical]\n  target_matchers: [severity=warning]\n  equal: [service]\n";
    let am = open(dir.path(), &cfg);
    let now = sextant_model::time::now_ms();
    let silence = Silence {
        id: String::new(),
        matchers: vec![Matcher::new(MatchType::Equal, "alertname", "Silenced").unwrap()],
        starts_at: now,
        ends_at: now + 3_600_000,
        updated_at: now,
        created_by: "me".into(),
        comment: "maintenance".into(),
    };
    let id = am.set_silence(silence).await.unwrap();
    am.post(vec![
        alert(&[("alertname", "Silenced")], None),
        alert(
            &[("alertname", "Crit"), ("severity", "critical"), ("service", "a")],
            None,
        ),
        alert(
            &[("alertname", "Warn"), ("severity", "warning"), ("service", "a")],
            None,
        ),
        alert(
            &[("alertname", "Other"), ("severity", "warning"), ("service", "b")],
            None,
        ),
    ])
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut names: Vec<String> = sink
        .received()
        .iter()
        .flat_map(|r| alerts_of(r).into_iter().map(|(n, _)| n))
        .collect();
    names.sort();
    assert_eq!(names, ["Crit", "Other"], "silenced and inhibited alerts are not sent");
    // The API shows why.
    let statuses = am.alerts();
    let warn = statuses
        .iter()
        .find(|s| s.alert.labels.get("alertname") == Some("Warn"))
        .unwrap();
    assert_eq!(warn.inhibited_by.len(), 1);
    let silenced = statuses
        .iter()
        .find(|s| s.alert.labels.get("alertname") == Some("Silenced"))
        .unwrap();
    assert_eq!(silenced.silenced_by, [id]);
    // An alert that started long ago is sent at once, without group_wait.
    let before = sink.received().len();
    let mut old = alert(&[("alertname", "Old")], None);
    old.starts_at_ms = Some(sextant_model::time::now_ms() - 3_600_000);
    let t0 = Instant::now();
    am.post(vec![old]).await.unwrap();
    let got = sink.wait_for(before + 1, Duration::from_secs(5)).await;
    assert!(
        got[before].at - t0 < Duration::from_millis(400),
        "{:?}",
        got[before].at - t0
    );
    am.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_down_gets_every_notification_once_it_is_back() {
    let sink = Sink::start().await;
    sink.fail_with(503);
    let dir = tempfile::tempdir().unwrap();
    // No repeats within the test: after a long outage the groups' retries come back
    // seconds apart, and a repeat would look like a duplicate.
    let am = open(
        dir.path(),
        &config(&sink.url, "").replace("repeat_interval: 3s", "repeat_interval: 1h"),
    );
    for g in ["A", "B", "C"] {
        am.post(vec![alert(&[("alertname", g)], None)]).await.unwrap();
    }
    // Down for 20 flushes (20s at a 1s group interval): every one retries, fails,
    // and leaves the notification log untouched.
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(sink.received().is_empty());
    let failures = am.receiver_status();
    assert!(failures[0].integrations[0].failed_requests > 0);
    assert!(
        failures[0].integrations[0]
            .last_failure
            .as_ref()
            .unwrap()
            .1
            .contains("503")
    );
    sink.fail_with(200);
    let got = sink.wait_for(3, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let got_after = sink.received();
    assert_eq!(got_after.len(), got.len(), "no duplicates once delivered");
    let mut groups: Vec<String> = got_after
        .iter()
        .map(|r| r.body["groupKey"].as_str().unwrap().to_owned())
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        ["{}:{alertname=\"A\"}", "{}:{alertname=\"B\"}", "{}:{alertname=\"C\"}"]
    );
    am.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_acknowledgement_and_escalation() {
    let oncall = Sink::start().await;
    let secondary = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "route:\n  receiver: oncall\n  group_by: [alertname]\n  group_wait: 200ms\n  group_interval: 500ms\n  repeat_interval: 2s\n  \
         escalate_after: 2s\n  escalate_to: [secondary]\n\
         receivers:\n- name: oncall\n  webhook_configs: [{{url: '{}'}}]\n- name: secondary\n  webhook_configs: [{{url: '{}'}}]\n",
        oncall.url, secondary.url
    );
    let am = open(dir.path(), &cfg);
    am.post(vec![alert(&[("alertname", "Down"), ("severity", "page")], None)])
        .await
        .unwrap();
    oncall.wait_for(1, Duration::from_secs(3)).await;
    let incidents = am.incidents();
    assert_eq!(incidents.len(), 1);
    let inc = &incidents[0];
    assert_eq!(inc.id, "inc-0");
    assert_eq!(inc.severity.as_deref(), Some("page"));
    assert!(inc.ended_at.is_none());
    // Unacknowledged for escalate_after: the secondary receiver is paged.
    secondary.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(am.incident("inc-0").unwrap().escalations.len(), 1);
    // Acknowledged: repeats stop while nothing changes.
    let ack = am.acknowledge("inc-0", "alice", "looking").await.unwrap();
    assert_eq!(ack.by, "alice");
    let n = oncall.received().len();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(oncall.received().len(), n, "no repeats while acknowledged");
    // A new alert in the group voids the acknowledgement.
    am.post(vec![alert(
        &[("alertname", "Down"), ("severity", "page"), ("i", "2")],
        None,
    )])
    .await
    .unwrap();
    oncall.wait_for(n + 1, Duration::from_secs(3)).await;
    // Resolution closes the incident and reaches the escalated receiver too.
    am.post(vec![
        alert(&[("alertname", "Down"), ("severity", "page")], Some(-1)),
        alert(&[("alertname", "Down"), ("severity", "page"), ("i", "2")], Some(-1)),
    ])
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while am.incident("inc-0").unwrap().ended_at.is_none() {
        assert!(Instant::now() < deadline, "incident not closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sec = secondary.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(sec.last().unwrap().body["status"], "resolved");
    am.shutdown().await;
}
