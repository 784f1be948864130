//! Acting on SLO burn: the workloads Sextant manages (a process supervisor with
//! health checks, rollouts and a reverse proxy; Kubernetes Deployments and
//! StatefulSets; anything reached by webhook or command), the policies that act on
//! them when an SLO's burn tier or an alert fires, the guardrails between a
//! trigger and an action, and the durable audit log of every decision.
//!
//! The crate knows nothing of the SLO engine's or the router's internals: it reads
//! SLO states as [`SloInput`]s and alerts as [`AlertInput`]s, which the binary fills
//! in after every SLO cycle and alert poll.

pub mod audit;
pub mod call;
pub mod config;
mod engine;
pub mod kube;
pub mod proxy;
pub mod supervisor;

/// A client builder with the TLS crypto provider installed (reqwest is built
/// without a default one).
pub(crate) fn http_client() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

pub use audit::{ActionSpec, AuditRecord, Decision, Evidence, Filter, Status};
pub use config::{ActionsConfig, WorkloadConfig};
pub use engine::{ActionEngine, AlertInput, ApprovalError, SloInput, TierInput, TierState, WorkloadStatus};
