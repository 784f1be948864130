//! The log store: pushes made durable in a write-ahead log (group commit, as the
//! metrics store does) and then indexed, about once a second, into time-partitioned
//! tantivy indexes. A push is acknowledged once it is in the log; it is searchable
//! after the next index commit. Replay after a crash indexes what the log holds and
//! the index does not, by sequence number, so nothing is lost or indexed twice.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sextant_model::Labels;
use sextant_model::Matcher;
use sextant_wal::{Replayed, Wal, WalOptions};

use crate::Error;
use crate::partition::{Hit, Partition};
use crate::record::{Entry, PushStream, decode_push, detected_level, encode_push, normalize_name, with_service_name};
use crate::textq::needles_query;

/// What the store accepts; beyond these a push is answered 400 or 429 with the
/// reason, as Loki answers.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest line, bytes (Loki 3: 256 KB).
    pub max_line_size: usize,
    /// Label names per stream, `service_name` not counted (Loki: 15).
    pub max_label_names: usize,
    /// Longest label name (Loki: 1024).
    pub max_label_name_length: usize,
    /// Longest label value (Loki: 2048).
    pub max_label_value_length: usize,
    /// Streams the store holds within retention.
    pub max_streams: usize,
    /// Sustained ingest rate, bytes of lines per second.
    pub ingest_rate_bytes: f64,
    /// Burst above the rate, bytes.
    pub ingest_burst_bytes: f64,
    /// Entries older than this are refused (Loki: 7 days).
    pub reject_older_than: Duration,
    /// Entries further in the future than this are refused (Loki: 10 minutes).
    pub creation_grace: Duration,
    /// Structured metadata bytes per entry (Loki: 64 KB).
    pub max_metadata_size: usize,
    /// Structured metadata entries per entry (Loki: 128).
    pub max_metadata_entries: usize,
    /// Line bytes acknowledged but not yet indexed beyond which pushes get 429
    /// (they are held in memory until the indexer takes them).
    pub max_unindexed_bytes: usize,
    /// How far the index may fall behind acknowledgements: a push gets 429 while
    /// the queued lines would take longer than half of this to index at the
    /// measured indexing rate (the other half is for the commit in flight), so an
    /// acknowledged entry is searchable within about this long even when pushes
    /// arrive faster than they can be indexed.
    pub max_index_lag: Duration,
    /// Give streams without `service_name` one (Loki's `discover_service_name`).
    pub discover_service_name: bool,
    /// Give every entry a `detected_level` (Loki's `discover_log_levels`).
    pub discover_log_levels: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line_size: 256 * 1024,
            max_label_names: 15,
            max_label_name_length: 1024,
            max_label_value_length: 2048,
            max_streams: 100_000,
            ingest_rate_bytes: 64.0 * 1024.0 * 1024.0,
            ingest_burst_bytes: 128.0 * 1024.0 * 1024.0,
            reject_older_than: Duration::from_secs(7 * 86400),
            creation_grace: Duration::from_secs(600),
            max_metadata_size: 64 * 1024,
            max_metadata_entries: 128,
            max_unindexed_bytes: 256 << 20,
            max_index_lag: Duration::from_secs(2),
            discover_service_name: true,
            discover_log_levels: true,
        }
    }
}

/// Indexing rate assumed before one has been measured, bytes of lines per second
/// (about a third of what one core indexes on this project's machines).
const INDEX_RATE_PRIOR: f64 = 4e6;

/// Settings of a store.
#[derive(Debug, Clone)]
pub struct LogStoreOptions {
    /// Its directory (`<data>/logs`).
    pub dir: PathBuf,
    /// Entries older than this are dropped, a whole partition at a time.
    pub retention: Duration,
    /// Length of a partition.
    pub partition: Duration,
    /// How often new entries are committed to the index (they are searchable
    /// after it).
    pub commit_interval: Duration,
    /// Push limits.
    pub limits: Limits,
}

impl LogStoreOptions {
    /// Defaults: 15 days, hourly partitions, commits every second.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            retention: Duration::from_secs(15 * 86400),
            partition: Duration::from_secs(3600),
            commit_interval: Duration::from_secs(1),
            limits: Limits::default(),
        }
    }
}

/// Why a push was not (wholly) accepted, with Loki's status and text.
#[derive(Debug, Clone, PartialEq)]
pub struct PushError {
    /// HTTP status: 400 (bad input; valid entries of the push were still
    /// written), 429 (a limit; nothing was written) or 500.
    pub status: u16,
    /// Loki's message.
    pub message: String,
    /// Entries refused (all of them for a 429).
    pub rejected: usize,
}

/// What a push did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushOutcome {
    /// Entries written.
    pub accepted: usize,
    /// Entries dropped as exact duplicates of the stream's last entry.
    pub duplicates: usize,
    /// Line bytes written.
    pub bytes: usize,
}

/// What opening found.
#[derive(Debug, Clone, Default)]
pub struct OpenStats {
    /// Partitions on disk.
    pub partitions: usize,
    /// Entries replayed from the log that the index did not have.
    pub replayed_entries: usize,
    /// The log's own replay figures.
    pub wal: sextant_wal::ReplayStats,
}

/// Messages of refused entries, and how many more entries they cover (a
/// stream-level error refuses all its entries with one message).
type Refusals = (Vec<String>, usize);

/// Order of entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first.
    Forward,
    /// Newest first.
    Backward,
}

/// Which entries a scan visits.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The stream selector.
    pub matchers: Vec<Matcher>,
    /// First nanosecond (inclusive).
    pub from: i64,
    /// Last nanosecond (inclusive).
    pub to: i64,
    /// Substrings every line contains (`|=` filters): used to narrow the index
    /// search, then tested exactly.
    pub needles: Vec<String>,
    /// Order of the visit.
    pub direction: Direction,
    /// Whether the visitor needs lines and metadata (false: only time, stream and
    /// length, read without touching stored documents).
    pub fetch: bool,
}

/// One entry visited by a scan.
pub struct Visit<'a> {
    /// The stream's labels.
    pub stream: &'a Arc<Labels>,
    /// Timestamp, ns.
    pub ts: i64,
    /// Line length, bytes.
    pub len: u64,
    /// The line (empty unless fetched).
    pub line: &'a str,
    /// Structured metadata (empty unless fetched).
    pub metadata: &'a [(String, String)],
}

/// Counts of a scan (Loki's `stats` are built from them).
#[derive(Debug, Clone, Default)]
pub struct ScanStats {
    /// Entries the index returned.
    pub candidates: u64,
    /// Entries handed to the visitor.
    pub visited: u64,
    /// Line bytes handed to the visitor.
    pub bytes: u64,
    /// Partitions searched.
    pub partitions: u64,
}

/// Figures of the store for `/metrics` and `index/stats`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Entries accepted.
    pub entries: AtomicU64,
    /// Line bytes accepted.
    pub bytes: AtomicU64,
    /// Index commits.
    pub commits: AtomicU64,
    /// Entries refused (limits, validation).
    pub refused: AtomicU64,
    /// Time from acknowledgement to searchable of the last commit, µs.
    pub last_index_lag_us: AtomicU64,
}

struct Pending {
    seq: u64,
    streams: Vec<PushStream>,
    queued: Instant,
}

struct State {
    next_seq: u64,
    pending: Vec<Pending>,
    /// Last entry per stream (ts, hash of line and metadata), to drop exact
    /// duplicates as Loki does.
    last: HashMap<u64, (i64, u64)>,
    /// Line bytes in `pending`.
    pending_bytes: usize,
    /// Token bucket of the ingest rate.
    bucket: f64,
    bucket_at: Instant,
    /// Line bytes indexed per second, averaged over recent commits of at least
    /// 1 MiB (0 until one was measured; [`INDEX_RATE_PRIOR`] stands in).
    index_rate: f64,
    shutdown: bool,
}

struct Inner {
    opts: LogStoreOptions,
    wal: Wal,
    state: Mutex<State>,
    wake: Condvar,
    parts: RwLock<BTreeMap<i64, Arc<Partition>>>,
    /// Every stream within retention (id → labels), for limits and metadata.
    streams: RwLock<HashMap<u64, Arc<Labels>>>,
    counters: Counters,
    tail: tokio::sync::broadcast::Sender<Arc<Vec<PushStream>>>,
    /// Held while a batch is indexed, so a flush waits for a commit the indexer
    /// has in flight.
    indexing: Mutex<()>,
}

/// Handle to the store; clones share it.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
    _indexer: Arc<IndexerHandle>,
}

struct IndexerHandle {
    inner: Arc<Inner>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for IndexerHandle {
    fn drop(&mut self) {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner()).shutdown = true;
        self.inner.wake.notify_all();
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn entry_hash(e: &Entry) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(e.line.as_bytes());
    for (k, v) in &e.metadata {
        h.update(&[0]);
        h.update(k.as_bytes());
        h.update(&[1]);
        h.update(v.as_bytes());
    }
    h.digest()
}

fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_owned()
    };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

impl LogStore {
    /// Opens the store in `opts.dir`: its partitions, then the write-ahead log,
    /// replaying what the index does not hold yet; starts the indexer.
    pub fn open(opts: LogStoreOptions) -> Result<(Self, OpenStats), Error> {
        let parts_dir = opts.dir.join("parts");
        std::fs::create_dir_all(&parts_dir).map_err(|e| Error::Io(parts_dir.clone(), e))?;
        let width = opts.partition.as_nanos() as i64;
        let mut parts = BTreeMap::new();
        let mut streams = HashMap::new();
        for e in std::fs::read_dir(&parts_dir).map_err(|e| Error::Io(parts_dir.clone(), e))? {
            let e = e.map_err(|e| Error::Io(parts_dir.clone(), e))?;
            let Some(start) = e.file_name().to_str().and_then(|n| n.parse::<i64>().ok()) else {
                continue;
            };
            let p = Partition::open(&e.path(), start, start + width)?;
            for (id, l) in p.streams() {
                streams.insert(id, l);
            }
            parts.insert(start, Arc::new(p));
        }
        let mut stats = OpenStats {
            partitions: parts.len(),
            ..Default::default()
        };
        let committed: HashMap<i64, u64> = parts
            .iter()
            .map(|(k, p)| (*k, p.committed_seq.load(Ordering::SeqCst)))
            .collect();
        let cutoff = now_ns() - opts.retention.as_nanos() as i64;
        let mut pending = Vec::new();
        let mut max_seq = committed.values().copied().max().unwrap_or(0);
        let mut consider = |seq: u64, list: Vec<PushStream>| {
            max_seq = max_seq.max(seq);
            let mut keep = Vec::new();
            for mut s in list {
                s.entries.retain(|e| {
                    let start = e.ts.div_euclid(width) * width;
                    e.ts >= cutoff && committed.get(&start).is_none_or(|c| *c < seq)
                });
                if !s.entries.is_empty() {
                    stats.replayed_entries += s.entries.len();
                    keep.push(s);
                }
            }
            if !keep.is_empty() {
                pending.push(Pending {
                    seq,
                    streams: keep,
                    queued: Instant::now(),
                });
            }
        };
        let (wal, wal_stats) = Wal::open(WalOptions::new(opts.dir.join("wal")), |r| match r {
            Replayed::Checkpoint(snapshot) => {
                let mut b = snapshot;
                while b.len() >= 4 {
                    let n = u32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as usize;
                    let Some(rec) = b.get(4..4 + n) else { break };
                    if let Some((seq, list)) = decode_push(rec) {
                        consider(seq, list);
                    }
                    b = &b[4 + n..];
                }
            }
            Replayed::Record(rec) => {
                if let Some((seq, list)) = decode_push(rec) {
                    consider(seq, list);
                }
            }
        })
        .map_err(|e| Error::Wal(e.to_string()))?;
        stats.wal = wal_stats;
        for p in &pending {
            for s in &p.streams {
                streams
                    .entry(s.labels.stable_hash())
                    .or_insert_with(|| Arc::new(s.labels.clone()));
            }
        }
        let (tail, _) = tokio::sync::broadcast::channel(1024);
        let inner = Arc::new(Inner {
            wal,
            state: Mutex::new(State {
                next_seq: max_seq + 1,
                pending_bytes: pending
                    .iter()
                    .flat_map(|p| &p.streams)
                    .flat_map(|s| &s.entries)
                    .map(|e| e.line.len())
                    .sum(),
                pending,
                last: HashMap::new(),
                bucket: opts.limits.ingest_burst_bytes,
                bucket_at: Instant::now(),
                index_rate: 0.0,
                shutdown: false,
            }),
            wake: Condvar::new(),
            parts: RwLock::new(parts),
            streams: RwLock::new(streams),
            counters: Counters::default(),
            tail,
            indexing: Mutex::new(()),
            opts,
        });
        let thread_inner = inner.clone();
        let thread = std::thread::Builder::new()
            .name("log-indexer".into())
            .spawn(move || indexer(thread_inner))
            .map_err(|e| Error::Io(PathBuf::from("log-indexer thread"), e))?;
        // What replay found is indexed before the store is handed out, so an
        // acknowledged entry is searchable as soon as the server is ready again.
        index_pending(&inner)?;
        let handle = Arc::new(IndexerHandle {
            inner: inner.clone(),
            thread: Mutex::new(Some(thread)),
        });
        Ok((
            Self {
                inner,
                _indexer: handle,
            },
            stats,
        ))
    }

    /// The store's counters.
    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// Settings the store was opened with.
    pub fn options(&self) -> &LogStoreOptions {
        &self.inner.opts
    }

    /// Entries as they become searchable (for tailing).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Vec<PushStream>>> {
        self.inner.tail.subscribe()
    }

    /// Validates a push as Loki's distributor does (service name, limits,
    /// structured-metadata names, `detected_level`), writes what is valid to the
    /// log and returns once it is durable. Exact duplicates of a stream's last
    /// entry are dropped silently. An error after a partial write is a 400 whose
    /// valid entries were written; a 429 wrote nothing.
    pub async fn push(&self, streams: Vec<PushStream>) -> Result<PushOutcome, PushError> {
        let (ticket, outcome, errors) = self.push_queue(streams)?;
        if let Some(ticket) = ticket {
            ticket.durable().await.map_err(|e| PushError {
                rejected: 0,
                status: 500,
                message: e.to_string(),
            })?;
        }
        self.finish(outcome, errors)
    }

    /// [`LogStore::push`] for callers outside async code.
    pub fn push_blocking(&self, streams: Vec<PushStream>) -> Result<PushOutcome, PushError> {
        let (ticket, outcome, errors) = self.push_queue(streams)?;
        if let Some(ticket) = ticket {
            ticket.durable_blocking().map_err(|e| PushError {
                rejected: 0,
                status: 500,
                message: e.to_string(),
            })?;
        }
        self.finish(outcome, errors)
    }

    fn finish(&self, outcome: PushOutcome, (errors, extra): Refusals) -> Result<PushOutcome, PushError> {
        self.inner
            .counters
            .entries
            .fetch_add(outcome.accepted as u64, Ordering::Relaxed);
        self.inner
            .counters
            .bytes
            .fetch_add(outcome.bytes as u64, Ordering::Relaxed);
        if errors.is_empty() {
            return Ok(outcome);
        }
        self.inner
            .counters
            .refused
            .fetch_add(errors.len() as u64, Ordering::Relaxed);
        Err(PushError {
            status: 400,
            message: grouped_errors(&errors),
            rejected: errors.len() + extra,
        })
    }

    #[allow(clippy::type_complexity)]
    fn push_queue(
        &self,
        streams: Vec<PushStream>,
    ) -> Result<(Option<sextant_wal::Ticket>, PushOutcome, Refusals), PushError> {
        let limits = &self.inner.opts.limits;
        let now = now_ns();
        let oldest = now - limits.reject_older_than.as_nanos() as i64;
        let newest = now + limits.creation_grace.as_nanos() as i64;
        let mut errors = Vec::new();
        let total: usize = streams.iter().map(|s| s.entries.len()).sum();
        let mut refused = 0usize;
        let mut valid: Vec<PushStream> = Vec::with_capacity(streams.len());
        for s in streams {
            if s.entries.is_empty() {
                continue;
            }
            let labels = if limits.discover_service_name {
                with_service_name(&s.labels)
            } else {
                s.labels.clone()
            };
            let shown = s.labels.to_string();
            if let Err(e) = validate_labels(&labels, &shown, limits) {
                // One message for the stream, every entry of it refused.
                refused += s.entries.len() - 1;
                errors.push(e);
                continue;
            }
            let mut entries = Vec::with_capacity(s.entries.len());
            for mut e in s.entries {
                if e.ts < oldest {
                    errors.push(format!(
                        "entry for stream '{shown}' has timestamp too old: {}, oldest acceptable timestamp is: {}",
                        rfc3339(e.ts),
                        rfc3339(oldest)
                    ));
                    continue;
                }
                if e.ts > newest {
                    errors.push(format!(
                        "entry for stream '{shown}' has timestamp too new: {}",
                        rfc3339(e.ts)
                    ));
                    continue;
                }
                if e.line.len() > limits.max_line_size {
                    errors.push(format!(
                        "max entry size '{}' bytes exceeded for stream '{shown}' while adding an entry with length '{}' bytes",
                        limits.max_line_size,
                        e.line.len()
                    ));
                    continue;
                }
                let meta_size: usize = e.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
                if meta_size > limits.max_metadata_size {
                    errors.push(format!(
                        "stream '{shown}' has structured metadata too large: '{meta_size}' bytes, limit: '{}' bytes. Please see `limits_config.max_structured_metadata_size` or contact your Loki administrator to increase it",
                        limits.max_metadata_size
                    ));
                    continue;
                }
                if e.metadata.len() > limits.max_metadata_entries {
                    errors.push(format!(
                        "stream '{shown}' has too many structured metadata labels: '{}', limit: '{}'. Please see `limits_config.max_structured_metadata_entries_count` or contact your Loki administrator to increase it",
                        e.metadata.len(),
                        limits.max_metadata_entries
                    ));
                    continue;
                }
                let mut metadata: Vec<(String, String)> = Vec::with_capacity(e.metadata.len() + 1);
                for (k, v) in e.metadata.drain(..) {
                    let k = normalize_name(&k);
                    if k.is_empty() || k.chars().all(|c| c == '_') {
                        continue;
                    }
                    if let Some(slot) = metadata.iter_mut().find(|(n, _)| *n == k) {
                        slot.1 = v;
                    } else {
                        metadata.push((k, v));
                    }
                }
                e.metadata = metadata;
                if limits.discover_log_levels {
                    let level = detected_level(&labels, &e);
                    match e.metadata.iter_mut().find(|(k, _)| k == "detected_level") {
                        Some(slot) => slot.1 = level,
                        None => e.metadata.push(("detected_level".into(), level)),
                    }
                }
                entries.push(e);
            }
            if !entries.is_empty() {
                valid.push(PushStream { labels, entries });
            }
        }
        let mut outcome = PushOutcome::default();
        if valid.is_empty() {
            return Ok((None, outcome, (errors, refused)));
        }
        let bytes: usize = valid.iter().flat_map(|s| &s.entries).map(|e| e.line.len()).sum();
        let lines: usize = valid.iter().map(|s| s.entries.len()).sum();
        // Streams new to the store count against the stream limit.
        {
            let known = self.inner.streams.read().unwrap_or_else(|e| e.into_inner());
            let new: Vec<&PushStream> = valid
                .iter()
                .filter(|s| !known.contains_key(&s.labels.stable_hash()))
                .collect();
            if !new.is_empty() && known.len() + new.len() > limits.max_streams {
                return Err(PushError {
                    rejected: total,
                    status: 429,
                    message: format!(
                        "maximum active stream limit exceeded when trying to create stream {}, reduce the number of active streams (reduce labels or reduce label values), or contact your Loki administrator to see if the limit can be increased, user: 'fake'",
                        new[0].labels
                    ),
                });
            }
        }
        let mut state = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.pending_bytes > 0 && state.pending_bytes + bytes > limits.max_unindexed_bytes {
            return Err(PushError {
                rejected: total,
                status: 429,
                message: format!(
                    "ingestion backlog: {} bytes acknowledged but not yet indexed (limit {}); retry later",
                    state.pending_bytes, limits.max_unindexed_bytes
                ),
            });
        }
        if state.pending_bytes > 0 {
            // Until a commit has been measured, assume a slow indexer: under a burst
            // at start-up everything would otherwise be acknowledged before the
            // first measurement.
            let rate = if state.index_rate > 0.0 {
                state.index_rate
            } else {
                INDEX_RATE_PRIOR
            };
            let behind = (state.pending_bytes + bytes) as f64 / rate;
            if behind > limits.max_index_lag.as_secs_f64() / 2.0 {
                return Err(PushError {
                    rejected: total,
                    status: 429,
                    message: format!(
                        "ingestion backlog: the index is {behind:.1}s behind at {:.1} MB/s (limit {:.1}s); retry later",
                        rate / 1e6,
                        limits.max_index_lag.as_secs_f64() / 2.0
                    ),
                });
            }
        }
        let elapsed = state.bucket_at.elapsed().as_secs_f64();
        state.bucket = (state.bucket + elapsed * limits.ingest_rate_bytes).min(limits.ingest_burst_bytes);
        state.bucket_at = Instant::now();
        if (bytes as f64) > state.bucket {
            return Err(PushError {
                rejected: total,
                status: 429,
                message: format!(
                    "ingestion rate limit exceeded for user fake (limit: {} bytes/sec) while attempting to ingest '{lines}' lines totaling '{bytes}' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased",
                    limits.ingest_rate_bytes as u64
                ),
            });
        }
        state.bucket -= bytes as f64;
        for s in &mut valid {
            let id = s.labels.stable_hash();
            let before = s.entries.len();
            let mut last = state.last.get(&id).copied();
            s.entries.retain(|e| {
                let h = entry_hash(e);
                let dup = last == Some((e.ts, h));
                last = Some((e.ts, h));
                !dup
            });
            if let Some(l) = last {
                state.last.insert(id, l);
            }
            outcome.duplicates += before - s.entries.len();
        }
        valid.retain(|s| !s.entries.is_empty());
        outcome.accepted = valid.iter().map(|s| s.entries.len()).sum();
        outcome.bytes = valid.iter().flat_map(|s| &s.entries).map(|e| e.line.len()).sum();
        if valid.is_empty() {
            return Ok((None, outcome, (errors, refused)));
        }
        {
            let mut known = self.inner.streams.write().unwrap_or_else(|e| e.into_inner());
            for s in &valid {
                known
                    .entry(s.labels.stable_hash())
                    .or_insert_with(|| Arc::new(s.labels.clone()));
            }
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        let ticket = self.inner.wal.append(vec![encode_push(seq, &valid)]);
        state.pending_bytes += outcome.bytes;
        state.pending.push(Pending {
            seq,
            streams: valid,
            queued: Instant::now(),
        });
        drop(state);
        Ok((Some(ticket), outcome, (errors, refused)))
    }

    /// Commits everything pushed so far to the index now (tests, shutdown).
    pub fn flush(&self) -> Result<(), Error> {
        index_pending(&self.inner)
    }

    /// Partitions overlapping `[from, to]`, oldest first.
    fn partitions(&self, from: i64, to: i64) -> Vec<Arc<Partition>> {
        self.inner
            .parts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|p| p.start <= to && p.end > from)
            .cloned()
            .collect()
    }

    /// Streams with entries in `[from, to]` (at partition granularity) that the
    /// matchers select.
    pub fn streams(&self, matchers: &[Matcher], from: i64, to: i64) -> Vec<Arc<Labels>> {
        let mut seen: HashMap<u64, Arc<Labels>> = HashMap::new();
        for p in self.partitions(from, to) {
            for (id, l) in p.streams() {
                if matchers.iter().all(|m| m.matches_labels(&l)) {
                    seen.insert(id, l);
                }
            }
        }
        let mut out: Vec<Arc<Labels>> = seen.into_values().collect();
        out.sort();
        out
    }

    /// Visits the entries of a selection in time order (ties in index order),
    /// until the visitor breaks.
    pub fn scan(
        &self,
        sel: &Selection,
        mut visit: impl FnMut(&Visit<'_>) -> ControlFlow<()>,
    ) -> Result<ScanStats, Error> {
        let mut stats = ScanStats::default();
        let mut parts = self.partitions(sel.from, sel.to);
        if sel.direction == Direction::Backward {
            parts.reverse();
        }
        let exact = !sel.needles.is_empty();
        for p in parts {
            let streams: HashMap<u64, Arc<Labels>> = p
                .streams()
                .into_iter()
                .filter(|(_, l)| sel.matchers.iter().all(|m| m.matches_labels(l)))
                .collect();
            if streams.is_empty() {
                continue;
            }
            stats.partitions += 1;
            let ids: Vec<u64> = streams.keys().copied().collect();
            let searcher = p.searcher();
            // One searcher for the hits and the fetches: a commit between two
            // would renumber segments under the hits' addresses (seen as an
            // index-out-of-bounds panic when a partition's first commit landed
            // between them).
            let mut hits: Vec<Hit> = p.search(
                &searcher,
                &ids,
                sel.from,
                sel.to,
                needles_query(p.line_field(), &sel.needles),
            )?;
            stats.candidates += hits.len() as u64;
            hits.sort_by_key(|h| (h.ts, h.addr.segment_ord, h.addr.doc_id));
            if sel.direction == Direction::Backward {
                hits.reverse();
            }
            for h in hits {
                let Some(labels) = streams.get(&h.stream) else { continue };
                let (line, metadata) = if sel.fetch || exact {
                    p.fetch(&searcher, h.addr)?
                } else {
                    (String::new(), Vec::new())
                };
                if exact && !sel.needles.iter().all(|n| line.contains(n.as_str())) {
                    continue;
                }
                stats.visited += 1;
                stats.bytes += h.len;
                let v = Visit {
                    stream: labels,
                    ts: h.ts,
                    len: h.len,
                    line: &line,
                    metadata: &metadata,
                };
                if visit(&v).is_break() {
                    return Ok(stats);
                }
            }
        }
        Ok(stats)
    }

    /// Bytes on disk of the index (the log not counted).
    pub fn disk_bytes(&self) -> u64 {
        self.inner
            .parts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|p| p.disk_bytes())
            .sum()
    }
}

fn validate_labels(labels: &Labels, shown: &str, limits: &Limits) -> Result<(), String> {
    if labels.is_empty() {
        return Err("error at least one label pair is required per stream".into());
    }
    let counted = labels.iter().filter(|l| l.name != "service_name").count();
    if counted > limits.max_label_names {
        return Err(format!(
            "entry for stream '{shown}' has {counted} label names; limit {}",
            limits.max_label_names
        ));
    }
    for l in labels.iter() {
        if !sextant_model::is_valid_label_name(&l.name) {
            return Err(format!(
                "error parsing labels '{shown}' with error: invalid label name {:?}",
                l.name
            ));
        }
        if l.name.len() > limits.max_label_name_length {
            return Err(format!("stream '{shown}' has label name too long: '{}'", l.name));
        }
        if l.value.len() > limits.max_label_value_length {
            return Err(format!("stream '{shown}' has label value too long: '{}'", l.value));
        }
    }
    Ok(())
}

/// Loki's `GroupedErrors`: one message alone, else `N errors like: msg` per
/// distinct message, joined by `; `.
fn grouped_errors(errors: &[String]) -> String {
    if errors.len() == 1 {
        return errors[0].clone();
    }
    let mut groups: Vec<(&str, usize)> = Vec::new();
    for e in errors {
        match groups.iter_mut().find(|(m, _)| *m == e.as_str()) {
            Some(g) => g.1 += 1,
            None => groups.push((e, 1)),
        }
    }
    groups
        .iter()
        .map(|(m, n)| format!("{n} errors like: {m}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Indexes every pending push and commits the partitions it touched.
fn index_pending(inner: &Arc<Inner>) -> Result<(), Error> {
    let _indexing = inner.indexing.lock().unwrap_or_else(|e| e.into_inner());
    let (batch, batch_bytes): (Vec<Pending>, usize) = {
        let mut state = inner.state.lock().unwrap_or_else(|e| e.into_inner());
        let bytes = std::mem::take(&mut state.pending_bytes);
        (std::mem::take(&mut state.pending), bytes)
    };
    if batch.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    let width = inner.opts.partition.as_nanos() as i64;
    let mut touched: BTreeMap<i64, Arc<Partition>> = BTreeMap::new();
    let max_seq = batch.iter().map(|p| p.seq).max().unwrap_or(0);
    let oldest = batch.iter().map(|p| p.queued).min();
    for p in &batch {
        for s in &p.streams {
            let id = s.labels.stable_hash();
            for e in &s.entries {
                let start = e.ts.div_euclid(width) * width;
                let part = match touched.get(&start) {
                    Some(p) => p.clone(),
                    None => {
                        let existing = inner
                            .parts
                            .read()
                            .unwrap_or_else(|e| e.into_inner())
                            .get(&start)
                            .cloned();
                        let part = match existing {
                            Some(p) => p,
                            None => {
                                let dir = inner.opts.dir.join("parts").join(start.to_string());
                                let p = Arc::new(Partition::open(&dir, start, start + width)?);
                                inner
                                    .parts
                                    .write()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .entry(start)
                                    .or_insert(p)
                                    .clone()
                            }
                        };
                        touched.insert(start, part.clone());
                        part
                    }
                };
                if part.committed_seq.load(Ordering::SeqCst) >= p.seq {
                    continue;
                }
                part.add(id, &s.labels, e)?;
            }
        }
    }
    for part in touched.values() {
        part.commit(max_seq)?;
    }
    inner.counters.commits.fetch_add(1, Ordering::Relaxed);
    if batch_bytes >= 1 << 20 {
        let rate = batch_bytes as f64 / started.elapsed().as_secs_f64().max(1e-3);
        let mut state = inner.state.lock().unwrap_or_else(|e| e.into_inner());
        state.index_rate = if state.index_rate > 0.0 {
            0.7 * state.index_rate + 0.3 * rate
        } else {
            rate
        };
    }
    if let Some(t) = oldest {
        inner
            .counters
            .last_index_lag_us
            .store(t.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
    if inner.tail.receiver_count() > 0 {
        let all: Vec<PushStream> = batch.into_iter().flat_map(|p| p.streams).collect();
        let _ = inner.tail.send(Arc::new(all));
    }
    Ok(())
}

/// The indexer: commits pending pushes every `commit_interval`, checkpoints the
/// log so it stays short, closes idle partitions and applies retention.
fn indexer(inner: Arc<Inner>) {
    let mut last_checkpoint = Instant::now();
    let mut last_housekeeping = Instant::now();
    let mut last_commit = Instant::now();
    loop {
        {
            let state = inner.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.shutdown {
                drop(state);
                if let Err(e) = index_pending(&inner) {
                    tracing::error!(error = %e, "log index commit at shutdown failed");
                }
                return;
            }
            // Commits start once per interval; one that took the whole interval
            // (the index is behind) is followed at once by the next.
            let wait = inner.opts.commit_interval.saturating_sub(last_commit.elapsed());
            if !wait.is_zero() {
                let (state, _) = inner.wake.wait_timeout(state, wait).unwrap_or_else(|e| e.into_inner());
                drop(state);
                // Entries arriving right now join this commit if they are quick.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        last_commit = Instant::now();
        if let Err(e) = index_pending(&inner) {
            tracing::error!(error = %e, "log index commit failed; the entries stay in the write-ahead log");
            std::thread::sleep(Duration::from_secs(1));
            continue;
        }
        if last_checkpoint.elapsed() >= Duration::from_secs(30) {
            last_checkpoint = Instant::now();
            // The snapshot holds exactly the pushes queued since the last index
            // commit; everything before is in the index.
            let state = inner.state.lock().unwrap_or_else(|e| e.into_inner());
            let mut snapshot = Vec::new();
            for p in &state.pending {
                let rec = encode_push(p.seq, &p.streams);
                snapshot.extend_from_slice(&(rec.len() as u32).to_le_bytes());
                snapshot.extend_from_slice(&rec);
            }
            let _ticket = inner.wal.checkpoint(snapshot);
        }
        if last_housekeeping.elapsed() >= Duration::from_secs(60) {
            last_housekeeping = Instant::now();
            housekeeping(&inner);
        }
    }
}

fn housekeeping(inner: &Arc<Inner>) {
    let now = now_ns();
    let parts: Vec<Arc<Partition>> = inner
        .parts
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .cloned()
        .collect();
    for p in &parts {
        let idle = p.last_write.lock().unwrap_or_else(|e| e.into_inner()).elapsed() > Duration::from_secs(300);
        if p.is_open()
            && idle
            && p.end < now
            && let Err(e) = p.close()
        {
            tracing::warn!(error = %e, partition = p.start, "closing a log partition failed");
        }
    }
    let cutoff = now - inner.opts.retention.as_nanos() as i64;
    let expired: Vec<Arc<Partition>> = parts.into_iter().filter(|p| p.end <= cutoff).collect();
    if expired.is_empty() {
        return;
    }
    {
        let mut map = inner.parts.write().unwrap_or_else(|e| e.into_inner());
        for p in &expired {
            map.remove(&p.start);
        }
    }
    let live: HashMap<u64, Arc<Labels>> = inner
        .parts
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .flat_map(|p| p.streams())
        .collect();
    *inner.streams.write().unwrap_or_else(|e| e.into_inner()) = live;
    for p in expired {
        let _ = p.close();
        if let Err(e) = std::fs::remove_dir_all(&p.dir) {
            tracing::warn!(error = %e, dir = %p.dir.display(), "removing an expired log partition failed");
        } else {
            tracing::info!(partition = p.start, "log partition past retention removed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_570_818_238_000_000_001), "2019-10-11T18:23:58.000000001Z");
    }

    #[test]
    fn grouped_errors_as_loki() {
        assert_eq!(grouped_errors(&["a".into()]), "a");
        assert_eq!(
            grouped_errors(&["a".into(), "a".into(), "b".into()]),
            "2 errors like: a; 1 errors like: b"
        );
    }
}
