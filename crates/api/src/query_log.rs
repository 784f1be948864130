//! Prometheus' query log (`global.query_log_file`): one JSON line per query answered
//! through the HTTP API, in Prometheus' shape, so tools that read that log read ours.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sextant_model::time::{format_rfc3339, now_ms};

/// The open query log, if one is configured. Reopened when the configured path changes.
#[derive(Debug, Default)]
pub struct QueryLog {
    file: Mutex<Option<(PathBuf, std::fs::File)>>,
}

impl QueryLog {
    /// Logs to `path` from now on (appending), or stops logging with `None`.
    pub fn set_path(&self, path: Option<&Path>) -> std::io::Result<()> {
        let mut current = self.file.lock().expect("poisoned");
        match path {
            None => *current = None,
            Some(p) if current.as_ref().is_some_and(|(open, _)| open == p) => {}
            Some(p) => {
                let f = std::fs::OpenOptions::new().create(true).append(true).open(p)?;
                *current = Some((p.to_owned(), f));
            }
        }
        Ok(())
    }

    /// Appends the entry for one query, off the async executor.
    pub(crate) fn record(self: &Arc<Self>, entry: QueryLogEntry) {
        if self.file.lock().expect("poisoned").is_none() {
            return;
        }
        let log = self.clone();
        tokio::task::spawn_blocking(move || {
            let line = entry.to_json();
            if let Some((path, f)) = log.file.lock().expect("poisoned").as_mut()
                && let Err(e) = writeln!(f, "{line}")
            {
                tracing::warn!(file = %path.display(), error = %e, "writing the query log failed");
            }
        });
    }
}

/// One answered query.
pub(crate) struct QueryLogEntry {
    pub path: &'static str,
    pub query: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// 0 for an instant query, as Prometheus writes it.
    pub step_ms: i64,
    pub elapsed: Duration,
}

impl QueryLogEntry {
    fn to_json(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        serde_json::json!({
            "httpRequest": {"path": self.path},
            "params": {
                "end": format_rfc3339(self.end_ms),
                "query": self.query,
                "start": format_rfc3339(self.start_ms),
                "step": self.step_ms / 1000,
            },
            "stats": {"timings": {"evalTotalTime": secs, "execTotalTime": secs}},
            "ts": format_rfc3339(now_ms()),
        })
        .to_string()
    }
}
