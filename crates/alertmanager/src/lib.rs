//! Alert routing with Alertmanager 0.25's semantics (work in progress: the
//! configuration, matchers, routes and time intervals).

pub mod config;
pub mod matchers;
pub mod route;
pub mod timeinterval;
