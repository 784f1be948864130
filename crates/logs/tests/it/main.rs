//! Integration tests of the log store and LogQL (one binary).

mod conformance;
mod store;
