//! The SLO engine's specs and rule generation: Sloth `prometheus/v1` and OpenSLO specs
//! read into one model ([`Slo`]), validated with Sloth's rules and messages, and the
//! Prometheus rules Sloth would generate for them.
//!
//! [`engine`] runs them: slices in the metrics store, Sloth's series, budgets, tiers
//! and backfill. [`status`] is what it reports.

pub mod calendar;
pub mod engine;
mod error;
pub mod gofmt;
pub mod model;
pub mod sloth_rules;
pub mod spec;
pub mod status;
mod template;
pub mod windows;

pub use engine::{CycleHook, EngineOptions, SloEngine, TierAlert, TierAlertSink};
pub use error::{Result, SpecError};
pub use model::{Slo, SloDocument};
