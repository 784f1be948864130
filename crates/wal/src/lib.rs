//! A write-ahead log for state that must survive `kill -9`: records (opaque bytes)
//! in numbered segment files, each record framed with its length and a CRC-32C, and
//! checkpoints (a snapshot of the owner's state) that let old segments go.
//!
//! Appending is group commit: [`Wal::append`] only queues the records and returns a
//! [`Ticket`]; one writer thread takes everything queued, writes it, calls
//! `fdatasync` once, and then completes every ticket of that batch. A ticket that
//! resolves `Ok` means the records are on disk. Queuing is synchronous and cheap, so
//! an owner can queue under its own lock, in the same order as it changes its state;
//! a checkpoint queued under that lock then holds exactly the records queued before
//! it.
//!
//! An owner that groups its writes itself (one thread that gathers many requests into
//! one record) writes with [`Wal::append_now`] and [`Wal::checkpoint_now`] instead, on
//! its own thread: the same writes and `fdatasync`, without handing each batch to the
//! writer thread and waiting to be woken. An owner uses one way or the other, since
//! the two are not ordered with each other.
//!
//! Opening replays the newest valid checkpoint and the segments after it. A record
//! whose length runs past the end of its file or whose checksum fails ends the
//! replay: the file is truncated there, later segments are removed, and the loss is
//! reported in [`ReplayStats`] (a torn write after a crash, or corruption), never
//! loaded as data and never a reason to refuse to start.
//!
//! This crate knows nothing of what the records mean.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Errors of the log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("write-ahead log {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// The writer thread has stopped (the log was closed, or an earlier write
    /// failed and the log refuses further writes).
    #[error("write-ahead log is closed: {0}")]
    Closed(String),
}

/// `Result` with this crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Settings of a log.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// The log's own directory.
    pub dir: PathBuf,
    /// A segment is closed and a new one started beyond this size.
    pub segment_bytes: u64,
}

impl WalOptions {
    /// Defaults (64 MiB segments) in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            segment_bytes: 64 << 20,
        }
    }
}

/// What replay found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Whether a checkpoint was loaded.
    pub checkpoint: bool,
    /// Records replayed after it.
    pub records: u64,
    /// Bytes of records replayed.
    pub bytes: u64,
    /// Segments read.
    pub segments: u64,
    /// Bytes dropped at a torn or corrupt tail (0 when the log was clean).
    pub truncated_bytes: u64,
    /// Where the log was cut, if it was: `segment:offset`.
    pub truncated_at: Option<String>,
    /// How long replay took.
    pub duration: Duration,
}

/// One thing replay hands back, in log order.
#[derive(Debug)]
pub enum Replayed<'a> {
    /// The snapshot of the newest checkpoint (first, if any).
    Checkpoint(&'a [u8]),
    /// A record appended after it.
    Record(&'a [u8]),
}

/// Completes when the records it was returned for are durable.
#[must_use = "a write is only durable once its ticket resolves Ok"]
pub struct Ticket(tokio::sync::oneshot::Receiver<Result<(), String>>);

impl Ticket {
    /// Waits until the records are on disk.
    pub async fn durable(self) -> Result<()> {
        match self.0.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Closed(e)),
            Err(_) => Err(Error::Closed("the writer stopped".into())),
        }
    }

    /// Waits from a thread that is not running async code.
    pub fn durable_blocking(self) -> Result<()> {
        match self.0.blocking_recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Closed(e)),
            Err(_) => Err(Error::Closed("the writer stopped".into())),
        }
    }
}

enum Command {
    Append(Vec<Vec<u8>>, tokio::sync::oneshot::Sender<Result<(), String>>),
    Checkpoint(Vec<u8>, tokio::sync::oneshot::Sender<Result<(), String>>),
}

/// Handle to an open log; cloning shares the writer.
#[derive(Clone)]
pub struct Wal {
    tx: mpsc::Sender<Command>,
    /// The writer, which the writer thread locks for each batch it takes from `tx`
    /// and [`Wal::append_now`] locks on its caller's thread.
    writer: std::sync::Arc<std::sync::Mutex<Writer>>,
    stats: std::sync::Arc<Counters>,
    spare: Spare,
}

/// Record buffers the writer is done with, handed back for reuse: large buffers
/// allocated afresh for every batch cost page faults (the allocator returns them to
/// the kernel) that show in a profile of a busy log.
type Spare = std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>;
const SPARE_BUFFERS: usize = 8;

/// Counters kept by the writer.
#[derive(Default, Debug)]
pub struct Counters {
    /// Batches written (one `fdatasync` each).
    pub syncs: std::sync::atomic::AtomicU64,
    /// Records written.
    pub records: std::sync::atomic::AtomicU64,
    /// Bytes written.
    pub bytes: std::sync::atomic::AtomicU64,
    /// Checkpoints written.
    pub checkpoints: std::sync::atomic::AtomicU64,
}

const RECORD: u8 = 1;
const HEADER: usize = 9;
const CHECKPOINT_MAGIC: &[u8; 8] = b"SXWALCK1";

fn segment_name(n: u64) -> String {
    format!("{n:08}.seg")
}

fn checkpoint_name(n: u64) -> String {
    format!("checkpoint.{n:08}")
}

fn number(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    name.strip_prefix(prefix)?.strip_suffix(suffix)?.parse().ok()
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|f| f.sync_all()).map_err(io_err(dir))
}

/// A record's frame header: payload length, checksum (of the kind byte and the
/// payload), kind.
fn frame_header(payload: &[u8]) -> [u8; 9] {
    let mut crc = crc32c::crc32c(&[RECORD]);
    crc = crc32c::crc32c_append(crc, payload);
    let mut h = [0u8; 9];
    h[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[4..8].copy_from_slice(&crc.to_le_bytes());
    h[8] = RECORD;
    h
}

/// Writes every slice, as `write_all` does for one.
fn write_all_vectored(file: &mut File, mut slices: &mut [std::io::IoSlice<'_>]) -> std::io::Result<()> {
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => std::io::IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads one checkpoint file: its snapshot if the file is whole and its checksum
/// holds.
fn read_checkpoint(path: &Path) -> Option<Vec<u8>> {
    let data = fs::read(path).ok()?;
    if data.len() < 20 || &data[..8] != CHECKPOINT_MAGIC {
        return None;
    }
    let len = u64::from_le_bytes(data[8..16].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(data[16..20].try_into().ok()?);
    let body = data.get(20..20 + len)?;
    (crc32c::crc32c(body) == crc).then(|| body.to_vec())
}

impl Wal {
    /// Opens (or creates) the log in `opts.dir`, handing every checkpoint and record
    /// to `replay` in order, and starts the writer.
    pub fn open(opts: WalOptions, mut replay: impl FnMut(Replayed<'_>)) -> Result<(Self, ReplayStats)> {
        let started = Instant::now();
        let dir = opts.dir.clone();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut segments = Vec::new();
        let mut checkpoints = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let e = e.map_err(io_err(&dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = number(&name, "", ".seg") {
                segments.push(n);
            } else if let Some(n) = number(&name, "checkpoint.", "") {
                checkpoints.push(n);
            } else if name.ends_with(".tmp") {
                // A checkpoint that never finished.
                let _ = fs::remove_file(e.path());
            }
        }
        segments.sort_unstable();
        checkpoints.sort_unstable();
        let mut stats = ReplayStats::default();
        // The newest checkpoint that reads back whole.
        let mut from = 0;
        while let Some(n) = checkpoints.pop() {
            if let Some(snapshot) = read_checkpoint(&dir.join(checkpoint_name(n))) {
                replay(Replayed::Checkpoint(&snapshot));
                stats.checkpoint = true;
                from = n;
                break;
            }
            tracing::warn!(checkpoint = n, "unreadable write-ahead log checkpoint ignored");
        }
        for n in checkpoints {
            let _ = fs::remove_file(dir.join(checkpoint_name(n)));
        }
        segments.retain(|n| {
            if *n < from {
                let _ = fs::remove_file(dir.join(segment_name(*n)));
                false
            } else {
                true
            }
        });
        let mut cut = false;
        let mut last = from.max(1);
        for (i, &n) in segments.iter().enumerate() {
            let path = dir.join(segment_name(n));
            if cut {
                let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                stats.truncated_bytes += size;
                let _ = fs::remove_file(&path);
                continue;
            }
            last = n;
            stats.segments += 1;
            let mut data = Vec::new();
            File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut data))
                .map_err(io_err(&path))?;
            let mut off = 0usize;
            while off < data.len() {
                let whole = data.len() - off >= HEADER && {
                    let len = u32::from_le_bytes(data[off..off + 4].try_into().expect("4 bytes")) as usize;
                    let crc = u32::from_le_bytes(data[off + 4..off + 8].try_into().expect("4 bytes"));
                    data.len() - off - HEADER >= len && {
                        let body = &data[off + 8..off + HEADER + len];
                        if crc32c::crc32c(body) == crc && body[0] == RECORD {
                            replay(Replayed::Record(&body[1..]));
                            stats.records += 1;
                            stats.bytes += len as u64;
                            off += HEADER + len;
                            true
                        } else {
                            false
                        }
                    }
                };
                if !whole {
                    stats.truncated_bytes += (data.len() - off) as u64;
                    stats.truncated_at = Some(format!("{}:{off}", segment_name(n)));
                    OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .and_then(|f| {
                            f.set_len(off as u64)?;
                            f.sync_all()
                        })
                        .map_err(io_err(&path))?;
                    cut = true;
                    if i + 1 < segments.len() {
                        tracing::warn!(segment = n, "write-ahead log cut before its last segment");
                    }
                    break;
                }
            }
        }
        if stats.truncated_bytes > 0 {
            tracing::warn!(
                bytes = stats.truncated_bytes,
                at = stats.truncated_at.as_deref().unwrap_or(""),
                dir = %dir.display(),
                "write-ahead log had a torn or corrupt tail; cut there"
            );
        }
        stats.duration = started.elapsed();
        let path = dir.join(segment_name(last));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let size = file.metadata().map_err(io_err(&path))?.len();
        sync_dir(&dir)?;
        let (tx, rx) = mpsc::channel();
        let counters = std::sync::Arc::new(Counters::default());
        let spare = Spare::default();
        let writer = std::sync::Arc::new(std::sync::Mutex::new(Writer {
            checkpointing: Default::default(),
            spare: spare.clone(),
            pending: Vec::new(),
            dir,
            opts,
            file,
            segment: last,
            size,
            counters: counters.clone(),
            failed: None,
        }));
        std::thread::Builder::new()
            .name("wal-writer".into())
            .spawn({
                let writer = writer.clone();
                move || Writer::run(&writer, rx)
            })
            .map_err(io_err(Path::new("wal-writer thread")))?;
        Ok((
            Self {
                tx,
                writer,
                stats: counters,
                spare,
            },
            stats,
        ))
    }

    /// Writes `records` and syncs them on the calling thread; `Ok` means they are on
    /// disk. For an owner that gathers its own groups (see the crate's docs).
    pub fn append_now(&self, records: Vec<Vec<u8>>) -> Result<()> {
        let (tx, _) = tokio::sync::oneshot::channel();
        let mut batch = [Command::Append(records, tx)];
        self.writer
            .lock()
            .expect("write-ahead log writer poisoned")
            .commit(&mut batch)
            .map_err(Error::Closed)
    }

    /// [`Wal::checkpoint`] for an owner that writes with [`Wal::append_now`]: the
    /// segment is closed on the calling thread, and the snapshot written by a thread
    /// of its own, as there; the ticket resolves once it is on disk.
    pub fn checkpoint_now(&self, snapshot: Vec<u8>) -> Ticket {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut batch = [Command::Checkpoint(snapshot, tx)];
        let result = self
            .writer
            .lock()
            .expect("write-ahead log writer poisoned")
            .commit(&mut batch);
        // Once the segment is closed the ticket belongs to the snapshot's writer (a
        // dummy is left here); before that, a failure answers it here.
        let [Command::Checkpoint(_, tx)] = batch else {
            unreachable!("the batch is one checkpoint")
        };
        let _ = tx.send(result);
        Ticket(rx)
    }

    /// Queues records; the ticket resolves once they are on disk.
    pub fn append(&self, records: Vec<Vec<u8>>) -> Ticket {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Err(mpsc::SendError(Command::Append(_, tx))) = self.tx.send(Command::Append(records, tx)) {
            let _ = tx.send(Err("the writer stopped".into()));
        }
        Ticket(rx)
    }

    /// Queues a checkpoint: `snapshot` must be the owner's state with every record
    /// queued before this call applied (and none after). Once written, segments
    /// before it are deleted.
    pub fn checkpoint(&self, snapshot: Vec<u8>) -> Ticket {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Err(mpsc::SendError(Command::Checkpoint(_, tx))) = self.tx.send(Command::Checkpoint(snapshot, tx)) {
            let _ = tx.send(Err("the writer stopped".into()));
        }
        Ticket(rx)
    }

    /// An empty buffer to build the next record in: one the writer has finished
    /// with, if any, so its capacity is reused.
    pub fn buffer(&self) -> Vec<u8> {
        self.spare.lock().expect("poisoned").pop().unwrap_or_default()
    }

    /// The writer's counters.
    pub fn counters(&self) -> &Counters {
        &self.stats
    }
}

/// A checkpoint to write: segment `n` starts after it.
struct CheckpointJob {
    dir: PathBuf,
    n: u64,
    counters: std::sync::Arc<Counters>,
    /// Held while a checkpoint is written, so two never interleave.
    lock: std::sync::Arc<std::sync::Mutex<()>>,
}

type PendingCheckpoint =
    std::sync::Mutex<Option<(CheckpointJob, Vec<u8>, tokio::sync::oneshot::Sender<Result<(), String>>)>>;

fn run_checkpoint(pending: &PendingCheckpoint) {
    let Some((job, snapshot, tx)) = pending.lock().expect("poisoned").take() else {
        return;
    };
    let _one_at_a_time = job.lock.lock().expect("poisoned");
    let result = job.write(&snapshot).map_err(|e| e.to_string());
    if let Err(e) = &result {
        tracing::error!(error = %e, "write-ahead log checkpoint failed; earlier segments are kept");
    }
    let _ = tx.send(result);
}

impl CheckpointJob {
    /// Writes the snapshot as checkpoint `n` (atomically: a temporary file renamed),
    /// then deletes the segments and checkpoints it replaces.
    fn write(&self, snapshot: &[u8]) -> Result<()> {
        let (dir, n) = (&self.dir, self.n);
        let tmp = dir.join(format!("{}.tmp", checkpoint_name(n)));
        // The header, then the snapshot as it is: a head of tens of megabytes is
        // not copied into one buffer first.
        let mut header = Vec::with_capacity(20);
        header.extend_from_slice(CHECKPOINT_MAGIC);
        header.extend_from_slice(&(snapshot.len() as u64).to_le_bytes());
        header.extend_from_slice(&crc32c::crc32c(snapshot).to_le_bytes());
        File::create(&tmp)
            .and_then(|mut f| {
                f.write_all(&header)?;
                f.write_all(snapshot)?;
                f.sync_all()
            })
            .map_err(io_err(&tmp))?;
        let path = dir.join(checkpoint_name(n));
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        sync_dir(dir)?;
        for e in fs::read_dir(dir).map_err(io_err(dir))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let old = number(&name, "", ".seg").is_some_and(|s| s < n)
                || number(&name, "checkpoint.", "").is_some_and(|c| c < n);
            if old {
                let _ = fs::remove_file(e.path());
            }
        }
        self.counters
            .checkpoints
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

struct Writer {
    checkpointing: std::sync::Arc<std::sync::Mutex<()>>,
    spare: Spare,
    /// The batch's records with their frame headers, written by one `writev` (the
    /// records are not copied into one buffer), then handed back as spare buffers.
    pending: Vec<([u8; 9], Vec<u8>)>,
    dir: PathBuf,
    opts: WalOptions,
    file: File,
    segment: u64,
    size: u64,
    counters: std::sync::Arc<Counters>,
    /// Set when a write failed and could not be undone: the log's tail is unknown,
    /// and every later write is refused with this.
    failed: Option<String>,
}

impl Writer {
    /// The writer thread: takes what is queued in batches and answers each batch's
    /// tickets once it is written.
    fn run(writer: &std::sync::Mutex<Self>, rx: mpsc::Receiver<Command>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
                if batch.len() >= 4096 {
                    break;
                }
            }
            let reply = writer
                .lock()
                .expect("write-ahead log writer poisoned")
                .commit(&mut batch);
            for c in batch {
                let (Command::Append(_, tx) | Command::Checkpoint(_, tx)) = c;
                let _ = tx.send(reply.clone());
            }
        }
    }

    /// Writes a batch and syncs it, or refuses it; after a failure the log is left
    /// ready for the next batch if it can be.
    fn commit(&mut self, batch: &mut [Command]) -> std::result::Result<(), String> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.write(batch);
        if let Err(e) = &result {
            // A failed write (a full disk, say) may have left part of a record:
            // cut the segment back to its last whole record, so later writes
            // follow whole records and succeed once space returns. If even that
            // fails, the log's tail is unknown and it refuses further writes.
            match self.file.set_len(self.size).and_then(|()| self.file.sync_data()) {
                Ok(()) => tracing::error!(error = %e, "write-ahead log write failed; the batch was refused"),
                Err(cut) => {
                    tracing::error!(error = %e, cut = %cut, "write-ahead log write failed and could not be undone; refusing further writes");
                    self.failed = Some(e.to_string());
                }
            }
        }
        result.map_err(|e| e.to_string())
    }

    /// Writes a batch: records go to the current segment, a checkpoint closes it.
    /// One `fdatasync` covers the records.
    fn write(&mut self, batch: &mut [Command]) -> Result<()> {
        let result = self.write_batch(batch);
        // Whatever was not written (after a failure) is dropped with the batch's reply.
        self.recycle();
        result
    }

    fn write_batch(&mut self, batch: &mut [Command]) -> Result<()> {
        let mut pending_bytes = 0u64;
        for c in batch.iter_mut() {
            match c {
                Command::Append(records, _) => {
                    for r in records.drain(..) {
                        pending_bytes += 9 + r.len() as u64;
                        self.pending.push((frame_header(&r), r));
                        self.counters.records.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                Command::Checkpoint(snapshot, tx) => {
                    self.flush()?;
                    pending_bytes = 0;
                    // Records after this point go to a new segment; the checkpoint file
                    // is written beside them by its own thread, so appends do not wait
                    // for a large snapshot to reach the disk. Its ticket resolves when
                    // it has (and the segments before it are deleted).
                    self.rotate()?;
                    let snapshot = std::mem::take(snapshot);
                    let (dummy, _) = tokio::sync::oneshot::channel();
                    let tx = std::mem::replace(tx, dummy);
                    let job = CheckpointJob {
                        dir: self.dir.clone(),
                        n: self.segment,
                        counters: self.counters.clone(),
                        lock: self.checkpointing.clone(),
                    };
                    let job = std::sync::Arc::new(std::sync::Mutex::new(Some((job, snapshot, tx))));
                    let spawned = std::thread::Builder::new().name("wal-checkpoint".into()).spawn({
                        let job = job.clone();
                        move || run_checkpoint(&job)
                    });
                    if spawned.is_err() {
                        run_checkpoint(&job);
                    }
                }
            }
            if self.size + pending_bytes > self.opts.segment_bytes && !self.pending.is_empty() {
                self.flush()?;
                pending_bytes = 0;
                self.rotate()?;
            }
        }
        self.flush()
    }

    /// Writes the pending records and syncs them.
    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut slices: Vec<std::io::IoSlice<'_>> = Vec::with_capacity(2 * self.pending.len());
        let mut bytes = 0u64;
        for (header, record) in &self.pending {
            slices.push(std::io::IoSlice::new(header));
            slices.push(std::io::IoSlice::new(record));
            bytes += (header.len() + record.len()) as u64;
        }
        let path = self.dir.join(segment_name(self.segment));
        write_all_vectored(&mut self.file, &mut slices).map_err(io_err(&path))?;
        self.file.sync_data().map_err(io_err(&path))?;
        self.size += bytes;
        self.counters
            .bytes
            .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
        self.counters.syncs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.recycle();
        Ok(())
    }

    /// Hands the pending records' buffers back for reuse.
    fn recycle(&mut self) {
        let mut spare = self.spare.lock().expect("poisoned");
        for (_, mut r) in self.pending.drain(..) {
            if spare.len() < SPARE_BUFFERS {
                r.clear();
                spare.push(r);
            }
        }
    }

    fn rotate(&mut self) -> Result<()> {
        self.segment += 1;
        let path = self.dir.join(segment_name(self.segment));
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        self.size = 0;
        sync_dir(&self.dir)
    }
}
