use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use duckdb::Connection;
use prometheus_client::registry::Registry as MetricsRegistry;
use sextant_model::{Labels, Matcher, MetricMetadata, Sample, SeriesData};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::StoreMetrics;
use crate::registry::Registry;
use crate::writer::{self, Blocks, Command, Writer};
use crate::{Error, Result, format};

/// A block is compacted once it ended this long ago.
const COMPACT_GRACE_MS: i64 = 3600 * 1000;

/// How the store is set up.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Directory holding `FORMAT` and `metrics.duckdb`.
    pub data_dir: PathBuf,
    /// How long samples are kept; `None` keeps them forever.
    pub retention: Option<Duration>,
    /// Append requests that may wait for the writer before new ones are refused.
    pub max_queued_requests: usize,
    /// Reading connections (concurrent sample queries).
    pub reader_connections: usize,
}

impl StoreOptions {
    /// Defaults for `data_dir`: 15 days of retention, as Prometheus keeps.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            retention: Some(Duration::from_secs(15 * 24 * 3600)),
            max_queued_requests: 256,
            reader_connections: 4,
        }
    }
}

/// The samples of one series in an append.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSamples {
    /// The series (must include a valid `__name__`).
    pub labels: Labels,
    /// Samples in time order.
    pub samples: Vec<Sample>,
}

/// A stored series, as returned by an append. Appending by reference skips hashing and
/// comparing the label set, like Prometheus' `storage.SeriesRef`; references stay valid
/// for the life of the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesRef(pub(crate) crate::SeriesId);

/// One append: samples of any number of series plus metadata, stored atomically.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppendRequest {
    /// Series and their samples.
    pub series: Vec<SeriesSamples>,
    /// Samples of series given by the references earlier appends returned.
    pub by_ref: Vec<(SeriesRef, Vec<Sample>)>,
    /// Metric family metadata to record (`family name`, metadata).
    pub metadata: Vec<(String, MetricMetadata)>,
}

/// A series of an append after its registry lookup, done on the caller's task so the
/// writer thread does as little as possible.
pub(crate) struct ResolvedSeries {
    /// The id if the series already existed at lookup time.
    pub id: Option<crate::SeriesId>,
    /// `labels.hash64()`.
    pub hash: u64,
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// An [`AppendRequest`] whose series were looked up and, where new, validated.
pub(crate) struct ResolvedAppend {
    /// The request's `series` first, then its `by_ref` entries.
    pub series: Vec<ResolvedSeries>,
    /// How many leading entries of `series` came with labels (and get a ref back).
    pub labeled: usize,
    pub metadata: Vec<(String, MetricMetadata)>,
}

impl ResolvedAppend {
    pub(crate) fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }
}

/// What happened to an append's samples.
///
/// The rule for samples that are not newer than their series' newest sample: the same
/// timestamp with a bit-identical value is a retry and is ignored (`duplicates`);
/// anything else older or at the same time is rejected (`out_of_order`,
/// `duplicate_conflicts`), while the rest of the request is stored. Samples older than
/// the retention cutoff are rejected as `too_old`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Samples stored.
    pub accepted: u64,
    /// Exact repeats of stored samples, ignored.
    pub duplicates: u64,
    /// Samples older than their series' newest sample, rejected.
    pub out_of_order: u64,
    /// Samples at an existing timestamp with a different value, rejected.
    pub duplicate_conflicts: u64,
    /// Samples older than the retention cutoff, rejected.
    pub too_old: u64,
    /// Series created by this append.
    pub new_series: u64,
    /// The reference of each entry of the request's `series`, in order.
    pub refs: Vec<SeriesRef>,
}

impl AppendOutcome {
    /// Samples rejected for any reason (duplicates are not rejections).
    pub fn rejected(&self) -> u64 {
        self.out_of_order + self.duplicate_conflicts + self.too_old
    }
}

/// Handle to the metrics store; cheap to clone.
#[derive(Clone)]
pub struct MetricsStore {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Arc<RwLock<Registry>>,
    blocks: Arc<RwLock<Blocks>>,
    tx: mpsc::Sender<Command>,
    readers: Mutex<Vec<Connection>>,
    reader_template: Mutex<Connection>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    retention: Option<Duration>,
}

impl MetricsStore {
    /// Opens (or creates) the store in `options.data_dir`, loading the series registry.
    /// Blocking: call it before serving, or from `spawn_blocking`.
    pub fn open(options: StoreOptions, metrics_registry: &mut MetricsRegistry) -> Result<Self> {
        format::check_or_init(&options.data_dir)?;
        let conn = Connection::open(options.data_dir.join("metrics.duckdb"))?;
        writer::create_schema(&conn)?;
        let mut registry = Registry::default();
        let blocks = writer::load(&conn, &mut registry)?;
        let metrics = StoreMetrics::new(metrics_registry);
        metrics.active_series.set(registry.len() as i64);

        let registry = Arc::new(RwLock::new(registry));
        let blocks = Arc::new(RwLock::new(blocks));
        let (tx, rx) = mpsc::channel(options.max_queued_requests.max(1));
        let w = Writer::new(conn.try_clone()?, registry.clone(), blocks.clone(), metrics);
        let writer_thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || w.run(rx))
            .map_err(|source| Error::Io {
                context: "starting the writer thread".into(),
                source,
            })?;
        let readers = (0..options.reader_connections.max(1))
            .map(|_| conn.try_clone())
            .collect::<duckdb::Result<Vec<_>>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                registry,
                blocks,
                tx,
                readers: Mutex::new(readers),
                reader_template: Mutex::new(conn),
                writer_thread: Mutex::new(Some(writer_thread)),
                retention: options.retention,
            }),
        })
    }

    /// Appends, waiting for room in the write queue, and resolves once the samples are
    /// durable. Use for producers that should slow down under load (scrapes).
    pub async fn append(&self, req: AppendRequest) -> Result<AppendOutcome> {
        let req = self.resolve(req)?;
        let (reply, rx) = oneshot::channel();
        let cmd = self.append_command(req, reply);
        self.inner.tx.send(cmd).await.map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Appends, failing at once with [`Error::Overloaded`] when the write queue is full,
    /// and resolves once the samples are durable. Use for clients that retry (remote_write).
    pub async fn try_append(&self, req: AppendRequest) -> Result<AppendOutcome> {
        let req = self.resolve(req)?;
        let (reply, rx) = oneshot::channel();
        let cmd = self.append_command(req, reply);
        self.inner.tx.try_send(cmd).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::Overloaded(self.inner.tx.max_capacity()),
            mpsc::error::TrySendError::Closed(_) => Error::Closed,
        })?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Looks every series up in the registry and validates the ones it does not know,
    /// rejecting the whole request before anything is written if one is invalid.
    fn resolve(&self, req: AppendRequest) -> Result<ResolvedAppend> {
        let reg = self.read_registry();
        let labeled = req.series.len();
        let mut series = Vec::with_capacity(labeled + req.by_ref.len());
        for s in req.series {
            let hash = s.labels.hash64();
            let id = reg.id_of(&s.labels, hash);
            if id.is_none() {
                validate(&s.labels)?;
            }
            series.push(ResolvedSeries {
                id,
                hash,
                labels: s.labels,
                samples: s.samples,
            });
        }
        for (r, samples) in req.by_ref {
            if r.0 as usize >= reg.len() {
                return Err(Error::InvalidSeries {
                    series: format!("reference {}", r.0),
                    reason: "no such series in this store".into(),
                });
            }
            series.push(ResolvedSeries {
                id: Some(r.0),
                hash: 0,
                labels: Labels::empty(),
                samples,
            });
        }
        Ok(ResolvedAppend {
            series,
            labeled,
            metadata: req.metadata,
        })
    }

    fn append_command(&self, req: ResolvedAppend, reply: oneshot::Sender<Result<AppendOutcome>>) -> Command {
        let cutoff_ms = self
            .inner
            .retention
            .map(|r| sextant_model::time::now_ms() - r.as_millis() as i64)
            .unwrap_or(i64::MIN);
        Command::Append {
            req,
            cutoff_ms,
            arrived: Instant::now(),
            reply,
        }
    }

    /// Drops blocks entirely older than the retention period; returns how many.
    pub async fn enforce_retention(&self) -> Result<usize> {
        let Some(retention) = self.inner.retention else {
            return Ok(0);
        };
        let cutoff_ms = sextant_model::time::now_ms() - retention.as_millis() as i64;
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Command::Retention { cutoff_ms, reply })
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Compacts closed blocks (those that ended more than an hour ago) into the compact
    /// layout; returns how many. Samples may still arrive for a compacted block (a new
    /// series backfilled, say); they are merged at the next compaction.
    pub async fn compact(&self) -> Result<usize> {
        self.compact_before(sextant_model::time::now_ms() - COMPACT_GRACE_MS)
            .await
    }

    /// Compacts every block that ended before `before_ms` (for imports of old data).
    pub async fn compact_before(&self, before_ms: i64) -> Result<usize> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Command::Compact { before_ms, reply })
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Appends SLO slices and records how far their revisions are computed, in one
    /// transaction; resolves once durable.
    pub async fn append_slices(&self, rows: Vec<crate::SliceRow>, progress: Vec<crate::RevisionRow>) -> Result<()> {
        if rows.is_empty() && progress.is_empty() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Command::AppendSlices { rows, progress, reply })
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Deletes SLO slices ending at or before `cutoff_ms`; returns how many.
    pub async fn drop_slices_before(&self, cutoff_ms: i64) -> Result<usize> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Command::SliceRetention { cutoff_ms, reply })
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// The ends of each SLI's oldest and newest stored slices.
    pub async fn slice_bounds(&self) -> Result<HashMap<String, (i64, i64)>> {
        self.with_reader(crate::slices::bounds).await
    }

    /// Window sums over SLO slices ending at `end_ms` (see [`crate::WindowSum`]), for
    /// the SLIs of `filter`; `slice_target` counts time slices below it.
    pub async fn slice_sums(
        &self,
        end_ms: i64,
        windows_ms: Vec<i64>,
        filter: crate::SliceFilter,
        slice_target: Option<f64>,
    ) -> Result<HashMap<String, Vec<crate::WindowSum>>> {
        self.with_reader(move |c| crate::slices::sums(c, end_ms, &windows_ms, &filter, slice_target))
            .await
    }

    /// Records SLO revisions (inserted or replaced by key); resolves once durable.
    pub async fn put_slo_revisions(&self, rows: Vec<crate::RevisionRow>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Command::PutRevisions { rows, reply })
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Every recorded SLO revision.
    pub async fn slo_revisions(&self) -> Result<Vec<crate::RevisionRow>> {
        self.with_reader(crate::slices::revisions).await
    }

    /// The slices of `sli` in `(from_ms, to_ms]`.
    pub async fn slice_range(&self, sli: String, from_ms: i64, to_ms: i64) -> Result<Vec<crate::SliceRow>> {
        self.with_reader(move |c| crate::slices::range(c, &sli, from_ms, to_ms))
            .await
    }

    /// Runs `f` on a reader connection off the async executor.
    async fn with_reader<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = store.reader()?;
            let out = f(&conn);
            store.inner.readers.lock().expect("poisoned").push(conn);
            out
        })
        .await
        .map_err(|e| Error::CommitFailed(format!("slice query task: {e}")))?
    }

    /// Commits what is queued, checkpoints the database and stops the writer. Appends
    /// after this fail with [`Error::Closed`].
    pub async fn close(&self) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        if self.inner.tx.send(Command::Shutdown { reply }).await.is_ok() {
            let _ = rx.await;
        }
        let handle = self.inner.writer_thread.lock().expect("poisoned").take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        Ok(())
    }

    /// `(file_bytes, used_bytes)` of the database: the file's size, and the part in use.
    /// Blocks freed by dropped raw tables stay in the file and are reused by later
    /// writes, so `used_bytes` is what the data occupies.
    pub async fn disk_usage(&self) -> Result<(u64, u64)> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = store.reader()?;
            let r = conn.query_row(
                "SELECT block_size::BIGINT, total_blocks::BIGINT, used_blocks::BIGINT FROM pragma_database_size()",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)),
            );
            store.inner.readers.lock().expect("poisoned").push(conn);
            let (block, total, used) = r?;
            Ok(((block * total) as u64, (block * used) as u64))
        })
        .await
        .map_err(|e| Error::CommitFailed(format!("reader task failed: {e}")))?
    }

    /// Number of series known.
    pub fn series_count(&self) -> usize {
        self.read_registry().len()
    }

    fn read_registry(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.inner.registry.read().expect("registry lock poisoned")
    }

    /// Ids of series matching any of `matcher_sets` with samples in `[start, end]`.
    fn matching_ids(&self, reg: &Registry, matcher_sets: &[Vec<Matcher>], start: i64, end: i64) -> Vec<u64> {
        let mut ids: Vec<u64> = if matcher_sets.is_empty() {
            (0..reg.len() as u64).collect()
        } else {
            matcher_sets.iter().flat_map(|m| reg.select(m)).collect()
        };
        ids.sort_unstable();
        ids.dedup();
        ids.retain(|id| reg.overlaps(*id, start, end));
        ids
    }

    /// Label sets of series matching any of `matcher_sets` (all series when empty) with
    /// samples in `[start, end]`, sorted.
    pub fn series(&self, matcher_sets: &[Vec<Matcher>], start: i64, end: i64) -> Vec<Arc<Labels>> {
        let reg = self.read_registry();
        let mut out: Vec<Arc<Labels>> = self
            .matching_ids(&reg, matcher_sets, start, end)
            .into_iter()
            .map(|id| reg.entry(id).labels.clone())
            .collect();
        out.sort();
        out
    }

    /// Label names used by the matching series, sorted.
    pub fn label_names(&self, matcher_sets: &[Vec<Matcher>], start: i64, end: i64) -> Vec<String> {
        let reg = self.read_registry();
        let names: BTreeSet<&str> = self
            .matching_ids(&reg, matcher_sets, start, end)
            .into_iter()
            .flat_map(|id| reg.entry(id).labels.iter().map(|l| l.name.as_str()))
            .collect();
        names.into_iter().map(str::to_owned).collect()
    }

    /// Values of label `name` in the matching series, sorted.
    pub fn label_values(&self, name: &str, matcher_sets: &[Vec<Matcher>], start: i64, end: i64) -> Vec<String> {
        let reg = self.read_registry();
        let values: BTreeSet<&str> = self
            .matching_ids(&reg, matcher_sets, start, end)
            .into_iter()
            .filter_map(|id| reg.entry(id).labels.get(name))
            .collect();
        values.into_iter().map(str::to_owned).collect()
    }

    /// Metadata per metric family, optionally for one `metric`, at most `limit` families.
    pub fn metadata(&self, metric: Option<&str>, limit: Option<usize>) -> BTreeMap<String, Vec<MetricMetadata>> {
        let reg = self.read_registry();
        reg.metadata
            .iter()
            .filter(|(name, _)| metric.is_none_or(|m| m == name.as_str()))
            .map(|(name, m)| (name.clone(), vec![m.clone()]))
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .take(limit.unwrap_or(usize::MAX))
            .collect()
    }

    /// Samples in `[start, end]` of every series matching `matchers`, series sorted by
    /// labels, samples by time.
    pub async fn select(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<SeriesData>> {
        self.select_many(std::slice::from_ref(&matchers.to_vec()), start, end)
            .await
    }

    /// Samples in `[start, end]` of every series matching any of `matcher_sets`, in one
    /// read (callers that evaluate many queries over the same recent data fetch it
    /// once), series sorted by labels, samples by time.
    pub async fn select_many(&self, matcher_sets: &[Vec<Matcher>], start: i64, end: i64) -> Result<Vec<SeriesData>> {
        let (ids, labels): (Vec<u64>, Vec<Arc<Labels>>) = {
            let reg = self.read_registry();
            let mut ids: Vec<u64> = matcher_sets.iter().flat_map(|m| reg.select(m)).collect();
            ids.sort_unstable();
            ids.dedup();
            // The reader wants ids sorted.
            ids.into_iter()
                .filter(|id| reg.overlaps(*id, start, end))
                .map(|id| (id, reg.entry(id).labels.clone()))
                .unzip()
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // A compaction may drop a raw table between our snapshot of the block list and
        // the query; then the snapshot is stale and one retry with a fresh one suffices.
        let mut attempt = 0;
        let rows = loop {
            let blocks = self.inner.blocks.read().expect("poisoned").clone();
            let store = self.clone();
            let ids_for_query = ids.clone();
            let result = tokio::task::spawn_blocking(move || {
                let conn = store.reader()?;
                let rows = writer::read_samples(&conn, &blocks, &ids_for_query, start, end);
                store.inner.readers.lock().expect("poisoned").push(conn);
                rows
            })
            .await
            .map_err(|e| Error::CommitFailed(format!("reader task failed: {e}")))?;
            match result {
                Err(e) if attempt < 2 => {
                    attempt += 1;
                    tracing::debug!(error = %e, "retrying a read after a concurrent compaction");
                }
                other => break other?,
            }
        };
        let mut out: Vec<SeriesData> = rows
            .into_iter()
            .zip(labels)
            .filter(|(samples, _)| !samples.is_empty())
            .map(|(samples, labels)| SeriesData { labels, samples })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    fn reader(&self) -> Result<Connection> {
        if let Some(c) = self.inner.readers.lock().expect("poisoned").pop() {
            return Ok(c);
        }
        Ok(self.inner.reader_template.lock().expect("poisoned").try_clone()?)
    }
}

/// Rejects a series the store cannot hold.
fn validate(labels: &Labels) -> Result<()> {
    let invalid = |reason: String| Error::InvalidSeries {
        series: labels.to_string(),
        reason,
    };
    if labels.metric_name().is_none() {
        return Err(invalid("missing metric name".into()));
    }
    labels.validate().map_err(|e| invalid(e.to_string()))
}
