//! Prometheus rule files and their evaluation: [`file`] validates them as
//! `promtool check rules` does; [`RuleManager`] evaluates recording rules on each
//! group's schedule through the PromQL engine and stores the results, with staleness
//! markers for series that stop being produced.

pub mod file;
mod manager;

pub use file::{Rule, RuleFile, RuleGroup, RuleKind};
pub use manager::{GroupStatus, Health, RuleManager, RuleStatus};
