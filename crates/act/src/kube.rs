//! Kubernetes Deployments and StatefulSets, changed exactly as `kubectl` changes
//! them:
//!
//! - scale: `PATCH /apis/apps/v1/namespaces/NS/deployments/NAME/scale` with
//!   `Content-Type: application/merge-patch+json` and `{"spec":{"replicas":N}}`
//!   (`kubectl scale`); the count is read with `GET .../scale` (`autoscaling/v1`
//!   `Scale`);
//! - rolling restart: `PATCH /apis/apps/v1/namespaces/NS/deployments/NAME?fieldManager=kubectl-rollout`
//!   with `Content-Type: application/strategic-merge-patch+json` setting the pod
//!   template's `kubectl.kubernetes.io/restartedAt` annotation (`kubectl rollout
//!   restart`), then waiting as `kubectl rollout status` waits.
//!
//! Credentials come from a kubeconfig (current or named context: server, CA, token
//! or token file, client certificate, basic auth) or, in a pod, from the service
//! account. The RBAC `Role` these calls need ships in `deploy/kubernetes/rbac.yaml`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{KubeKind, KubernetesConfig};

const SERVICE_ACCOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// How requests are authenticated.
#[derive(Debug, Clone)]
enum Credentials {
    None,
    Token(String),
    /// Re-read before every request: projected service-account tokens rotate.
    TokenFile(PathBuf),
    Basic(String, String),
}

/// A client for one API server.
#[derive(Clone)]
pub struct KubeClient {
    http: reqwest::Client,
    server: String,
    credentials: Credentials,
}

/// One workload in the cluster.
#[derive(Clone)]
pub struct KubeWorkload {
    client: KubeClient,
    /// Namespace.
    pub namespace: String,
    /// Deployment or StatefulSet.
    pub kind: KubeKind,
    /// Name.
    pub name: String,
    rollout_timeout: Duration,
}

#[derive(Debug, Default, Deserialize)]
struct Kubeconfig {
    #[serde(default)]
    clusters: Vec<Named<ClusterEntry>>,
    #[serde(default)]
    users: Vec<Named<UserEntry>>,
    #[serde(default)]
    contexts: Vec<Named<ContextEntry>>,
    #[serde(rename = "current-context", default)]
    current_context: String,
}

#[derive(Debug, Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    value: Option<T>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct ClusterEntry {
    #[serde(default)]
    server: String,
    #[serde(rename = "certificate-authority")]
    certificate_authority: Option<PathBuf>,
    #[serde(rename = "certificate-authority-data")]
    certificate_authority_data: Option<String>,
    #[serde(rename = "insecure-skip-tls-verify", default)]
    insecure_skip_tls_verify: bool,
    #[serde(rename = "tls-server-name")]
    tls_server_name: Option<String>,
    #[serde(rename = "proxy-url")]
    proxy_url: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct UserEntry {
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<PathBuf>,
    #[serde(rename = "client-certificate")]
    client_certificate: Option<PathBuf>,
    #[serde(rename = "client-certificate-data")]
    client_certificate_data: Option<String>,
    #[serde(rename = "client-key")]
    client_key: Option<PathBuf>,
    #[serde(rename = "client-key-data")]
    client_key_data: Option<String>,
    username: Option<String>,
    password: Option<String>,
    exec: Option<serde_yaml::Value>,
    #[serde(rename = "auth-provider")]
    auth_provider: Option<serde_yaml::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct ContextEntry {
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    user: String,
    namespace: Option<String>,
}

/// Where the connection settings come from, resolved.
struct Connection {
    server: String,
    ca_pem: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    insecure: bool,
    credentials: Credentials,
    namespace: Option<String>,
}

fn read(path: &Path, base: &Path, what: &str) -> Result<Vec<u8>, String> {
    let p = if path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    };
    std::fs::read(&p).map_err(|e| format!("reading {what} {}: {e}", p.display()))
}

fn decode(data: &str, what: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| format!("{what}: invalid base64: {e}"))
}

/// The kubeconfig files `$KUBECONFIG` names (colon-separated), or `~/.kube/config`.
fn default_kubeconfigs() -> Vec<PathBuf> {
    match std::env::var_os("KUBECONFIG") {
        Some(v) if !v.is_empty() => std::env::split_paths(&v).collect(),
        _ => std::env::var_os("HOME")
            .map(|h| vec![PathBuf::from(h).join(".kube/config")])
            .unwrap_or_default(),
    }
}

/// Reads and merges kubeconfig files as kubectl does: the first file to define a
/// name or the current context wins.
fn load_kubeconfig(paths: &[PathBuf]) -> Result<(Kubeconfig, PathBuf), String> {
    let mut merged = Kubeconfig::default();
    let mut base = None;
    let mut found = false;
    for p in paths {
        let text = match std::fs::read_to_string(p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && paths.len() > 1 => continue,
            Err(e) => return Err(format!("reading kubeconfig {}: {e}", p.display())),
        };
        found = true;
        let k: Kubeconfig = serde_yaml::from_str(&text).map_err(|e| format!("kubeconfig {}: {e}", p.display()))?;
        let dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
        base.get_or_insert(dir);
        if merged.current_context.is_empty() {
            merged.current_context = k.current_context;
        }
        for c in k.clusters {
            if !merged.clusters.iter().any(|x| x.name == c.name) {
                merged.clusters.push(c);
            }
        }
        for u in k.users {
            if !merged.users.iter().any(|x| x.name == u.name) {
                merged.users.push(u);
            }
        }
        for c in k.contexts {
            if !merged.contexts.iter().any(|x| x.name == c.name) {
                merged.contexts.push(c);
            }
        }
    }
    if !found {
        return Err(format!(
            "no kubeconfig found (looked at {})",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok((merged, base.unwrap_or_default()))
}

fn from_kubeconfig(paths: &[PathBuf], context: Option<&str>) -> Result<Connection, String> {
    let (k, base) = load_kubeconfig(paths)?;
    let name = context.unwrap_or(&k.current_context);
    if name.is_empty() {
        return Err("the kubeconfig has no current-context; set `context`".into());
    }
    let ctx = k
        .contexts
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.value.clone())
        .ok_or_else(|| format!("kubeconfig has no context {name:?}"))?;
    let cluster = k
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.value.clone())
        .ok_or_else(|| format!("kubeconfig context {name:?} names unknown cluster {:?}", ctx.cluster))?;
    let user = if ctx.user.is_empty() {
        UserEntry::default()
    } else {
        k.users
            .iter()
            .find(|u| u.name == ctx.user)
            .and_then(|u| u.value.clone())
            .ok_or_else(|| format!("kubeconfig context {name:?} names unknown user {:?}", ctx.user))?
    };
    if cluster.tls_server_name.is_some() {
        return Err("kubeconfig tls-server-name is not supported".into());
    }
    if cluster.proxy_url.is_some() {
        return Err("kubeconfig proxy-url is not supported".into());
    }
    if user.exec.is_some() || user.auth_provider.is_some() {
        return Err(format!(
            "kubeconfig user {:?} uses an exec or auth-provider plugin, which Sextant does not run; use a token, token file or client certificate",
            ctx.user
        ));
    }
    let ca_pem = match (&cluster.certificate_authority_data, &cluster.certificate_authority) {
        (Some(d), _) => Some(decode(d, "certificate-authority-data")?),
        (None, Some(p)) => Some(read(p, &base, "certificate-authority")?),
        (None, None) => None,
    };
    let cert = match (&user.client_certificate_data, &user.client_certificate) {
        (Some(d), _) => Some(decode(d, "client-certificate-data")?),
        (None, Some(p)) => Some(read(p, &base, "client-certificate")?),
        (None, None) => None,
    };
    let key = match (&user.client_key_data, &user.client_key) {
        (Some(d), _) => Some(decode(d, "client-key-data")?),
        (None, Some(p)) => Some(read(p, &base, "client-key")?),
        (None, None) => None,
    };
    let identity = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err("kubeconfig user has a client certificate without a key, or a key without one".into()),
    };
    let credentials = match (&user.token, &user.token_file, &user.username) {
        (Some(t), _, _) => Credentials::Token(t.clone()),
        (None, Some(f), _) => Credentials::TokenFile(if f.is_absolute() { f.clone() } else { base.join(f) }),
        (None, None, Some(u)) => Credentials::Basic(u.clone(), user.password.clone().unwrap_or_default()),
        _ => Credentials::None,
    };
    Ok(Connection {
        server: cluster.server.trim_end_matches('/').to_owned(),
        ca_pem,
        identity,
        insecure: cluster.insecure_skip_tls_verify,
        credentials,
        namespace: ctx.namespace,
    })
}

fn in_cluster() -> Result<Connection, String> {
    let host = std::env::var("KUBERNETES_SERVICE_HOST")
        .map_err(|_| "in_cluster: KUBERNETES_SERVICE_HOST is not set (not running in a pod?)".to_owned())?;
    let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    let dir = Path::new(SERVICE_ACCOUNT);
    let ca =
        std::fs::read(dir.join("ca.crt")).map_err(|e| format!("in_cluster: reading the service account CA: {e}"))?;
    let namespace = std::fs::read_to_string(dir.join("namespace"))
        .ok()
        .map(|s| s.trim().to_owned());
    Ok(Connection {
        server: format!("https://{host}:{port}"),
        ca_pem: Some(ca),
        identity: None,
        insecure: false,
        credentials: Credentials::TokenFile(dir.join("token")),
        namespace,
    })
}

#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_config(c: &Connection) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if c.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        match &c.ca_pem {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| format!("cluster CA: {e}"))?;
                    roots.add(cert).map_err(|e| format!("cluster CA: {e}"))?;
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match &c.identity {
        Some((cert, key)) => {
            let certs = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("client certificate: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("client key: {e}"))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("client certificate: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A Kubernetes API error: the `Status` object's message when there is one.
fn api_error(status: reqwest::StatusCode, body: &str) -> String {
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(300).collect());
    format!("Kubernetes API answered {status}: {}", message.trim())
}

impl KubeClient {
    fn new(c: &Connection) -> Result<Self, String> {
        if !(c.server.starts_with("https://") || c.server.starts_with("http://")) {
            return Err(format!("Kubernetes server {:?} must be an http(s) URL", c.server));
        }
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config(c)?)
            .user_agent(concat!("sextant/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            http,
            server: c.server.clone(),
            credentials: c.credentials.clone(),
        })
    }

    async fn send(&self, r: reqwest::RequestBuilder) -> Result<Value, String> {
        let r = match &self.credentials {
            Credentials::None => r,
            Credentials::Token(t) => r.bearer_auth(t),
            Credentials::TokenFile(f) => {
                let t = tokio::fs::read_to_string(f)
                    .await
                    .map_err(|e| format!("reading token file {}: {e}", f.display()))?;
                r.bearer_auth(t.trim())
            }
            Credentials::Basic(u, p) => r.basic_auth(u, Some(p)),
        };
        let resp = r
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("Kubernetes API: {e}"))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| format!("Kubernetes API: {e}"))?;
        if !status.is_success() {
            return Err(api_error(status, &body));
        }
        serde_json::from_str(&body).map_err(|e| format!("Kubernetes API answered unreadable JSON: {e}"))
    }
}

impl KubeWorkload {
    /// Connects as the config says (nothing is sent until the first call).
    pub fn new(cfg: &KubernetesConfig) -> Result<Self, String> {
        let conn = if cfg.in_cluster {
            in_cluster()?
        } else {
            let paths = match &cfg.kubeconfig {
                Some(p) => vec![p.clone()],
                None => default_kubeconfigs(),
            };
            from_kubeconfig(&paths, cfg.context.as_deref())?
        };
        let namespace = cfg
            .namespace
            .clone()
            .or_else(|| conn.namespace.clone())
            .unwrap_or_else(|| "default".into());
        Ok(Self {
            client: KubeClient::new(&conn)?,
            namespace,
            kind: cfg.kind,
            name: cfg.name.clone(),
            rollout_timeout: cfg.rollout_timeout.0,
        })
    }

    fn path(&self) -> String {
        format!(
            "{}/apis/apps/v1/namespaces/{}/{}/{}",
            self.client.server,
            self.namespace,
            self.kind.resource(),
            self.name
        )
    }

    /// `kind/namespace/name`, for messages.
    pub fn describe(&self) -> String {
        format!("{}/{} in {}", self.kind.resource(), self.name, self.namespace)
    }

    /// The desired replica count (`spec.replicas` of the `Scale` subresource).
    pub async fn replicas(&self) -> Result<u32, String> {
        let v = self
            .client
            .send(self.client.http.get(format!("{}/scale", self.path())))
            .await?;
        v["spec"]["replicas"]
            .as_u64()
            .map(|n| n as u32)
            .ok_or_else(|| "the Scale has no spec.replicas".to_owned())
    }

    /// Sets the replica count as `kubectl scale` does.
    pub async fn scale(&self, replicas: u32) -> Result<String, String> {
        let body = serde_json::to_vec(&json!({"spec": {"replicas": replicas}})).expect("serializes");
        let v = self
            .client
            .send(
                self.client
                    .http
                    .patch(format!("{}/scale", self.path()))
                    .header("Content-Type", "application/merge-patch+json")
                    .body(body),
            )
            .await?;
        Ok(format!(
            "{} scaled to {} (Scale spec.replicas {})",
            self.describe(),
            replicas,
            v["spec"]["replicas"]
        ))
    }

    /// Restarts as `kubectl rollout restart` does, then waits as `kubectl rollout
    /// status` does until every replica runs the new template.
    pub async fn restart(&self, now_ms: i64) -> Result<String, String> {
        let at = restarted_at(now_ms);
        let body = serde_json::to_vec(&json!({
            "spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": at}}}}
        }))
        .expect("serializes");
        let patched = self
            .client
            .send(
                self.client
                    .http
                    .patch(format!("{}?fieldManager=kubectl-rollout", self.path()))
                    .header("Content-Type", "application/strategic-merge-patch+json")
                    .body(body),
            )
            .await?;
        let generation = patched["metadata"]["generation"].as_i64().unwrap_or(0);
        let started = Instant::now();
        loop {
            let v = self.client.send(self.client.http.get(self.path())).await?;
            match rollout_done(self.kind, &v, generation) {
                Ok(true) => {
                    return Ok(format!(
                        "{} restarted (restartedAt {at}) and rolled out in {:.0}s",
                        self.describe(),
                        started.elapsed().as_secs_f64()
                    ));
                }
                Ok(false) => {}
                Err(e) => return Err(e),
            }
            if started.elapsed() > self.rollout_timeout {
                return Err(format!(
                    "{} restart patched (restartedAt {at}) but the rollout did not finish within {}",
                    self.describe(),
                    sextant_model::time::format_duration(self.rollout_timeout)
                ));
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

/// `kubectl.kubernetes.io/restartedAt`'s value: RFC 3339 to the second (kubectl
/// writes local time; Sextant writes UTC).
pub fn restarted_at(now_ms: i64) -> String {
    let s = sextant_model::time::format_rfc3339(now_ms);
    format!("{}Z", &s[..19])
}

/// Whether the rollout is complete, by `kubectl rollout status`' rules.
fn rollout_done(kind: KubeKind, v: &Value, generation: i64) -> Result<bool, String> {
    let status = &v["status"];
    let observed = status["observedGeneration"].as_i64().unwrap_or(0);
    if observed < generation.max(v["metadata"]["generation"].as_i64().unwrap_or(0)) {
        return Ok(false);
    }
    let want = v["spec"]["replicas"].as_i64().unwrap_or(1);
    let n = |k: &str| status[k].as_i64().unwrap_or(0);
    match kind {
        KubeKind::Deployment => {
            if let Some(conds) = status["conditions"].as_array()
                && conds
                    .iter()
                    .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded")
            {
                return Err(format!(
                    "deployment {:?} exceeded its progress deadline",
                    v["metadata"]["name"].as_str().unwrap_or_default()
                ));
            }
            Ok(n("updatedReplicas") >= want
                && n("replicas") <= n("updatedReplicas")
                && n("availableReplicas") >= n("updatedReplicas"))
        }
        KubeKind::StatefulSet => {
            let revisions_match =
                status["updateRevision"].is_null() || status["currentRevision"] == status["updateRevision"];
            Ok(n("readyReplicas") >= want && (n("updatedReplicas") >= want || revisions_match))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_contexts_users_and_relative_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "CA").unwrap();
        let cfg = dir.path().join("config");
        std::fs::write(
            &cfg,
            r#"apiVersion: v1
kind: Config
preferences: {}
clusters:
- name: prod
  cluster: {server: "https://10.0.0.1:6443/", certificate-authority: ca.pem}
- name: dev
  cluster: {server: "https://dev:6443", insecure-skip-tls-verify: true}
users:
- name: bot
  user: {token: abc}
- name: dev
  user: {tokenFile: token}
- name: plugin
  user: {exec: {command: aws}}
contexts:
- name: prod
  context: {cluster: prod, user: bot, namespace: shop}
- name: dev
  context: {cluster: dev, user: dev}
- name: eks
  context: {cluster: prod, user: plugin}
current-context: prod
"#,
        )
        .unwrap();
        let c = from_kubeconfig(std::slice::from_ref(&cfg), None).unwrap();
        assert_eq!(c.server, "https://10.0.0.1:6443");
        assert_eq!(c.ca_pem.as_deref(), Some(&b"CA"[..]));
        assert!(matches!(c.credentials, Credentials::Token(ref t) if t == "abc"));
        assert_eq!(c.namespace.as_deref(), Some("shop"));
        let d = from_kubeconfig(std::slice::from_ref(&cfg), Some("dev")).unwrap();
        assert!(d.insecure);
        assert!(matches!(d.credentials, Credentials::TokenFile(ref p) if p == &dir.path().join("token")));
        let e = from_kubeconfig(std::slice::from_ref(&cfg), Some("eks")).err().unwrap();
        assert!(e.contains("exec or auth-provider plugin"), "{e}");
        let e = from_kubeconfig(&[cfg], Some("nope")).err().unwrap();
        assert_eq!(e, "kubeconfig has no context \"nope\"");
    }

    #[test]
    fn rollout_status_rules() {
        let dep = |gen_: i64, obs: i64, upd: i64, rep: i64, avail: i64| {
            json!({"metadata": {"generation": gen_, "name": "web"}, "spec": {"replicas": 3},
                   "status": {"observedGeneration": obs, "updatedReplicas": upd, "replicas": rep, "availableReplicas": avail}})
        };
        assert!(!rollout_done(KubeKind::Deployment, &dep(4, 3, 3, 3, 3), 4).unwrap());
        assert!(!rollout_done(KubeKind::Deployment, &dep(4, 4, 2, 4, 3), 4).unwrap());
        assert!(!rollout_done(KubeKind::Deployment, &dep(4, 4, 3, 4, 3), 4).unwrap());
        assert!(rollout_done(KubeKind::Deployment, &dep(4, 4, 3, 3, 3), 4).unwrap());
        assert_eq!(restarted_at(1_764_961_067_123), "2025-12-05T18:57:47Z");
    }
}
