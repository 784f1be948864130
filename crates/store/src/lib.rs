//! Durable storage for Sextant's metrics.
//!
//! [`MetricsStore`] keeps a series registry in memory (labels ↔ id, an inverted index
//! from label pairs to series ids, each series' newest sample), recent samples in an
//! in-memory head of Gorilla-encoded chunks (`head.rs`, `chunk.rs`), and closed
//! two-hour blocks in DuckDB, one row of encoded samples per series and block
//! (`compact.rs`, `blockcodec.rs`).
//!
//! Appends are group-committed to a write-ahead log of our own (`sextant-wal`): every
//! request waiting at that moment shares one `fdatasync`, and an append is
//! acknowledged only after it, so an acknowledged sample survives `kill -9`. Start-up
//! replays the log into the head. A block writer on its own thread and DuckDB
//! connection flushes closed blocks from the head into DuckDB; appends never wait for
//! it. Readers merge the head and the blocks.
//!
//! The store knows nothing of PromQL, scraping or HTTP.

mod blockcodec;
mod chunk;
mod compact;
mod compact_legacy;
mod error;
mod format;
mod head;
mod metrics;
mod registry;
mod slices;
mod store;
mod walrec;
mod writer;

pub use error::{Error, ErrorKind, Result};
pub use format::FORMAT_VERSION;
pub use registry::{HashIndex, SeriesId, U64Hasher};
pub use sextant_model::SeriesData;
pub use slices::{RevisionRow, SliceFilter, SliceRow, WindowSum};
pub use store::{AppendOutcome, AppendRequest, MetricsStore, ReplayReport, SeriesRef, SeriesSamples, StoreOptions};
