//! The process supervisor with real child processes and its proxy.

use std::collections::BTreeSet;
use std::time::Duration;

use sextant_act::audit::{ConditionEvidence, SloEvidence};
use sextant_act::proxy::{self, ProxyMetrics};
use sextant_act::supervisor::{Phase, Supervisor, SupervisorEvent};
use tokio::sync::mpsc;

use crate::support::{free_port, process_config, service_script, wait_for};

fn ready(s: &Supervisor) -> u32 {
    s.status().ready
}

async fn get_json(url: &str) -> serde_json::Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_proxy_sigkill_restart_and_scale_with_drain() {
    crate::support::crypto();
    let dir = tempfile::tempdir().unwrap();
    let script = service_script(dir.path());
    let (tx, _rx) = mpsc::unbounded_channel();
    let targets = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let t2 = targets.clone();
    let sup = Supervisor::start(
        "web",
        process_config(&script, 2),
        dir.path().join("state"),
        tx,
        Some(std::sync::Arc::new(move |_: &str, t| *t2.lock().unwrap() = t)),
    )
    .unwrap();
    wait_for(20, "2 ready replicas", || (ready(&sup) == 2).then_some(())).await;
    // Both replicas are scrape targets with their labels.
    let t = targets.lock().unwrap().clone();
    assert_eq!(t.len(), 2);
    assert!(
        t.iter()
            .all(|l| l["workload"] == "web" && l["__metrics_path__"] == "/metrics")
    );

    let port = free_port();
    let p = proxy::start(
        &format!("127.0.0.1:{port}"),
        "web",
        sup.backends(),
        Duration::from_secs(10),
        ProxyMetrics::default(),
    )
    .await
    .unwrap();
    let mut seen = BTreeSet::new();
    for _ in 0..4 {
        seen.insert(
            get_json(&format!("http://127.0.0.1:{port}/")).await["replica"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(seen.len(), 2, "round robin reaches both replicas: {seen:?}");

    // SIGKILL one replica: it is restarted and the restart counted.
    let victim = sup.status().replicas[0].clone();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim.pid.unwrap() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let back = wait_for(20, "the killed replica back and ready", || {
        let r = sup
            .status()
            .replicas
            .into_iter()
            .find(|r| r.replica == victim.replica)?;
        (r.phase == Phase::Ready && r.pid.is_some() && r.pid != victim.pid).then_some(r)
    })
    .await;
    assert_eq!(back.restarts, 1);
    assert_eq!(sup.status().restarts, 1);
    assert!(back.last_exit.unwrap().contains("signal 9"), "exit described");

    // Scale up: new replicas are waited for.
    let msg = sup.scale(3).await.unwrap();
    assert!(msg.contains("scaled from 2 to 3 replicas; all ready"), "{msg}");
    assert_eq!(ready(&sup), 3);

    // Scale down while slow requests are in flight on every replica: they finish.
    let slow: Vec<_> = (0..3)
        .map(|_| {
            let url = format!("http://127.0.0.1:{port}/slow?s=1");
            tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status().as_u16()) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let msg = sup.scale(1).await.unwrap();
    assert!(msg.contains("scaled from 3 to 1 replicas"), "{msg}");
    for s in slow {
        assert_eq!(s.await.unwrap().unwrap(), 200, "drained, not cut off");
    }
    assert_eq!(sup.status().replicas.len(), 1);
    assert_eq!(targets.lock().unwrap().len(), 1);
    // The proxy only uses what is left.
    assert_eq!(
        reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .unwrap()
            .status(),
        200
    );

    let pids: Vec<u32> = sup.status().replicas.iter().filter_map(|r| r.pid).collect();
    sup.shutdown().await;
    p.stop().await;
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "replica {pid} stopped"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_rollout_keeps_old_replicas_good_one_replaces_them() {
    crate::support::crypto();
    let dir = tempfile::tempdir().unwrap();
    let script = service_script(dir.path());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let cfg = process_config(&script, 2);
    let sup = Supervisor::start("api", cfg.clone(), dir.path().join("state"), tx, None).unwrap();
    wait_for(20, "2 ready replicas", || (ready(&sup) == 2).then_some(())).await;
    let old: Vec<u32> = sup.status().replicas.iter().map(|r| r.pid.unwrap()).collect();
    let old_gen = sup.status().generation;

    // A command that cannot start.
    let mut broken = cfg.clone();
    broken.command = vec!["python3".into(), "-c".into(), "import sys; sys.exit(3)".into()];
    sup.apply(broken);
    let ev = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match rx.recv().await.unwrap() {
                e @ SupervisorEvent::RolledBack { .. } => return e,
                _ => continue,
            }
        }
    })
    .await
    .expect("rolled back");
    let SupervisorEvent::RolledBack { reason, restored, .. } = ev else {
        unreachable!()
    };
    assert!(reason.contains("exited"), "{reason}");
    assert!(restored);
    let st = sup.status();
    assert_eq!(st.rollout.as_ref().unwrap().state, "rolled_back");
    assert_eq!(st.generation, old_gen);
    let now: Vec<u32> = st.replicas.iter().filter_map(|r| r.pid).collect();
    assert_eq!(now, old, "the old replicas were kept, untouched");

    // A good change rolls out one replica at a time.
    let mut good = cfg.clone();
    good.env.insert("TAG".into(), "v2".into());
    sup.apply(good);
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let SupervisorEvent::RolloutSucceeded { .. } = rx.recv().await.unwrap() {
                return;
            }
        }
    })
    .await
    .expect("rolled out");
    let st = sup.status();
    assert_ne!(st.generation, old_gen);
    assert_eq!(st.replicas.len(), 2);
    assert!(
        st.replicas
            .iter()
            .all(|r| r.generation == st.generation && r.phase == Phase::Ready)
    );
    let port = st.replicas[0].port;
    assert_eq!(get_json(&format!("http://127.0.0.1:{port}/")).await["tag"], "v2");
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rollout_rolls_back_when_a_gate_tier_fires() {
    crate::support::crypto();
    let dir = tempfile::tempdir().unwrap();
    let script = service_script(dir.path());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut cfg = process_config(&script, 2);
    cfg.rollout.pause = sextant_model::time::PromDuration(Duration::from_secs(5));
    let sup = Supervisor::start("gated", cfg.clone(), dir.path().join("state"), tx, None).unwrap();
    wait_for(20, "2 ready replicas", || (ready(&sup) == 2).then_some(())).await;
    let old_gen = sup.status().generation;
    let mut next = cfg.clone();
    next.env.insert("TAG".into(), "canary".into());
    sup.apply(next);
    // Once the first new replica serves, the SLO's page tier fires.
    wait_for(20, "a new replica ready", || {
        sup.status()
            .replicas
            .iter()
            .any(|r| r.generation != old_gen && r.phase == Phase::Ready)
            .then_some(())
    })
    .await;
    sup.set_gate(vec![SloEvidence {
        slo: "gated-availability".into(),
        tier: "page".into(),
        state: "firing".into(),
        conditions: vec![ConditionEvidence {
            long_window: "1h".into(),
            short_window: Some("5m".into()),
            threshold: 14.4,
            long_burn_rate: Some(20.0),
            short_burn_rate: Some(30.0),
            firing: true,
        }],
        windows: vec![],
        budget_remaining: Some(0.9),
        attribution: vec![],
        evaluated_at: None,
    }]);
    let ev = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let e @ SupervisorEvent::RolledBack { .. } = rx.recv().await.unwrap() {
                return e;
            }
        }
    })
    .await
    .expect("rolled back");
    let SupervisorEvent::RolledBack {
        reason,
        evidence,
        restored,
        ..
    } = ev
    else {
        unreachable!()
    };
    assert_eq!(reason, "SLO gated-availability tier page fired during the rollout");
    assert_eq!(evidence.unwrap().slo, "gated-availability");
    assert!(restored);
    let st = sup.status();
    assert!(
        st.replicas.iter().all(|r| r.generation == old_gen),
        "only the old generation runs"
    );
    assert_eq!(st.ready, 2);
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_that_keeps_failing_is_left_in_a_crash_loop() {
    crate::support::crypto();
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let cfg: sextant_act::config::ProcessConfig = serde_yaml::from_str(
        "command: [sh, -c, 'echo boom >&2; exit 7']\nreplicas: 1\nrestart: {backoff: 20ms, max_backoff: 100ms, crash_loop_limit: 3}\n",
    )
    .unwrap();
    let sup = Supervisor::start("flaky", cfg, dir.path().join("state"), tx, None).unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ev,
        SupervisorEvent::CrashLoop {
            workload: "flaky".into(),
            replica: 0,
            failures: 4,
            last_exit: "exit status 7".into(),
        }
    );
    let r = &sup.status().replicas[0];
    assert_eq!((r.phase, r.restarts), (Phase::CrashLoop, 3));
    sup.shutdown().await;
}
