//! Getting metrics into Sextant: Prometheus-style scraping (`scrape_configs`, target
//! discovery, relabeling, staleness) and the remote_write receiver's decoding. The
//! built-in node collector is its own crate, `sextant-node`.
//!
//! Everything here produces [`sextant_store::AppendRequest`]s; this crate knows nothing
//! of HTTP serving or of queries.

pub mod config;
pub mod discovery;
pub mod http_client;
pub mod relabel;
pub mod remote_write;
pub mod scrape;
pub mod yaml;

pub use config::{ScrapeConfig, ScrapeConfigError, ScrapeDefaults, resolve_scrape_configs};
pub use scrape::{Health, ScrapeManager, TargetStatus, TargetsSnapshot};
