//! What the load generators share: `--flag value` arguments, a process's CPU
//! time, percentiles.

// Each example uses the part it needs.
#![allow(dead_code)]

/// `--name value` from the command line, or the default.
pub fn flag(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

/// User plus system CPU seconds of process `pid` (from `/proc/<pid>/stat`).
pub fn proc_cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The `p` quantile (0..=1) of `v` by nearest rank; NaN when empty.
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// What one attempt at a request came to.
pub enum Attempt {
    /// Accepted.
    Done,
    /// Refused for now (429, 503, gRPC UNAVAILABLE): send it again after the back-off.
    Retry,
}

/// Sends requests `0..n` from `concurrency` closed-loop senders: each sender
/// takes the next index and calls `send` until it answers [`Attempt::Done`],
/// sleeping `backoff` after each [`Attempt::Retry`]. Returns the latency (ms)
/// of each request's accepted attempt and the number of retries.
pub async fn closed_loop<F, Fut>(n: usize, concurrency: usize, backoff: std::time::Duration, send: F) -> (Vec<f64>, u64)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Attempt> + Send,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = std::sync::Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (next, send) = (next.clone(), send.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut retries = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                loop {
                    let t = std::time::Instant::now();
                    match send(i).await {
                        Attempt::Done => {
                            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                            break;
                        }
                        Attempt::Retry => {
                            retries += 1;
                            tokio::time::sleep(backoff).await;
                        }
                    }
                }
            }
            (latencies, retries)
        }));
    }
    let mut latencies = Vec::new();
    let mut retries = 0;
    for t in tasks {
        let (l, r) = t.await.expect("sender task");
        latencies.extend(l);
        retries += r;
    }
    (latencies, retries)
}
