//! A Kubernetes API server stand-in (a real one cannot run here): HTTPS with a
//! test CA, bearer-token and client-certificate authentication, the discovery
//! documents `kubectl` reads, and Deployments and StatefulSets in `apps/v1` with
//! their `Scale` subresource. It checks every request against the API's documented
//! shapes (method, path, query, content type, credentials, body) and answers as the
//! API server does, `Status` objects included, so the same server can be driven by
//! the real `kubectl` (proving it faithful) and by Sextant.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub content_type: Option<String>,
    /// `bearer:<token>`, `cert`, or `none`.
    pub auth: String,
    pub user_agent: String,
    pub body: Option<Value>,
    pub status: u16,
}

/// Files of a test PKI made with `openssl`.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1, and a client certificate.
pub fn make_pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(d.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    openssl(
        d,
        &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key"],
    );
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=fake-kube-ca",
        ],
    );
    for who in ["server", "client"] {
        openssl(
            d,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                &format!("{who}.ec"),
            ],
        );
        // PKCS#8, which both rustls and kubectl read.
        openssl(
            d,
            &[
                "pkcs8",
                "-topk8",
                "-nocrypt",
                "-in",
                &format!("{who}.ec"),
                "-out",
                &format!("{who}.key"),
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-new",
                "-key",
                &format!("{who}.key"),
                "-out",
                &format!("{who}.csr"),
                "-subj",
                &format!("/CN={who}/O=system:masters"),
            ],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{who}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{who}.crt"),
                "-days",
                "2",
                "-extfile",
                &format!("{who}.ext"),
            ],
        );
    }
    Pki { dir }
}

/// Who is calling, from the TLS handshake.
#[derive(Clone, Debug)]
pub struct Peer {
    pub client_cert: bool,
}

pub struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, _)) = self.tcp.accept().await else {
                continue;
            };
            match self.acceptor.accept(tcp).await {
                Ok(tls) => {
                    let client_cert = tls.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty());
                    return (tls, Peer { client_cert });
                }
                Err(_) => continue,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(Peer { client_cert: false })
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// Namespace, resource, name.
type Key = (String, String, String);
type Objects = Arc<Mutex<BTreeMap<Key, Object>>>;

struct Object {
    kind: &'static str,
    value: Value,
}

pub struct FakeKube {
    pub addr: SocketAddr,
    pub token: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    objects: Objects,
    /// GETs of an object after a template change before its rollout completes.
    rollout_lag: Arc<Mutex<u32>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct AppState {
    token: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    objects: Objects,
    lag: Arc<Mutex<u32>>,
    pending_lag: Arc<Mutex<BTreeMap<Key, u32>>>,
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code
    });
    (StatusCode::from_u16(code).unwrap(), Json(body)).into_response()
}

impl FakeKube {
    pub async fn start(pki: &Pki, token: &str) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_slice_iter(&pki.read("ca.crt")) {
            roots.add(c.unwrap()).unwrap();
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .allow_unauthenticated()
            .build()
            .unwrap();
        let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&pki.read("server.crt"))
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(&pki.read("server.key")).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let listener = TlsListener {
            tcp,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        };
        let seen = Arc::new(Mutex::new(Vec::new()));
        let objects = Arc::new(Mutex::new(BTreeMap::new()));
        let rollout_lag = Arc::new(Mutex::new(0));
        let state = AppState {
            token: token.to_owned(),
            seen: seen.clone(),
            objects: objects.clone(),
            lag: rollout_lag.clone(),
            pending_lag: Arc::default(),
        };
        let app = Router::new()
            .route("/version", get(version))
            .route("/api", get(api))
            .route("/apis", get(apis))
            .route("/api/v1", get(core_v1))
            .route("/apis/autoscaling/v1", get(autoscaling_v1))
            .route("/apis/apps/v1", get(apps_v1))
            .route(
                "/apis/apps/v1/namespaces/{ns}/{resource}/{name}",
                get(object).patch(patch_object).put(refuse),
            )
            .route(
                "/apis/apps/v1/namespaces/{ns}/{resource}/{name}/scale",
                get(get_scale).patch(patch_scale).put(refuse),
            )
            .fallback(not_found)
            .layer(axum::middleware::from_fn_with_state(state.clone(), authenticate))
            .with_state(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<Peer>())
                .await
                .unwrap();
        });
        Self {
            addr,
            token: token.to_owned(),
            seen,
            objects,
            rollout_lag,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    pub fn add(&self, kind: &'static str, ns: &str, name: &str, replicas: u64) {
        let resource = if kind == "Deployment" {
            "deployments"
        } else {
            "statefulsets"
        };
        let value = json!({
            "apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": name, "namespace": ns, "generation": 1, "resourceVersion": "1", "uid": format!("uid-{name}")},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": name, "image": "example/app:1"}]}}},
            "status": {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas}
        });
        self.objects.lock().unwrap().insert(
            (ns.to_owned(), resource.to_owned(), name.to_owned()),
            Object { kind, value },
        );
    }

    pub fn object(&self, ns: &str, resource: &str, name: &str) -> Value {
        self.objects.lock().unwrap()[&(ns.to_owned(), resource.to_owned(), name.to_owned())]
            .value
            .clone()
    }

    /// Rollouts after a template change complete only after this many reads.
    pub fn set_rollout_lag(&self, reads: u32) {
        *self.rollout_lag.lock().unwrap() = reads;
    }

    pub fn take_seen(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    /// A kubeconfig for this server with the token (or, with `cert`, the client
    /// certificate), the CA inline as kubectl writes it.
    pub fn kubeconfig(&self, pki: &Pki, dir: &Path, cert: bool) -> PathBuf {
        use base64::Engine as _;
        let b64 = |name: &str| base64::engine::general_purpose::STANDARD.encode(pki.read(name));
        let user = if cert {
            format!(
                "{{client-certificate-data: {}, client-key-data: {}}}",
                b64("client.crt"),
                b64("client.key")
            )
        } else {
            format!("{{token: {}}}", self.token)
        };
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"{}\", certificate-authority-data: {}}}\nusers:\n- name: u\n  user: {user}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: u, namespace: shop}}\ncurrent-context: fake\n",
            self.url(),
            b64("ca.crt"),
        );
        let path = dir.join(if cert { "kubeconfig-cert" } else { "kubeconfig" });
        std::fs::write(&path, text).unwrap();
        path
    }
}

async fn authenticate(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let header = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let auth = match (&header, peer.client_cert) {
        (Some(h), _) if h.starts_with("Bearer ") => format!("bearer:{}", &h[7..]),
        (Some(h), _) => format!("other:{h}"),
        (None, true) => "cert".to_owned(),
        (None, false) => "none".to_owned(),
    };
    let ok = auth == format!("bearer:{}", s.token) || auth == "cert";
    let response = if ok {
        next.run(axum::extract::Request::from_parts(
            parts.clone(),
            axum::body::Body::from(bytes.clone()),
        ))
        .await
    } else {
        status(401, "Unauthorized", "Unauthorized")
    };
    s.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        content_type: parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        auth,
        user_agent: parts
            .headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        body: (!bytes.is_empty()).then(|| serde_json::from_slice(&bytes).unwrap_or(Value::Null)),
        status: response.status().as_u16(),
    });
    response
}

async fn version() -> Json<Value> {
    Json(json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0", "platform": "linux/amd64"}))
}

async fn api() -> Json<Value> {
    Json(json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]}))
}

async fn apis() -> Json<Value> {
    let group = |name: &str| {
        json!({"name": name, "versions": [{"groupVersion": format!("{name}/v1"), "version": "v1"}],
                                     "preferredVersion": {"groupVersion": format!("{name}/v1"), "version": "v1"}})
    };
    Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group("apps"), group("autoscaling")]}))
}

async fn core_v1() -> Json<Value> {
    Json(json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace", "verbs": ["get", "list"]}]}))
}

async fn autoscaling_v1() -> Json<Value> {
    Json(
        json!({"kind": "APIResourceList", "groupVersion": "autoscaling/v1", "resources": [
        {"name": "horizontalpodautoscalers", "singularName": "horizontalpodautoscaler", "namespaced": true,
         "kind": "HorizontalPodAutoscaler", "verbs": ["get", "list", "patch"], "shortNames": ["hpa"]}]}),
    )
}

async fn apps_v1() -> Json<Value> {
    let verbs = json!([
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch"
    ]);
    let sub = json!(["get", "patch", "update"]);
    Json(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [
        {"name": "deployments", "singularName": "deployment", "namespaced": true, "kind": "Deployment", "verbs": verbs, "shortNames": ["deploy"], "categories": ["all"]},
        {"name": "deployments/scale", "singularName": "", "namespaced": true, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": sub},
        {"name": "deployments/status", "singularName": "", "namespaced": true, "kind": "Deployment", "verbs": sub},
        {"name": "statefulsets", "singularName": "statefulset", "namespaced": true, "kind": "StatefulSet", "verbs": verbs, "shortNames": ["sts"], "categories": ["all"]},
        {"name": "statefulsets/scale", "singularName": "", "namespaced": true, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": sub},
        {"name": "statefulsets/status", "singularName": "", "namespaced": true, "kind": "StatefulSet", "verbs": sub}]}),
    )
}

async fn not_found(uri: axum::http::Uri) -> Response {
    status(
        404,
        "NotFound",
        &format!("the server could not find the requested resource ({})", uri.path()),
    )
}

async fn refuse() -> Response {
    status(405, "MethodNotAllowed", "the fake API server takes GET and PATCH only")
}

fn group_resource(resource: &str) -> Option<&'static str> {
    match resource {
        "deployments" => Some("deployments.apps"),
        "statefulsets" => Some("statefulsets.apps"),
        _ => None,
    }
}

fn missing(resource: &str, name: &str) -> Response {
    status(
        404,
        "NotFound",
        &format!("{} \"{name}\" not found", group_resource(resource).unwrap_or(resource)),
    )
}

async fn object(
    State(s): State<AppState>,
    UrlPath((ns, resource, name)): UrlPath<(String, String, String)>,
) -> Response {
    let key = (ns, resource.clone(), name.clone());
    let mut objects = s.objects.lock().unwrap();
    let Some(o) = objects.get_mut(&key) else {
        return missing(&resource, &name);
    };
    // A template change rolls out after some reads.
    let mut lag = s.pending_lag.lock().unwrap();
    if let Some(n) = lag.get_mut(&key) {
        if *n == 0 {
            let g = o.value["metadata"]["generation"].clone();
            let r = o.value["spec"]["replicas"].clone();
            let st = &mut o.value["status"];
            st["observedGeneration"] = g;
            for k in ["replicas", "updatedReplicas", "readyReplicas", "availableReplicas"] {
                st[k] = r.clone();
            }
            lag.remove(&key);
        } else {
            *n -= 1;
        }
    }
    Json(o.value.clone()).into_response()
}

fn scale_of(o: &Object) -> Value {
    let v = &o.value;
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
           "metadata": {"name": v["metadata"]["name"], "namespace": v["metadata"]["namespace"], "resourceVersion": v["metadata"]["resourceVersion"]},
           "spec": {"replicas": v["spec"]["replicas"]},
           "status": {"replicas": v["status"]["replicas"], "selector": format!("app={}", v["metadata"]["name"].as_str().unwrap_or_default())}})
}

async fn get_scale(
    State(s): State<AppState>,
    UrlPath((ns, resource, name)): UrlPath<(String, String, String)>,
) -> Response {
    let objects = s.objects.lock().unwrap();
    match objects.get(&(ns, resource.clone(), name.clone())) {
        Some(o) => Json(scale_of(o)).into_response(),
        None => missing(&resource, &name),
    }
}

const PATCH_TYPES: [&str; 4] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

fn unsupported(ct: &str) -> Response {
    status(
        415,
        "UnsupportedMediaType",
        &format!(
            "the body of the request was in an unknown format - accepted media types include: {} (got {ct:?})",
            PATCH_TYPES.join(", ")
        ),
    )
}

/// RFC 7386 merge.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn bump(o: &mut Object) {
    let v = &mut o.value;
    let rv = v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("1")
        .parse::<u64>()
        .unwrap_or(1)
        + 1;
    v["metadata"]["resourceVersion"] = json!(rv.to_string());
}

async fn patch_scale(
    State(s): State<AppState>,
    UrlPath((ns, resource, name)): UrlPath<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if !PATCH_TYPES.contains(&ct.as_str()) {
        return unsupported(&ct);
    }
    if let Some(q) = query
        && q.split('&').any(|kv| {
            !kv.starts_with("fieldManager=") && !kv.starts_with("dryRun=") && !kv.starts_with("fieldValidation=")
        })
    {
        return status(400, "BadRequest", &format!("unknown query parameter in {q:?}"));
    }
    let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
        return status(400, "BadRequest", "error decoding patch: invalid JSON");
    };
    if ct == "application/json-patch+json" || ct == "application/apply-patch+yaml" {
        return status(
            422,
            "Invalid",
            "the fake API server applies merge and strategic merge patches only",
        );
    }
    // A Scale has spec.replicas only to change.
    let keys_ok = patch
        .as_object()
        .is_some_and(|o| o.keys().all(|k| k == "spec" || k == "metadata"))
        && patch["spec"]
            .as_object()
            .is_none_or(|o| o.keys().all(|k| k == "replicas"));
    if !keys_ok {
        return status(
            422,
            "Invalid",
            &format!("Scale.autoscaling \"{name}\" is invalid: only spec.replicas may change"),
        );
    }
    let replicas = &patch["spec"]["replicas"];
    if !replicas.is_u64() {
        return status(
            422,
            "Invalid",
            &format!(
                "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
            ),
        );
    }
    let mut objects = s.objects.lock().unwrap();
    let Some(o) = objects.get_mut(&(ns, resource.clone(), name.clone())) else {
        return missing(&resource, &name);
    };
    o.value["spec"]["replicas"] = replicas.clone();
    for k in ["replicas", "updatedReplicas", "readyReplicas", "availableReplicas"] {
        o.value["status"][k] = replicas.clone();
    }
    bump(o);
    Json(scale_of(o)).into_response()
}

async fn patch_object(
    State(s): State<AppState>,
    method: Method,
    UrlPath((ns, resource, name)): UrlPath<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    assert_eq!(method, Method::PATCH);
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if !PATCH_TYPES.contains(&ct.as_str()) {
        return unsupported(&ct);
    }
    if let Some(q) = &query
        && q.split('&').any(|kv| {
            !kv.starts_with("fieldManager=") && !kv.starts_with("dryRun=") && !kv.starts_with("fieldValidation=")
        })
    {
        return status(400, "BadRequest", &format!("unknown query parameter in {q:?}"));
    }
    let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
        return status(400, "BadRequest", "error decoding patch: invalid JSON");
    };
    if !matches!(
        ct.as_str(),
        "application/strategic-merge-patch+json" | "application/merge-patch+json"
    ) {
        return status(
            422,
            "Invalid",
            "the fake API server applies merge and strategic merge patches only",
        );
    }
    if let Some(at) = patch["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].as_str()
        && sextant_model::time::parse_api_time(at).is_err()
    {
        return status(422, "Invalid", &format!("restartedAt {at:?} is not an RFC 3339 time"));
    }
    let key = (ns, resource.clone(), name.clone());
    let mut objects = s.objects.lock().unwrap();
    let Some(o) = objects.get_mut(&key) else {
        return missing(&resource, &name);
    };
    let before = o.value["spec"]["template"].clone();
    // Maps merge the same way in both patch types; no lists are patched here.
    merge(&mut o.value, &patch);
    bump(o);
    if o.value["spec"]["template"] != before {
        let g = o.value["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
        o.value["metadata"]["generation"] = json!(g);
        let lag = *s.lag.lock().unwrap();
        if lag == 0 {
            let r = o.value["spec"]["replicas"].clone();
            o.value["status"]["observedGeneration"] = json!(g);
            o.value["status"]["updatedReplicas"] = r;
        } else {
            o.value["status"]["updatedReplicas"] = json!(0);
            s.pending_lag.lock().unwrap().insert(key, lag);
        }
    }
    let _ = o.kind;
    Json(o.value.clone()).into_response()
}
