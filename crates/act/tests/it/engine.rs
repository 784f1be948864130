//! The action engine: policies deciding from SLO cycles and alerts, its guardrails,
//! approvals, the audit log across restarts, and the webhook actuator.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use sextant_act::audit::{ConditionEvidence, WindowEvidence};
use sextant_act::{
    ActionEngine, ActionSpec, ActionsConfig, AlertInput, Decision, Filter, SloInput, Status, TierInput, TierState,
    WorkloadConfig,
};
use sextant_model::time::now_ms;

use crate::support::{labels, wait_for};

#[derive(Debug, Clone)]
struct Call {
    headers: HeaderMap,
    body: serde_json::Value,
}

/// A webhook receiver; answers the given statuses in turn, then 200.
async fn receiver(mut statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<Call>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    statuses.reverse();
    let answers = Arc::new(Mutex::new(statuses));
    let c = calls.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let c = c.clone();
            let answers = answers.clone();
            async move {
                c.lock().unwrap().push(Call {
                    headers,
                    body: serde_json::from_slice(&body).unwrap(),
                });
                StatusCode::from_u16(answers.lock().unwrap().pop().unwrap_or(200)).unwrap()
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, calls)
}

fn config(yaml: &str) -> (Vec<WorkloadConfig>, ActionsConfig) {
    #[derive(serde::Deserialize)]
    struct Doc {
        workloads: Vec<WorkloadConfig>,
        actions: ActionsConfig,
    }
    let d: Doc = serde_yaml::from_str(yaml).unwrap();
    (d.workloads, d.actions)
}

fn slo(state: TierState, burn: Option<f64>, coverage: f64) -> SloInput {
    let window = |w: &str| WindowEvidence {
        window: w.into(),
        burn_rate: burn,
        coverage,
    };
    SloInput {
        id: "checkout".into(),
        evaluated_ms: Some(now_ms()),
        error: None,
        budget_remaining: Some(0.8),
        windows: vec![window("5m"), window("1h")],
        tiers: vec![TierInput {
            name: "page".into(),
            state,
            conditions: vec![ConditionEvidence {
                long_window: "1h".into(),
                short_window: Some("5m".into()),
                threshold: 14.4,
                long_burn_rate: burn,
                short_burn_rate: burn.map(|b| b * 1.3),
                firing: state == TierState::Firing,
            }],
        }],
        attribution: vec![],
    }
}

const POLICY: &str = r#"
workloads:
  - name: checkout
    replicas: 2
    rate_limit: {max: 10, per: 1h}
    webhook: {url: URL, secret: k3y, retries: 3, backoff: 50ms}
actions:
  policies:
    - name: scale-checkout
      trigger: {slo: checkout, tier: page}
      workload: checkout
      action:
        scale: {min: 2, max: 5, step: 2, cooldown: 1s, stabilization: 1s, scale_down: {after: 1s, step: 1}}
"#;

async fn settle(engine: &ActionEngine) {
    wait_for(10, "no action running", || {
        engine
            .actions(&Filter::default())
            .iter()
            .all(|r| r.status != Status::Running)
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn burn_scales_up_through_the_webhook_unknown_never_acts_and_calm_scales_down() {
    crate::support::crypto();
    let (url, calls) = receiver(vec![503]).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = ActionEngine::open(dir.path().to_owned(), &mut Default::default(), None).unwrap();
    let (w, a) = config(&POLICY.replace("URL", &url));
    engine.apply(w, a).await.unwrap();

    // Firing: scale 2 -> 4 through the webhook, retried once after a 503.
    engine.on_slo_cycle(now_ms(), vec![slo(TierState::Firing, Some(16.2), 1.0)]);
    settle(&engine).await;
    let calls_now = calls.lock().unwrap().clone();
    assert_eq!(calls_now.len(), 2, "a 503 is retried");
    let key = |c: &Call| c.headers["idempotency-key"].to_str().unwrap().to_owned();
    assert_eq!(
        key(&calls_now[0]),
        key(&calls_now[1]),
        "the same idempotency key on every attempt"
    );
    let sig = calls_now[1].headers["x-sextant-signature"].to_str().unwrap();
    assert!(sig.starts_with("t=") && sig.contains(",v1="), "{sig}");
    let body = &calls_now[1].body;
    assert_eq!(body["action"], serde_json::json!({"kind": "scale", "from": 2, "to": 4}));
    assert_eq!(body["policy"], "scale-checkout");
    assert_eq!(body["evidence"]["slo"]["conditions"][0]["long_burn_rate"], 16.2);
    let r = &engine.actions(&Filter::default())[0];
    assert_eq!((r.decision, r.status), (Decision::Act, Status::Succeeded));
    assert_eq!(r.id, key(&calls_now[0]));
    assert_eq!(engine.workload("checkout").unwrap().replicas, Some(4));

    // Still firing within the cooldown: no second action.
    engine.on_slo_cycle(now_ms(), vec![slo(TierState::Firing, Some(16.2), 1.0)]);
    assert_eq!(calls.lock().unwrap().len(), 2);

    // The data goes missing mid-incident: no action, no scale-down, recorded once.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..3 {
        engine.on_slo_cycle(now_ms(), vec![slo(TierState::Unknown, None, 0.2)]);
    }
    settle(&engine).await;
    assert_eq!(calls.lock().unwrap().len(), 2);
    let skips = engine.actions(&Filter {
        decision: Some(Decision::Skip),
        ..Default::default()
    });
    assert_eq!(skips.len(), 2, "the cooldown and the missing data, each recorded once");
    assert!(skips[0].reason.contains("is unknown"), "{}", skips[0].reason);
    assert!(
        skips[1].reason.starts_with("cooldown: last scale "),
        "{}",
        skips[1].reason
    );

    // Burning below 1x with partial coverage: the scale-down clock does not run.
    for _ in 0..3 {
        engine.on_slo_cycle(now_ms(), vec![slo(TierState::Ok, Some(0.2), 0.5)]);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(calls.lock().unwrap().len(), 2);

    // Calm with full coverage for `after`: one step down.
    engine.on_slo_cycle(now_ms(), vec![slo(TierState::Ok, Some(0.2), 1.0)]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    engine.on_slo_cycle(now_ms(), vec![slo(TierState::Ok, Some(0.2), 1.0)]);
    settle(&engine).await;
    let last = calls.lock().unwrap().last().unwrap().body.clone();
    assert_eq!(last["action"], serde_json::json!({"kind": "scale", "from": 4, "to": 3}));
    assert!(last["reason"].as_str().unwrap().contains("burned below 1×"), "{last}");
    engine.shutdown().await;

    // The audit log survives a restart.
    let again = ActionEngine::open(dir.path().to_owned(), &mut Default::default(), None).unwrap();
    let all = again.actions(&Filter::default());
    assert_eq!(
        all.iter().map(|r| r.decision).collect::<Vec<_>>(),
        [Decision::Act, Decision::Skip, Decision::Skip, Decision::Act]
    );
    assert!(all.iter().all(|r| r.status != Status::Running));
    let (w, a) = config(&POLICY.replace("URL", &url));
    again.apply(w, a).await.unwrap();
    assert_eq!(
        again.workload("checkout").unwrap().replicas,
        Some(3),
        "the count from the last scale"
    );
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_approval_rejection_rate_limit_and_annotations() {
    crate::support::crypto();
    let (url, calls) = receiver(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = ActionEngine::open(dir.path().to_owned(), &mut Default::default(), None).unwrap();
    let yaml = POLICY.replace("URL", &url).replace(
        "      workload: checkout\n      action:",
        "      workload: checkout\n      dry_run: true\n      action:",
    );
    let (w, a) = config(&yaml);
    engine.apply(w.clone(), a).await.unwrap();
    engine.on_slo_cycle(now_ms(), vec![slo(TierState::Firing, Some(20.0), 1.0)]);
    settle(&engine).await;
    let r = &engine.actions(&Filter::default())[0];
    assert_eq!(
        (r.decision, r.status, r.dry_run),
        (Decision::DryRun, Status::None, true)
    );
    assert!(
        r.sentence()
            .starts_with("would have scaled checkout from 2 to 4 replicas at "),
        "{}",
        r.sentence()
    );
    assert!(calls.lock().unwrap().is_empty(), "a dry run does nothing");

    // Approval parks the action; approving runs it.
    let yaml = POLICY.replace("URL", &url).replace(
        "      workload: checkout\n      action:",
        "      workload: checkout\n      approval: required\n      action:",
    );
    let (w, a) = config(&yaml);
    engine.apply(w, a).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    engine.on_slo_cycle(now_ms(), vec![slo(TierState::Firing, Some(20.0), 1.0)]);
    let parked = engine.actions(&Filter {
        status: Some(Status::Pending),
        ..Default::default()
    });
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].decision, Decision::AwaitingApproval);
    // While it waits, no second request piles up.
    engine.on_slo_cycle(now_ms(), vec![slo(TierState::Firing, Some(20.0), 1.0)]);
    assert_eq!(engine.actions(&Filter::default()).len(), 2);
    assert!(calls.lock().unwrap().is_empty());
    let approved = engine.approve(&parked[0].id, "alice", "go").unwrap();
    assert_eq!(
        (approved.decision, approved.approved_by.as_deref()),
        (Decision::Act, Some("alice"))
    );
    settle(&engine).await;
    assert_eq!(calls.lock().unwrap().len(), 1);
    assert_eq!(engine.action(&parked[0].id).unwrap().status, Status::Succeeded);
    assert!(matches!(
        engine.approve(&parked[0].id, "bob", ""),
        Err(sextant_act::ApprovalError::NotPending(_))
    ));

    // A rejected one never runs.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    engine.on_slo_cycle(now_ms(), vec![slo(TierState::Firing, Some(20.0), 1.0)]);
    let parked = engine.actions(&Filter {
        status: Some(Status::Pending),
        ..Default::default()
    });
    assert_eq!(parked[0].action, Some(ActionSpec::Scale { from: 4, to: 5 }));
    let rejected = engine.reject(&parked[0].id, "bob", "not now").unwrap();
    assert_eq!(rejected.status, Status::Rejected);
    assert_eq!(calls.lock().unwrap().len(), 1);

    // The alert the tier sends carries what was done.
    let mut alerts = vec![sextant_model::PostableAlert {
        labels: sextant_model::Labels::from_pairs(labels(&[
            ("alertname", "X"),
            ("sloth_id", "checkout"),
            ("tier", "page"),
        ]))
        .unwrap(),
        annotations: Default::default(),
        starts_at_ms: Some(0),
        ends_at_ms: None,
        generator_url: String::new(),
    }];
    engine.annotate(&mut alerts);
    let note = &alerts[0].annotations["sextant_actions"];
    assert!(note.contains("scaled checkout from 2 to 4 replicas at "), "{note}");
    assert!(note.contains("because page tier burn 1h 20.0×, 5m 26.0×"), "{note}");
    assert!(note.contains("(rejected)"), "{note}");

    // A policy rate limit of 1 per hour: the second action is skipped.
    let yaml = POLICY
        .replace("URL", &url)
        .replace(
            "      workload: checkout\n      action:",
            "      workload: checkout\n      rate_limit: {max: 1, per: 1h}\n      action:",
        )
        .replace("name: scale-checkout", "name: limited")
        .replace("max: 5", "max: 8");
    let (w, a) = config(&yaml);
    engine.apply(w, a).await.unwrap();
    engine.on_slo_cycle(now_ms(), vec![slo(TierState::Firing, Some(20.0), 1.0)]);
    settle(&engine).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    engine.on_slo_cycle(now_ms(), vec![slo(TierState::Firing, Some(20.0), 1.0)]);
    let newest = &engine.actions(&Filter::default())[0];
    assert_eq!(newest.decision, Decision::Skip);
    assert_eq!(newest.reason, "rate limit of policy limited: 1 actions in 1h");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_trigger_once_per_episode_and_silences_pause_them() {
    crate::support::crypto();
    let (url, calls) = receiver(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = ActionEngine::open(dir.path().to_owned(), &mut Default::default(), None).unwrap();
    let yaml = format!(
        r#"
workloads:
  - name: db
    exec: {{command: ["true"]}}
actions:
  policies:
    - name: page-dba
      trigger: {{alert: {{alertname: DiskFull, team: db}}}}
      workload: db
      action: {{webhook: {{url: "{url}"}}}}
"#
    );
    let (w, a) = config(&yaml);
    engine.apply(w, a).await.unwrap();
    let alert = |suppressed| AlertInput {
        labels: labels(&[("alertname", "DiskFull"), ("team", "db"), ("instance", "a")]),
        starts_at_ms: now_ms(),
        suppressed,
    };
    engine.on_alerts(now_ms(), &[alert(true)]);
    assert!(calls.lock().unwrap().is_empty(), "a silenced alert does not act");
    assert_eq!(engine.actions(&Filter::default())[0].decision, Decision::Skip);
    engine.on_alerts(now_ms(), &[alert(false)]);
    engine.on_alerts(now_ms(), &[alert(false)]);
    settle(&engine).await;
    assert_eq!(calls.lock().unwrap().len(), 1, "once per firing episode");
    assert_eq!(calls.lock().unwrap()[0].body["evidence"]["alert"]["count"], 1);
    // Resolved, then firing again: a new episode.
    engine.on_alerts(now_ms(), &[]);
    engine.on_alerts(now_ms(), &[alert(false)]);
    settle(&engine).await;
    assert_eq!(calls.lock().unwrap().len(), 2);
    engine.shutdown().await;
}
