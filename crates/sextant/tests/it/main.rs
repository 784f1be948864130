//! End-to-end tests of the `sextant` binary, one test binary for all of them (every test
//! binary links DuckDB, so each one more costs CI a link): the binary started on free
//! loopback ports and driven over HTTP, beside the real peers (Prometheus, promtool,
//! node_exporter) it is compared with.

mod support;

mod actions_e2e;
mod alerting_e2e;
mod check_rules;
mod config_parity;
mod dashboards;
mod logs_e2e;
mod loki_clients;
mod otlp_e2e;
mod peer_node_exporter;
mod peer_prometheus;
mod query_api;
mod remote_write;
mod scrape_e2e;
mod scrape_tls;
mod shipped_files;
mod slo_e2e;
mod traces_e2e;
