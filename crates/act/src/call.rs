//! Actions carried out by calling out: a webhook (JSON body with the action and its
//! evidence, HMAC-SHA256 signature, an idempotency key stable across retries,
//! retries with backoff and jitter) or a command (the same in its environment,
//! with a timeout and its exit status recorded).

use std::time::Duration;

use serde::Serialize;
use sextant_model::signature::webhook_signature;
use sextant_model::time::format_rfc3339;

use crate::audit::{ActionSpec, Evidence};
use crate::config::{ExecConfig, WebhookConfig};

/// An action as it is handed to whatever carries it out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionRequest {
    /// Version of this payload's shape.
    pub version: &'static str,
    /// The audit record's id; also the idempotency key.
    pub id: String,
    /// The policy that decided it.
    pub policy: String,
    /// The workload acted on.
    pub workload: String,
    /// The action.
    pub action: ActionSpec,
    /// Why, in words.
    pub reason: String,
    /// What the decision was based on.
    pub evidence: Evidence,
    /// When it was decided (RFC 3339).
    pub decided_at: String,
    /// The same, epoch ms.
    #[serde(skip)]
    pub decided_ms: i64,
}

impl ActionRequest {
    /// A request for record `id`.
    pub fn new(
        id: &str,
        policy: &str,
        workload: &str,
        action: ActionSpec,
        reason: &str,
        evidence: Evidence,
        decided_ms: i64,
    ) -> Self {
        Self {
            version: "1",
            id: id.to_owned(),
            policy: policy.to_owned(),
            workload: workload.to_owned(),
            action,
            reason: reason.to_owned(),
            evidence,
            decided_at: format_rfc3339(decided_ms),
            decided_ms,
        }
    }
}

/// Sends `req` as JSON to the webhook, retrying connection errors, timeouts, 5xx
/// and 429 with exponential backoff and jitter. Every attempt carries the same
/// `Idempotency-Key` (the action's id) so the receiver can drop repeats. Returns a
/// short description of the answer.
pub async fn call_webhook(
    client: &reqwest::Client,
    cfg: &WebhookConfig,
    req: &ActionRequest,
) -> Result<String, String> {
    let body = serde_json::to_vec(req).expect("requests serialize");
    let secret = match (&cfg.secret, &cfg.secret_file) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .map(|s| s.trim().to_owned())
                .map_err(|e| format!("reading {}: {e}", f.display()))?,
        ),
        (None, None) => None,
    };
    let method = reqwest::Method::from_bytes(cfg.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut attempt = 0u32;
    loop {
        let mut r = client
            .request(method.clone(), &cfg.url)
            .timeout(cfg.timeout.0)
            .header("Content-Type", "application/json")
            .header("User-Agent", concat!("Sextant/", env!("CARGO_PKG_VERSION")))
            .header("Idempotency-Key", &req.id)
            .header("X-Sextant-Action-Attempt", (attempt + 1).to_string());
        for (k, v) in &cfg.headers {
            r = r.header(k, v);
        }
        if let Some(s) = &secret {
            let now = sextant_model::time::now_ms() / 1000;
            r = r.header("X-Sextant-Signature", webhook_signature(s.as_bytes(), now, &body));
        }
        let outcome = match r.body(body.clone()).send().await {
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                let text: String = text.chars().take(512).collect();
                if status.is_success() {
                    return Ok(format!("HTTP {}", status.as_u16()));
                }
                let retry = status.is_server_error() || status.as_u16() == 429;
                (format!("HTTP {}: {}", status.as_u16(), text.trim()), retry)
            }
            Err(e) => (without_url(&e), true),
        };
        if !outcome.1 || attempt >= cfg.retries {
            let tries = attempt + 1;
            return Err(format!(
                "{} (after {tries} attempt{})",
                outcome.0,
                if tries == 1 { "" } else { "s" }
            ));
        }
        let base = cfg.backoff.0.as_secs_f64() * 2f64.powi(attempt as i32);
        let jitter = 0.5 + rand::random::<f64>();
        tracing::info!(url = %cfg.url, attempt = attempt + 1, error = %outcome.0, "action webhook failed; retrying");
        tokio::time::sleep(Duration::from_secs_f64(base * jitter)).await;
        attempt += 1;
    }
}

fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(x) = source {
        s.push_str(&format!(": {x}"));
        source = x.source();
    }
    s
}

/// Runs the command with the action in its environment (`SEXTANT_ACTION_ID`,
/// `SEXTANT_POLICY`, `SEXTANT_WORKLOAD`, `SEXTANT_ACTION`, `SEXTANT_REPLICAS_FROM`,
/// `SEXTANT_REPLICAS_TO`, `SEXTANT_REASON`, `SEXTANT_EVIDENCE`, and the whole request
/// as `SEXTANT_PAYLOAD`), killing it after the timeout. Succeeds on exit status 0;
/// the outcome quotes the end of its output.
pub async fn run_exec(cfg: &ExecConfig, req: &ActionRequest) -> Result<String, String> {
    let mut cmd = tokio::process::Command::new(&cfg.command[0]);
    cmd.args(&cfg.command[1..])
        .envs(&cfg.env)
        .env("SEXTANT_ACTION_ID", &req.id)
        .env("SEXTANT_POLICY", &req.policy)
        .env("SEXTANT_WORKLOAD", &req.workload)
        .env("SEXTANT_ACTION", req.action.kind())
        .env("SEXTANT_REASON", &req.reason)
        .env(
            "SEXTANT_EVIDENCE",
            serde_json::to_string(&req.evidence).expect("serializes"),
        )
        .env("SEXTANT_PAYLOAD", serde_json::to_string(req).expect("serializes"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let ActionSpec::Scale { from, to } = &req.action {
        cmd.env("SEXTANT_REPLICAS_FROM", from.to_string())
            .env("SEXTANT_REPLICAS_TO", to.to_string());
    }
    if let Some(d) = &cfg.dir {
        cmd.current_dir(d);
    }
    let child = cmd.spawn().map_err(|e| format!("starting {:?}: {e}", cfg.command[0]))?;
    let out = match tokio::time::timeout(cfg.timeout.0, child.wait_with_output()).await {
        Ok(r) => r.map_err(|e| format!("running {:?}: {e}", cfg.command[0]))?,
        Err(_) => {
            return Err(format!(
                "{:?} did not finish within {}; killed",
                cfg.command[0],
                sextant_model::time::format_duration(cfg.timeout.0)
            ));
        }
    };
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let text = text.trim();
    let tail: String = {
        let chars: Vec<char> = text.chars().collect();
        chars[chars.len().saturating_sub(512)..].iter().collect()
    };
    let status = match out.status.code() {
        Some(c) => format!("exit status {c}"),
        None => "killed by a signal".to_owned(),
    };
    let described = if tail.is_empty() {
        status
    } else {
        format!("{status}: {tail}")
    };
    if out.status.success() {
        Ok(described)
    } else {
        Err(described)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sextant_model::time::PromDuration;

    fn req() -> ActionRequest {
        ActionRequest::new(
            "id-1",
            "scale",
            "checkout",
            ActionSpec::Scale { from: 2, to: 4 },
            "page tier firing",
            Evidence::default(),
            0,
        )
    }

    #[tokio::test]
    async fn exec_gets_the_action_and_reports_exit_status() {
        let cfg = ExecConfig {
            command: vec![
                "sh".into(),
                "-c".into(),
                "echo $SEXTANT_ACTION $SEXTANT_WORKLOAD $SEXTANT_REPLICAS_FROM $SEXTANT_REPLICAS_TO $SEXTANT_ACTION_ID; exit $CODE".into(),
            ],
            env: [("CODE".to_owned(), "0".to_owned())].into(),
            dir: None,
            timeout: PromDuration(Duration::from_secs(5)),
        };
        assert_eq!(
            run_exec(&cfg, &req()).await.unwrap(),
            "exit status 0: scale checkout 2 4 id-1"
        );
        let failing = ExecConfig {
            env: [("CODE".to_owned(), "3".to_owned())].into(),
            ..cfg.clone()
        };
        assert_eq!(
            run_exec(&failing, &req()).await.unwrap_err(),
            "exit status 3: scale checkout 2 4 id-1"
        );
        let slow = ExecConfig {
            command: vec!["sleep".into(), "5".into()],
            timeout: PromDuration(Duration::from_millis(200)),
            ..cfg
        };
        assert!(
            run_exec(&slow, &req())
                .await
                .unwrap_err()
                .contains("did not finish within")
        );
    }
}
