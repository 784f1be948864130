//! The built-in node collector: what node_exporter 1.5 exposes on Linux, as Debian's
//! package runs it, under the same names, labels, help texts and types, so dashboards and
//! alert rules written for node_exporter work unchanged.
//!
//! It reads `/proc` and `/sys` (mount points configurable, as node_exporter's
//! `--path.*` flags, so tests run it on fixture trees) and a few system calls. Every
//! collector node_exporter enables by default is here, each enabled or disabled by name;
//! a collector whose kernel source is absent exposes nothing and reports
//! `node_scrape_collector_success 0`, as node_exporter does. The endpoint also carries
//! node_exporter's own series: per-collector duration and success, build info, the
//! `process_*` series of this process and the handler's request counters.
//!
//! This crate knows nothing of scraping, storage or HTTP: [`NodeCollector::gather`]
//! returns a text-format body.

mod collectors;
mod config;
mod error;
mod exporter;
mod out;
mod read;
mod sys;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

pub use config::{NodeConfig, NodeConfigError, PathsConfig};

use crate::collectors::{COLLECTORS, Collector};
use crate::error::CollectError;
use crate::out::Out;

/// What a collector gets: where to read and how to filter (built once from a
/// [`NodeConfig`]), and the state kept between scrapes by collectors that need it.
pub(crate) struct Node<'a> {
    pub opts: &'a config::Options,
    pub state: &'a collectors::State,
}

/// Collects node metrics on demand. Cheap to share; [`NodeCollector::apply`] replaces
/// the configuration while keeping what is kept between scrapes.
pub struct NodeCollector {
    current: RwLock<Arc<Enabled>>,
    state: collectors::State,
    exporter: exporter::ExporterStats,
    /// The last error each failing collector logged, so a persistent failure is logged
    /// once rather than at every scrape.
    last_errors: Mutex<std::collections::HashMap<&'static str, String>>,
}

struct Enabled {
    options: config::Options,
    collectors: Vec<&'static Collector>,
    exporter_metrics: bool,
}

impl std::fmt::Debug for NodeCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let current = self.current.read().expect("poisoned");
        f.debug_struct("NodeCollector")
            .field(
                "collectors",
                &current.collectors.iter().map(|c| c.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for NodeCollector {
    /// node_exporter's defaults.
    fn default() -> Self {
        Self::new(&NodeConfig::default()).expect("the default node config is valid")
    }
}

impl NodeCollector {
    /// A collector configured by `config`.
    pub fn new(config: &NodeConfig) -> Result<Self, NodeConfigError> {
        Ok(Self {
            current: RwLock::new(Arc::new(Self::enabled(config)?)),
            state: collectors::State::default(),
            exporter: exporter::ExporterStats::default(),
            last_errors: Mutex::default(),
        })
    }

    fn enabled(config: &NodeConfig) -> Result<Enabled, NodeConfigError> {
        let options = config::Options::new(config)?;
        let names = config.enabled_collectors()?;
        Ok(Enabled {
            options,
            collectors: COLLECTORS.iter().filter(|c| names.contains(&c.name)).collect(),
            exporter_metrics: config.exporter_metrics,
        })
    }

    /// Replaces the configuration (on config reload).
    pub fn apply(&self, config: &NodeConfig) -> Result<(), NodeConfigError> {
        let enabled = Arc::new(Self::enabled(config)?);
        *self.current.write().expect("poisoned") = enabled;
        Ok(())
    }

    /// One exposition body in the Prometheus text format. Blocking: reads files.
    pub fn gather(&self) -> String {
        let _in_flight = self.exporter.request_started();
        let enabled = self.current.read().expect("poisoned").clone();
        let node = Node {
            opts: &enabled.options,
            state: &self.state,
        };
        let mut out = Out::default();
        for c in &enabled.collectors {
            let start = Instant::now();
            let result = (c.collect)(&node, &mut out);
            let seconds = start.elapsed().as_secs_f64();
            self.log_result(c.name, &result);
            exporter::collector_result(&mut out, c.name, seconds, result.is_ok());
        }
        if enabled.exporter_metrics {
            exporter::build_info(&mut out);
            exporter::process(&mut out);
            self.exporter.write(&mut out);
        }
        let body = out.render();
        self.exporter.request_done();
        body
    }

    fn log_result(&self, name: &'static str, result: &Result<(), CollectError>) {
        let mut last = self.last_errors.lock().expect("poisoned");
        match result {
            Ok(()) => {
                if last.remove(name).is_some() {
                    tracing::info!(collector = name, "node collector recovered");
                }
            }
            Err(CollectError::NoData) => tracing::debug!(collector = name, "collector returned no data"),
            Err(CollectError::Failed(msg)) => {
                if last.get(name) != Some(msg) {
                    tracing::warn!(collector = name, error = %msg, "node collector failed");
                    last.insert(name, msg.clone());
                }
            }
        }
    }
}
