//! Prometheus rule files and their evaluation: [`file`] validates them as
//! `promtool check rules` does; [`RuleManager`] evaluates recording and alerting
//! rules on each group's schedule through the PromQL engine (or, for Loki ruler
//! files, LogQL over the log store) and stores the results as series,
//! with staleness markers for series that stop being produced. Alerting rules
//! ([`AlertingRule`]) follow Prometheus 2.42's state machine, expand their
//! [`templates`], and hand their alerts to an [`sextant_model::AlertSink`]; they know
//! nothing of routing.

mod alerting;
pub mod file;
mod manager;
pub mod templates;

pub use alerting::{Alert, AlertState, AlertingOptions, AlertingRule};
pub use file::{Language, Rule, RuleExpr, RuleFile, RuleGroup, RuleKind};
pub use manager::{AlertingStatus, GroupStatus, Health, RuleManager, RuleStatus};
