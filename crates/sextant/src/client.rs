//! Calls from the command line to a running server's JSON API.

/// Sends a request and returns the decoded JSON answer; an answer with an error
/// status becomes its `error` text.
pub fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, String> {
    block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        let mut req = client.request(method, url);
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(&b).unwrap_or_default());
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| format!("{url}: HTTP {status}, not JSON: {e}"))?;
        if status.is_success() {
            Ok(v)
        } else {
            Err(v["error"].as_str().unwrap_or("error").to_owned())
        }
    })
}

/// Fetches a URL with the given `Accept` header: the status and the body, for
/// APIs that answer in protobuf or plain text (Tempo's).
pub fn get_bytes(url: &str, accept: &str) -> Result<(u16, Vec<u8>), String> {
    block_on(async {
        let resp = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(300))
            .build()
            .map_err(|e| e.to_string())?
            .get(url)
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        Ok((status, bytes.to_vec()))
    })
}

/// Runs a client future to completion on a runtime of its own, with the TLS
/// provider installed.
fn block_on<T>(f: impl std::future::Future<Output = Result<T, String>>) -> Result<T, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(f)
}
