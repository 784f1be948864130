//! The SLO engine's specs and rule generation: Sloth `prometheus/v1` and OpenSLO specs
//! read into one model ([`Slo`]), validated with Sloth's rules and messages, and the
//! Prometheus rules Sloth would generate for them.
//!
//! This crate knows nothing of storage or HTTP.

pub mod calendar;
mod error;
pub mod gofmt;
pub mod model;
pub mod sloth_rules;
pub mod spec;
mod template;
pub mod windows;

pub use error::{Result, SpecError};
pub use model::{Slo, SloDocument};
