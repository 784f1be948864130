//! Recording rules over a real store: results stored at the evaluation time, staleness
//! markers when a series stops being produced or its group is removed, the series
//! limit, and the status `/api/v1/rules` reports.

use std::path::Path;
use std::time::Duration;

use prometheus_client::registry::Registry;
use sextant_model::{Labels, MatchOp, Matcher, Sample, is_stale_nan};
use sextant_promql::Engine;
use sextant_rules::{Health, RuleManager, file};
use sextant_store::{AppendRequest, MetricsStore, SeriesSamples, StoreOptions};

fn open(dir: &Path) -> MetricsStore {
    let opts = StoreOptions {
        retention: None,
        ..StoreOptions::new(dir)
    };
    MetricsStore::open(opts, &mut Registry::default()).unwrap()
}

async fn write(store: &MetricsStore, name: &str, instance: &str, t: i64, v: f64) {
    store
        .append(AppendRequest {
            series: vec![SeriesSamples {
                labels: Labels::from_pairs([("__name__", name), ("instance", instance)]).unwrap(),
                samples: vec![Sample::new(t, v)],
            }],
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn recorded(store: &MetricsStore, name: &str) -> Vec<(Labels, Vec<Sample>)> {
    let m = [Matcher::new(MatchOp::Equal, "__name__", name).unwrap()];
    store
        .select(&m, 0, i64::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|s| ((*s.labels).clone(), s.samples))
        .collect()
}

async fn wait_until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn rules(text: &str) -> Vec<sextant_rules::RuleFile> {
    vec![file::parse(text, Path::new("test.rules.yml")).unwrap()]
}

#[tokio::test(flavor = "multi_thread")]
async fn results_staleness_limit_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let now = sextant_model::time::now_ms();
    write(&store, "load", "a", now, 10.0).await;
    write(&store, "load", "b", now, 3.0).await;

    let manager = RuleManager::new(Engine::default(), store.clone(), &mut Registry::default());
    manager
        .apply(
            rules(
                "groups:
  - name: g
    interval: 200ms
    rules:
      - record: load:high
        expr: load > 5
        labels: {tier: hot}
  - name: limited
    interval: 200ms
    limit: 1
    rules:
      - record: load:all
        expr: load
",
            ),
            Duration::from_secs(60),
        )
        .await;

    // The rule's result is stored with its name and extra label.
    wait_until("load:high recorded", async || {
        !recorded(&store, "load:high").await.is_empty()
    })
    .await;
    let got = recorded(&store, "load:high").await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].0,
        Labels::from_pairs([("__name__", "load:high"), ("instance", "a"), ("tier", "hot")]).unwrap()
    );
    assert_eq!(got[0].1[0].v, 10.0);

    // Over the limit: the rule fails and stores nothing.
    wait_until("limited group evaluated", async || {
        manager.groups()[1].rules[0].health == Health::Err
    })
    .await;
    let status = manager.groups();
    assert_eq!(
        status[1].rules[0].last_error.as_deref(),
        Some("exceeded limit of 1 with 2 series")
    );
    assert!(recorded(&store, "load:all").await.is_empty());
    assert_eq!(status[0].rules[0].health, Health::Ok);
    assert_eq!(status[0].rules[0].kind, "recording");
    assert_eq!(status[0].rules[0].query, "load > 5");
    assert!(status[0].last_evaluation_ms.is_some());

    // `a` drops below the threshold: its recorded series gets a staleness marker.
    write(&store, "load", "a", sextant_model::time::now_ms(), 1.0).await;
    wait_until("staleness marker", async || {
        recorded(&store, "load:high")
            .await
            .first()
            .is_some_and(|(_, s)| s.last().is_some_and(|x| is_stale_nan(x.v)))
    })
    .await;

    // Removing the group marks what it last wrote stale at once.
    write(&store, "load", "b", sextant_model::time::now_ms(), 50.0).await;
    wait_until("b recorded", async || recorded(&store, "load:high").await.len() == 2).await;
    manager.apply(Vec::new(), Duration::from_secs(60)).await;
    let after = recorded(&store, "load:high").await;
    let b = after.iter().find(|(l, _)| l.get("instance") == Some("b")).unwrap();
    assert!(is_stale_nan(b.1.last().unwrap().v), "{:?}", b.1);
    assert!(manager.groups().is_empty());
    manager.shutdown().await;
    store.close().await.unwrap();
}
