//! The SLO crate's integration tests, one binary (every test binary links DuckDB).

mod engine;
mod sloth_goldens;
