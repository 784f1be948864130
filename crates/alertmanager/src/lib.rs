//! Alert routing with Alertmanager 0.25's semantics, so its configuration files,
//! its API clients (Prometheus servers, `amtool`, Grafana) and its notification
//! payloads work unchanged: [`config`] (with its defaults and messages),
//! [`matchers`], the routing tree ([`route`]), [`timeinterval`]s, [`silence`]s,
//! inhibition, aggregation groups with `group_wait`/`group_interval`/
//! `repeat_interval`, the notification log ([`nflog`]) and the integrations
//! ([`notify`]: webhook, PagerDuty, OpsGenie, Slack) with Alertmanager's
//! [`template`]s.
//!
//! Beyond Alertmanager: its state (alerts, silences, notification log,
//! acknowledgements, incidents) is durable through a write-ahead log, so a restart
//! loses nothing and sends nothing twice; groups can be acknowledged, which stops
//! their repeats; routes can escalate unacknowledged groups to further receivers;
//! every firing group is an incident.
//!
//! Alerts come in as [`sextant_model::PostableAlert`]s; this crate knows nothing of
//! rules, SLOs or HTTP serving.

pub mod alert;
pub mod config;
mod engine;
pub mod inhibit;
pub mod matchers;
pub mod nflog;
pub mod notify;
pub mod route;
pub mod silence;
pub mod state;
pub mod template;
pub mod timeinterval;

pub use engine::{
    AckError, AlertStatus, Alertmanager, GroupStatus, IntegrationStatus, Options, PostError, ReceiverStatus,
    SilenceError,
};
