//! HTTP clients with Prometheus' client settings (its `HTTPClientConfig`): TLS (CA,
//! client certificate, server name, skip-verify, protocol versions), proxy,
//! redirects, HTTP/2, and credentials (basic, `Authorization` header, OAuth 2.0
//! client credentials). Scrape jobs use them, and so do Alertmanager-style
//! receivers, whose `http_config` is the same format.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::RequestBuilder;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::{Authorization, BasicAuth, OAuth2, ProxyUrl, ScrapeConfig, TlsConfig, TlsVersion};

/// An HTTP client and the credentials it sends.
pub struct JobClient {
    /// The client, with the job's TLS, proxy and redirect settings.
    pub http: reqwest::Client,
    auth: Auth,
}

enum Auth {
    None,
    Basic(BasicAuth),
    Header(Authorization),
    OAuth2(Box<OAuth2Source>),
}

/// Client settings, Prometheus' `HTTPClientConfig` fields.
pub struct ClientSettings<'a> {
    /// TLS.
    pub tls: &'a TlsConfig,
    /// Proxy.
    pub proxy: Option<&'a ProxyUrl>,
    /// Follow redirects.
    pub follow_redirects: bool,
    /// Offer HTTP/2.
    pub http2: bool,
    /// Basic authentication.
    pub basic_auth: Option<&'a BasicAuth>,
    /// `Authorization` header.
    pub authorization: Option<&'a Authorization>,
    /// OAuth 2.0 client credentials.
    pub oauth2: Option<&'a OAuth2>,
}

/// Builds a client; fails on settings that cannot work (unreadable CA, invalid
/// client certificate, TLS versions the TLS stack does not have). `what` names the
/// user of the client in errors.
pub fn build(s: ClientSettings<'_>, what: &str) -> Result<JobClient, String> {
    let http = http_client(s.tls, s.proxy, &Default::default(), s.follow_redirects, s.http2)
        .map_err(|e| format!("building HTTP client for {what}: {e}"))?;
    let auth = if let Some(b) = s.basic_auth {
        Auth::Basic(b.clone())
    } else if let Some(a) = s.authorization {
        Auth::Header(a.clone())
    } else if let Some(o) = s.oauth2 {
        let client = http_client(&o.tls_config, o.proxy_url.as_ref(), &Default::default(), true, true)
            .map_err(|e| format!("building OAuth2 client for {what}: {e}"))?;
        Auth::OAuth2(Box::new(OAuth2Source {
            config: o.clone(),
            client,
            token: tokio::sync::Mutex::new(None),
        }))
    } else {
        Auth::None
    };
    Ok(JobClient { http, auth })
}

/// Builds the client for one job (see [`build`]).
pub(crate) fn build_client(cfg: &ScrapeConfig) -> Result<JobClient, String> {
    let job = &cfg.job_name;
    let http = http_client(
        &cfg.tls_config,
        cfg.proxy_url.as_ref(),
        &cfg.proxy_connect_header,
        cfg.follow_redirects,
        cfg.enable_http2,
    )
    .map_err(|e| format!("building HTTP client for job {job:?}: {e}"))?;
    let mut client = build(
        ClientSettings {
            tls: &cfg.tls_config,
            proxy: cfg.proxy_url.as_ref(),
            follow_redirects: cfg.follow_redirects,
            http2: cfg.enable_http2,
            basic_auth: cfg.basic_auth.as_ref(),
            authorization: cfg.authorization.as_ref(),
            oauth2: cfg.oauth2.as_ref(),
        },
        &format!("job {job:?}"),
    )?;
    client.http = http;
    Ok(client)
}

fn http_client(
    tls: &TlsConfig,
    proxy: Option<&ProxyUrl>,
    proxy_headers: &std::collections::BTreeMap<String, Vec<String>>,
    follow_redirects: bool,
    http2: bool,
) -> Result<reqwest::Client, String> {
    let mut rustls = rustls_config(tls)?;
    rustls.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    let mut b = reqwest::Client::builder()
        .use_preconfigured_tls(rustls)
        .user_agent(concat!("Sextant/", env!("CARGO_PKG_VERSION")))
        .redirect(if follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        });
    if !http2 {
        b = b.http1_only();
    }
    match proxy {
        Some(p) => {
            let mut headers = reqwest::header::HeaderMap::new();
            for (k, vs) in proxy_headers {
                let name = reqwest::header::HeaderName::try_from(k.as_str())
                    .map_err(|e| format!("proxy_connect_header {k:?}: {e}"))?;
                for v in vs {
                    let value = reqwest::header::HeaderValue::try_from(v.as_str())
                        .map_err(|e| format!("proxy_connect_header {k:?}: {e}"))?;
                    headers.append(name.clone(), value);
                }
            }
            let proxy = reqwest::Proxy::all(p.0.clone())
                .map_err(|e| format!("proxy_url: {e}"))?
                .headers(headers);
            b = b.proxy(proxy);
        }
        // As Prometheus without proxy_url: no proxy, whatever the environment says.
        None => b = b.no_proxy(),
    }
    b.build().map_err(|e| e.to_string())
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn rustls_config(tls: &TlsConfig) -> Result<rustls::ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    match &tls.ca_file {
        Some(ca) => {
            for cert in
                CertificateDer::pem_file_iter(ca).map_err(|e| format!("reading ca_file {}: {e}", ca.display()))?
            {
                let cert = cert.map_err(|e| format!("reading ca_file {}: {e}", ca.display()))?;
                roots.add(cert).map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&protocol_versions(tls)?)
        .map_err(|e| e.to_string())?;
    let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure_skip_verify {
        Arc::new(NoVerification)
    } else {
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| format!("TLS roots: {e}"))?;
        match &tls.server_name {
            Some(name) => Arc::new(FixedServerName {
                inner,
                name: ServerName::try_from(name.clone()).map_err(|e| format!("invalid server_name {name:?}: {e}"))?,
            }),
            None => inner,
        }
    };
    let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
    let mut config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("reading cert_file {}: {e}", cert.display()))?;
            let key =
                PrivateKeyDer::from_pem_file(key).map_err(|e| format!("reading key_file {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("client certificate: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The versions `min_version`..`max_version` allow, of the two the TLS stack has (1.2
/// and 1.3; a minimum of 1.0 or 1.1 therefore means 1.2).
fn protocol_versions(tls: &TlsConfig) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let min = tls.min_version.unwrap_or(TlsVersion::Tls12);
    let max = tls.max_version.unwrap_or(TlsVersion::Tls13);
    if max < min {
        return Err("tls_config.max_version must be greater than or equal to tls_config.min_version".into());
    }
    let versions: Vec<_> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (min..=max).contains(v))
    .map(|(_, p)| p)
    .collect();
    if versions.is_empty() {
        return Err("TLS 1.0 and 1.1 are not supported: max_version must be TLS12 or TLS13".into());
    }
    Ok(versions)
}

/// Verifies the certificate against `server_name` instead of the address's host.
#[derive(Debug)]
struct FixedServerName {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for FixedServerName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp, now)
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `insecure_skip_verify: true`: accepts any certificate, as the user asked.
#[derive(Debug)]
struct NoVerification;

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
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider().signature_verification_algorithms.supported_schemes()
    }
}

fn read_secret(p: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_owned())
        .map_err(|e| format!("reading {}: {e}", p.display()))
}

impl JobClient {
    /// Adds the job's credentials to a request; files are read at each scrape so
    /// rotated secrets take effect without a reload, as in Prometheus.
    pub async fn authorize(&self, req: RequestBuilder) -> Result<RequestBuilder, String> {
        match &self.auth {
            Auth::None => Ok(req),
            Auth::Basic(b) => {
                let password = match &b.password_file {
                    Some(f) => Some(read_secret(f)?),
                    None => b.password.clone(),
                };
                Ok(req.basic_auth(&b.username, password))
            }
            Auth::Header(a) => {
                let credentials = match &a.credentials_file {
                    Some(f) => read_secret(f)?,
                    None => a.credentials.clone().unwrap_or_default(),
                };
                let kind = a.kind.as_deref().unwrap_or("Bearer");
                Ok(req.header(reqwest::header::AUTHORIZATION, format!("{kind} {credentials}")))
            }
            Auth::OAuth2(o) => {
                let token = o.token().await?;
                Ok(req.header(reqwest::header::AUTHORIZATION, format!("Bearer {token}")))
            }
        }
    }
}

/// OAuth 2.0 client credentials: a token from `token_url`, kept until shortly before it
/// expires.
struct OAuth2Source {
    config: OAuth2,
    client: reqwest::Client,
    token: tokio::sync::Mutex<Option<(String, Option<Instant>)>>,
}

/// A token is renewed this long before it expires, as Go's oauth2 package does.
const EXPIRY_DELTA: Duration = Duration::from_secs(10);

impl OAuth2Source {
    async fn token(&self) -> Result<String, String> {
        let mut cached = self.token.lock().await;
        if let Some((token, expiry)) = cached.as_ref()
            && expiry.is_none_or(|e| Instant::now() + EXPIRY_DELTA < e)
        {
            return Ok(token.clone());
        }
        let c = &self.config;
        let secret = match &c.client_secret_file {
            Some(f) => read_secret(f)?,
            None => c.client_secret.clone().unwrap_or_default(),
        };
        let form = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            if !c.scopes.is_empty() {
                form.append_pair("scope", &c.scopes.join(" "));
            }
            for (k, v) in &c.endpoint_params {
                form.append_pair(k, v);
            }
            form.finish()
        };
        let resp = self
            .client
            .post(&c.token_url)
            .basic_auth(
                form_urlencoded::byte_serialize(c.client_id.as_bytes()).collect::<String>(),
                Some(form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>()),
            )
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| format!("oauth2 token request: {e}"))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| format!("oauth2 token response: {e}"))?;
        if !status.is_success() {
            return Err(format!("oauth2: cannot fetch token: {status}: {body}"));
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            access_token: String,
            expires_in: Option<u64>,
        }
        let t: TokenResponse =
            serde_json::from_str(&body).map_err(|e| format!("oauth2: cannot parse token response: {e}"))?;
        let expiry = t.expires_in.map(|s| Instant::now() + Duration::from_secs(s));
        *cached = Some((t.access_token.clone(), expiry));
        Ok(t.access_token)
    }
}
