//! Alerts as their producers (alerting rules, SLO burn tiers, Prometheus servers)
//! hand them to the alert router: Alertmanager's "postable alert".

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::Labels;

/// An alert handed to the router.
#[derive(Debug, Clone, PartialEq)]
pub struct PostableAlert {
    /// Identity of the alert (`alertname` and the rest).
    pub labels: Labels,
    /// Descriptions (`summary`, `runbook_url`, ...).
    pub annotations: BTreeMap<String, String>,
    /// When the alert started firing (epoch ms); `None`: now.
    pub starts_at_ms: Option<i64>,
    /// When it resolved, or until when it is valid if still firing (epoch ms);
    /// `None`: the router's resolve timeout after receipt.
    pub ends_at_ms: Option<i64>,
    /// Link back to what produced it.
    pub generator_url: String,
}

/// Where producers send alerts. Sending never blocks: the receiving end queues.
pub type AlertSink = Arc<dyn Fn(Vec<PostableAlert>) + Send + Sync>;
