//! Access control (`server.auth`): bearer tokens and basic-auth users, each with a
//! role (`viewer`, `operator`, `admin`), stored as SHA-256 hashes and compared in
//! constant time. Reads need `viewer` (unless anonymous reads are allowed, the
//! default), silences and acknowledgements `operator`, reload `admin`; ingestion
//! (remote_write, posted alerts) stays open, as Prometheus servers send it. The
//! caller's identity is attached to the request for handlers that record authors.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read.
    Viewer,
    /// Read, silence, acknowledge.
    Operator,
    /// Everything, including reloading the configuration.
    Admin,
}

impl Role {
    /// From its name.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            _ => Err(format!("unknown role {s:?} (viewer, operator or admin)")),
        }
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Token name or user name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// A credential: who it is, its role, and the SHA-256 of the secret.
#[derive(Debug, Clone)]
pub struct Credential {
    /// Token name or user name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// SHA-256 of the token, or of the password.
    pub sha256: [u8; 32],
}

/// Access-control settings; `Auth::default()` allows everything (no
/// `server.auth`).
#[derive(Debug, Clone, Default)]
pub struct Auth {
    inner: Option<Arc<AuthConfig>>,
}

#[derive(Debug)]
struct AuthConfig {
    tokens: Vec<Credential>,
    users: Vec<Credential>,
    anonymous: Option<Role>,
}

impl Auth {
    /// Access control with these tokens and users; `anonymous` is what callers
    /// without credentials may do (`None`: nothing).
    pub fn new(tokens: Vec<Credential>, users: Vec<Credential>, anonymous: Option<Role>) -> Self {
        Self {
            inner: Some(Arc::new(AuthConfig {
                tokens,
                users,
                anonymous,
            })),
        }
    }

    /// Whether access control is on.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Who the request's credentials name: `Ok(None)` for no credentials,
    /// `Err` for credentials that match nobody.
    fn identify(&self, req: &Request) -> Result<Option<Identity>, ()> {
        let Some(cfg) = &self.inner else { return Ok(None) };
        let Some(value) = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return Ok(None);
        };
        if let Some(token) = value.strip_prefix("Bearer ") {
            let h: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
            return find(&cfg.tokens, None, &h).ok_or(());
        }
        if let Some(b64) = value.strip_prefix("Basic ") {
            let decoded = base64_decode(b64.trim()).ok_or(())?;
            let text = String::from_utf8(decoded).map_err(|_| ())?;
            let (user, pass) = text.split_once(':').ok_or(())?;
            let h: [u8; 32] = Sha256::digest(pass.as_bytes()).into();
            return find(&cfg.users, Some(user), &h).ok_or(());
        }
        Err(())
    }
}

/// Constant-time comparison of two digests.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn find(creds: &[Credential], name: Option<&str>, h: &[u8; 32]) -> Option<Option<Identity>> {
    // Every credential is compared, so timing does not tell which one matched.
    let mut found = None;
    for c in creds {
        let name_ok = name.is_none_or(|n| n == c.name);
        if same(&c.sha256, h) && name_ok && found.is_none() {
            found = Some(Identity {
                name: c.name.clone(),
                role: c.role,
            });
        }
    }
    found.map(Some)
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|c| *c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= val(*c)? << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    Some(out)
}

/// The role a request needs, by method and path; `None` for ingestion and health.
pub fn required_role(method: &Method, path: &str) -> Option<Role> {
    let p = path.trim_end_matches('/');
    let is = |suffix: &str| p.ends_with(suffix);
    if is("/-/healthy") || is("/-/ready") {
        return None;
    }
    if *method == Method::POST && (is("/api/v1/write") || is("/api/v2/alerts") || is("/api/v1/alerts")) {
        return None;
    }
    if is("/-/reload") || is("/-/quit") {
        return Some(Role::Admin);
    }
    let reads = *method == Method::GET || *method == Method::HEAD || *method == Method::OPTIONS;
    // Form POSTs of queries are reads.
    let query_post = *method == Method::POST && p.contains("/api/v1/") && !p.contains("/api/v1/admin");
    if reads || query_post {
        return Some(Role::Viewer);
    }
    Some(Role::Operator)
}

fn deny(status: StatusCode, message: &str) -> Response {
    let mut r = (
        status,
        axum::Json(serde_json::json!({"status": "error", "errorType": "unauthorized", "error": message})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"sextant\", Bearer"),
        );
    }
    r
}

/// The middleware: checks the caller against the role the request needs and
/// attaches its [`Identity`].
pub async fn layer(State(auth): State<Auth>, mut req: Request, next: Next) -> Response {
    let Some(cfg) = auth.inner.clone() else {
        return next.run(req).await;
    };
    let needed = required_role(req.method(), req.uri().path());
    let who = match auth.identify(&req) {
        Ok(w) => w,
        Err(()) => return deny(StatusCode::UNAUTHORIZED, "invalid credentials"),
    };
    if let Some(needed) = needed {
        let role = who.as_ref().map(|w| w.role).or(cfg.anonymous);
        match role {
            None => return deny(StatusCode::UNAUTHORIZED, "credentials required"),
            // Without credentials, say so: the caller may have some that suffice.
            Some(r) if r < needed && who.is_none() => {
                return deny(StatusCode::UNAUTHORIZED, "credentials required");
            }
            Some(r) if r < needed => {
                return deny(
                    StatusCode::FORBIDDEN,
                    &format!("this needs the {needed:?} role").to_lowercase(),
                );
            }
            Some(_) => {}
        }
    }
    if let Some(w) = who {
        req.extensions_mut().insert(w);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_by_route() {
        assert_eq!(required_role(&Method::POST, "/api/v2/alerts"), None);
        assert_eq!(required_role(&Method::POST, "/api/v1/write"), None);
        assert_eq!(required_role(&Method::GET, "/api/v2/alerts"), Some(Role::Viewer));
        assert_eq!(required_role(&Method::POST, "/api/v1/query"), Some(Role::Viewer));
        assert_eq!(required_role(&Method::POST, "/api/v2/silences"), Some(Role::Operator));
        assert_eq!(
            required_role(&Method::DELETE, "/api/v2/silence/x"),
            Some(Role::Operator)
        );
        assert_eq!(required_role(&Method::POST, "/-/reload"), Some(Role::Admin));
        assert_eq!(required_role(&Method::GET, "/-/ready"), None);
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
    }
}
