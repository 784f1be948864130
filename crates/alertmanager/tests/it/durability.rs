//! State survives a crash: what was acknowledged is on disk before the call
//! returns, so a router opened again on the same directory (nothing shut down, no
//! checkpoint) still holds its alerts and silences, does not repeat what it sent
//! before `repeat_interval`, and sends a resolution that fell due while it was down.

use std::time::Duration;

use sextant_alertmanager::matchers::{MatchType, Matcher};
use sextant_alertmanager::silence::Silence;

use crate::support::{Sink, alert, alerts_of, open};

fn config(url: &str) -> String {
    format!(
        "route:\n  receiver: web\n  group_by: [alertname]\n  group_wait: 200ms\n  group_interval: 500ms\n  repeat_interval: 1h\n\
         receivers:\n- name: web\n  webhook_configs: [{{url: '{url}'}}]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loses_nothing_and_sends_nothing_twice() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let now = sextant_model::time::now_ms();
    {
        let am = open(dir.path(), &config(&sink.url));
        am.post(vec![alert(&[("alertname", "Firing")], None)]).await.unwrap();
        // Ends in 2s: its resolution falls due while the router is down.
        am.post(vec![alert(&[("alertname", "Ending")], Some(2_000))])
            .await
            .unwrap();
        am.set_silence(Silence {
            id: String::new(),
            matchers: vec![Matcher::new(MatchType::Equal, "alertname", "Quiet").unwrap()],
            starts_at: now,
            ends_at: now + 3_600_000,
            updated_at: now,
            created_by: "me".into(),
            comment: "c".into(),
        })
        .await
        .unwrap();
        sink.wait_for(2, Duration::from_secs(3)).await;
        // Stopping writes nothing (no checkpoint, no flush), so what is on disk is
        // what a crash leaves; the binary's kill -9 test covers a real crash.
        am.shutdown().await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = sink.received().len();
    assert_eq!(before, 2);
    let am = open(dir.path(), &config(&sink.url));
    assert_eq!(am.silences().len(), 1, "silences survive");
    let held: Vec<String> = am
        .alerts()
        .iter()
        .map(|s| s.alert.labels.get("alertname").unwrap().to_owned())
        .collect();
    assert_eq!(held, ["Firing"], "firing alerts survive; the ended one is resolved");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = sink.received();
    let new: Vec<_> = after[before..].iter().flat_map(alerts_of).collect();
    assert_eq!(
        new,
        [("Ending".to_owned(), "resolved".to_owned())],
        "only the resolution that fell due"
    );
    am.shutdown().await;
}
