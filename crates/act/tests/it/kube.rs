//! The Kubernetes actuator against the fake API server, and the fake API server
//! against the real `kubectl`: both send the same requests for the same operations.

use std::process::Command;

use serde_json::Value;
use sextant_act::config::{KubeKind, KubernetesConfig};
use sextant_act::kube::KubeWorkload;
use sextant_model::time::PromDuration;

use crate::fake_kube::{FakeKube, Seen, make_pki};

fn kubectl(kubeconfig: &std::path::Path, home: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", home)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .expect("kubectl is installed on this machine");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn workload(kubeconfig: &std::path::Path, kind: KubeKind, name: &str) -> KubeWorkload {
    KubeWorkload::new(&KubernetesConfig {
        kind,
        name: name.into(),
        namespace: None,
        kubeconfig: Some(kubeconfig.to_owned()),
        context: None,
        in_cluster: false,
        rollout_timeout: PromDuration(std::time::Duration::from_secs(20)),
        poll_interval: PromDuration(std::time::Duration::from_secs(15)),
    })
    .unwrap()
}

/// The requests that change something, with the restart time blanked.
/// Method, path, query, content type, body.
type Write = (String, String, Option<String>, Option<String>, Option<Value>);

fn writes(seen: &[Seen]) -> Vec<Write> {
    seen.iter()
        .filter(|s| s.method == "PATCH")
        .map(|s| {
            let mut body = s.body.clone();
            if let Some(b) = body.as_mut()
                && let Some(at) =
                    b.pointer_mut("/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt")
            {
                let t = at.as_str().unwrap();
                assert!(
                    sextant_model::time::parse_api_time(t).is_ok() && t.len() >= 20 && !t.contains('.'),
                    "restartedAt {t} is RFC 3339 to the second"
                );
                *at = Value::String("<time>".into());
            }
            (
                s.method.clone(),
                s.path.clone(),
                s.query.clone(),
                s.content_type.clone(),
                body,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sextant_sends_what_kubectl_sends_and_the_fake_accepts_kubectl() {
    crate::support::crypto();
    let pki = make_pki();
    let kube = FakeKube::start(&pki, "s3cret").await;
    kube.add("Deployment", "shop", "web", 2);
    kube.add("StatefulSet", "shop", "db", 3);
    let dir = tempfile::tempdir().unwrap();
    let kc = kube.kubeconfig(&pki, dir.path(), false);

    // The real kubectl, against the fake.
    assert_eq!(
        kubectl(&kc, dir.path(), &["scale", "deployment/web", "--replicas=4"]).trim(),
        "deployment.apps/web scaled"
    );
    assert_eq!(
        kubectl(&kc, dir.path(), &["scale", "statefulset/db", "--replicas=5"]).trim(),
        "statefulset.apps/db scaled"
    );
    assert_eq!(
        kubectl(&kc, dir.path(), &["rollout", "restart", "deployment/web"]).trim(),
        "deployment.apps/web restarted"
    );
    let by_kubectl = kube.take_seen();
    assert!(
        by_kubectl.iter().all(|s| s.status < 300),
        "the fake accepted every kubectl request: {by_kubectl:#?}"
    );
    assert!(
        by_kubectl.iter().all(|s| s.auth == "bearer:s3cret"),
        "kubectl sent the token"
    );
    assert_eq!(kube.object("shop", "deployments", "web")["spec"]["replicas"], 4);
    assert_eq!(kube.object("shop", "statefulsets", "db")["spec"]["replicas"], 5);
    assert!(
        kube.object("shop", "deployments", "web")["spec"]["template"]["metadata"]["annotations"]
            ["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );

    // Sextant, the same operations.
    let web = workload(&kc, KubeKind::Deployment, "web");
    let db = workload(&kc, KubeKind::StatefulSet, "db");
    assert_eq!(web.replicas().await.unwrap(), 4);
    web.scale(4).await.unwrap();
    db.scale(5).await.unwrap();
    let msg = web.restart(sextant_model::time::now_ms()).await.unwrap();
    assert!(msg.contains("restarted (restartedAt"), "{msg}");
    let by_sextant = kube.take_seen();
    assert!(by_sextant.iter().all(|s| s.status < 300), "{by_sextant:#?}");
    assert!(by_sextant.iter().all(|s| s.auth == "bearer:s3cret"));

    let k = writes(&by_kubectl);
    let s = writes(&by_sextant);
    assert_eq!(k.len(), 3);
    assert_eq!(s, k, "Sextant's writes are kubectl's");
    assert_eq!(
        k[0],
        (
            "PATCH".into(),
            "/apis/apps/v1/namespaces/shop/deployments/web/scale".into(),
            None,
            Some("application/merge-patch+json".into()),
            Some(serde_json::json!({"spec": {"replicas": 4}}))
        )
    );
    assert_eq!(k[2].2.as_deref(), Some("fieldManager=kubectl-rollout"));
    assert_eq!(k[2].3.as_deref(), Some("application/strategic-merge-patch+json"));

    // Every request Sextant made is allowed by the Role it ships.
    let rbac: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
                .join("../../deploy/kubernetes/rbac.yaml"),
        )
        .unwrap(),
    )
    .map(|d| serde::Deserialize::deserialize(d).unwrap())
    .collect();
    let role = rbac.iter().find(|d| d["kind"] == "Role").expect("a Role");
    for s in &by_sextant {
        let parts: Vec<&str> = s.path.trim_start_matches('/').split('/').collect();
        // apis/apps/v1/namespaces/NS/RESOURCE/NAME[/SUB]
        let resource = match parts.get(7) {
            Some(sub) => format!("{}/{sub}", parts[5]),
            None => parts[5].to_owned(),
        };
        let verb = s.method.to_lowercase();
        let allowed = role["rules"].as_sequence().unwrap().iter().any(|r| {
            let has = |k: &str, v: &str| r[k].as_sequence().unwrap().iter().any(|x| x.as_str() == Some(v));
            has("apiGroups", "apps") && has("resources", &resource) && has("verbs", &verb)
        });
        assert!(allowed, "the Role allows {verb} {resource}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn client_certificates_errors_and_waiting_for_the_rollout() {
    crate::support::crypto();
    let pki = make_pki();
    let kube = FakeKube::start(&pki, "s3cret").await;
    kube.add("Deployment", "shop", "web", 3);
    let dir = tempfile::tempdir().unwrap();

    // Client certificate, as kubectl uses it too.
    let kc = kube.kubeconfig(&pki, dir.path(), true);
    assert_eq!(
        kubectl(&kc, dir.path(), &["scale", "deployment/web", "--replicas=2"]).trim(),
        "deployment.apps/web scaled"
    );
    let web = workload(&kc, KubeKind::Deployment, "web");
    web.scale(3).await.unwrap();
    assert!(kube.take_seen().iter().all(|s| s.auth == "cert" && s.status < 300));

    // The rollout completes only after a few reads: restart waits for it.
    kube.set_rollout_lag(2);
    let started = std::time::Instant::now();
    web.restart(sextant_model::time::now_ms()).await.unwrap();
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(3),
        "waited for the rollout"
    );
    let gets = kube
        .take_seen()
        .iter()
        .filter(|s| s.method == "GET" && s.path == "/apis/apps/v1/namespaces/shop/deployments/web")
        .count();
    assert!(gets >= 3, "polled the Deployment {gets} times");

    // A wrong token and a missing object give the API's messages.
    let bad = dir.path().join("bad");
    std::fs::write(
        &bad,
        std::fs::read_to_string(kube.kubeconfig(&pki, dir.path(), false))
            .unwrap()
            .replace("token: s3cret", "token: wrong"),
    )
    .unwrap();
    let e = workload(&bad, KubeKind::Deployment, "web").scale(2).await.unwrap_err();
    assert_eq!(e, "Kubernetes API answered 401 Unauthorized: Unauthorized");
    let e = workload(&kc, KubeKind::Deployment, "nope")
        .replicas()
        .await
        .unwrap_err();
    assert_eq!(
        e,
        "Kubernetes API answered 404 Not Found: deployments.apps \"nope\" not found"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_scales_a_deployment_and_respects_a_change_made_by_hand() {
    crate::support::crypto();
    let pki = make_pki();
    let kube = FakeKube::start(&pki, "s3cret").await;
    kube.add("Deployment", "shop", "web", 2);
    let dir = tempfile::tempdir().unwrap();
    let kc = kube.kubeconfig(&pki, dir.path(), false);
    let yaml = format!(
        r#"
workloads:
  - name: web
    kubernetes: {{kind: Deployment, name: web, kubeconfig: {kc:?}, poll_interval: 200ms}}
actions:
  policies:
    - name: scale-web
      trigger: {{slo: web, tier: page}}
      workload: web
      action: {{scale: {{min: 2, max: 10, step: 2, cooldown: 1s}}}}
"#
    );
    #[derive(serde::Deserialize)]
    struct Doc {
        workloads: Vec<sextant_act::WorkloadConfig>,
        actions: sextant_act::ActionsConfig,
    }
    let d: Doc = serde_yaml::from_str(&yaml).unwrap();
    let engine = sextant_act::ActionEngine::open(dir.path().join("act"), &mut Default::default(), None).unwrap();
    engine.apply(d.workloads, d.actions).await.unwrap();
    crate::support::wait_for(10, "the replica count read", || {
        engine.workload("web").unwrap().replicas
    })
    .await;

    // Someone scales it by hand: recorded and respected, not reverted.
    assert_eq!(
        kubectl(&kc, dir.path(), &["scale", "deployment/web", "--replicas=5"]).trim(),
        "deployment.apps/web scaled"
    );
    let seen = crate::support::wait_for(10, "the manual change observed", || {
        engine
            .actions(&sextant_act::Filter::default())
            .into_iter()
            .find(|r| r.decision == sextant_act::Decision::Observe)
    })
    .await;
    assert_eq!(
        seen.reason,
        "web was scaled from 2 to 5 outside Sextant; respecting it until the next decision"
    );
    assert_eq!(kube.object("shop", "deployments", "web")["spec"]["replicas"], 5);

    // The next decision starts from there.
    let tier = sextant_act::TierInput {
        name: "page".into(),
        state: sextant_act::TierState::Firing,
        conditions: vec![],
    };
    engine.on_slo_cycle(
        sextant_model::time::now_ms(),
        vec![sextant_act::SloInput {
            id: "web".into(),
            evaluated_ms: None,
            error: None,
            budget_remaining: None,
            windows: vec![],
            tiers: vec![tier],
            attribution: vec![],
        }],
    );
    let done = crate::support::wait_for(10, "the scale-up", || {
        engine
            .actions(&sextant_act::Filter {
                kind: Some("scale".into()),
                ..Default::default()
            })
            .into_iter()
            .find(|r| r.status == sextant_act::Status::Succeeded)
    })
    .await;
    assert_eq!(done.action, Some(sextant_act::ActionSpec::Scale { from: 5, to: 7 }));
    assert_eq!(kube.object("shop", "deployments", "web")["spec"]["replicas"], 7);
    engine.shutdown().await;
}
