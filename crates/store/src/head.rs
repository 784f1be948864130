//! The head: every series' samples that are not yet in a DuckDB block, in memory as
//! Gorilla chunks ([`crate::chunk`]), made durable by the store's write-ahead log.
//!
//! Series are spread over lock stripes by id, so the appending thread, the flushing
//! thread and readers contend only when they touch the same stripe at the same time.
//! Only the store's head writer appends; the block writer seals and drops chunks it
//! has flushed; readers decode under the stripe lock.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use sextant_model::Sample;

use crate::chunk::Chunk;
use crate::registry::SeriesId;
use crate::writer::BLOCK_MS;

const STRIPES: usize = 1024;

/// Consecutive series ids in runs of this many share a stripe and sit side by side in
/// it. A commit group's series are mostly consecutive ids (a target's or a sender's
/// series were created together), so an append takes each stripe's lock once per run
/// of ids instead of once per series, and walks the stripe's slots in order.
const ID_RUN: usize = 64;

/// One series' chunks.
#[derive(Default)]
struct SeriesHead {
    /// The newest chunk, the one appends write to, held inline: an append then
    /// follows no pointer to find it.
    newest: Option<Chunk>,
    /// The older chunks, oldest first.
    older: Vec<Chunk>,
}

impl SeriesHead {
    fn is_empty(&self) -> bool {
        self.newest.is_none()
    }

    fn len(&self) -> usize {
        self.older.len() + usize::from(self.newest.is_some())
    }

    /// The chunks, oldest first.
    fn chunks(&self) -> impl Iterator<Item = &Chunk> {
        self.older.iter().chain(&self.newest)
    }

    fn chunks_mut(&mut self) -> impl Iterator<Item = &mut Chunk> {
        self.older.iter_mut().chain(&mut self.newest)
    }

    /// Makes `c`, newer than every chunk held, the newest.
    fn push(&mut self, c: Chunk) {
        if let Some(previous) = self.newest.replace(c) {
            self.older.push(previous);
        }
    }

    /// Keeps the chunks `keep` accepts, in order.
    fn retain(&mut self, mut keep: impl FnMut(&Chunk) -> bool) {
        self.older.retain(&mut keep);
        if self.newest.as_ref().is_some_and(|c| !keep(c)) {
            self.newest = self.older.pop();
        }
        if self.older.is_empty() {
            self.older = Vec::new();
        }
    }
}

/// The in-memory head.
pub(crate) struct Head {
    stripes: Box<[Mutex<Vec<SeriesHead>>]>,
    /// Chunks per block, to know which blocks the head holds.
    blocks: Mutex<BTreeMap<i64, u64>>,
    /// Series with at least one chunk.
    pub active_series: AtomicI64,
    pub chunks: AtomicI64,
    pub samples: AtomicI64,
    /// Bytes held by chunks (inline and heap).
    pub chunk_bytes: AtomicI64,
}

/// Series `id`'s stripe and its index in that stripe.
fn slot(id: SeriesId) -> (usize, usize) {
    let id = id as usize;
    let run = id / ID_RUN;
    (run % STRIPES, run / STRIPES * ID_RUN + id % ID_RUN)
}

impl Head {
    pub fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::new(Vec::new())).collect(),
            blocks: Mutex::new(BTreeMap::new()),
            active_series: AtomicI64::new(0),
            chunks: AtomicI64::new(0),
            samples: AtomicI64::new(0),
            chunk_bytes: AtomicI64::new(0),
        }
    }

    fn stripe(&self, i: usize) -> std::sync::MutexGuard<'_, Vec<SeriesHead>> {
        self.stripes[i].lock().expect("head stripe poisoned")
    }

    /// Slot `i` of a stripe, about to receive chunks: created if the stripe is shorter,
    /// and counted as active if it holds none yet.
    fn series_for_chunks<'s>(&self, stripe: &'s mut Vec<SeriesHead>, i: usize) -> &'s mut SeriesHead {
        if stripe.len() <= i {
            stripe.resize_with(i + 1, SeriesHead::default);
        }
        let series = &mut stripe[i];
        if series.is_empty() {
            self.active_series.fetch_add(1, Ordering::Relaxed);
        }
        series
    }

    /// Appends `samples` (in time order, each newer than the series' newest) to
    /// series `id`.
    pub fn append(&self, id: SeriesId, samples: &[Sample]) {
        self.append_each(samples.iter().map(|s| (id, *s)));
    }

    /// Appends each `(id, sample)` in order (a series' samples in time order, each
    /// newer than its newest): a commit group's accepted samples.
    pub fn append_all(&self, samples: &[(SeriesId, Sample)]) {
        self.append_each(samples.iter().copied());
    }

    /// The counters are updated once for all samples (a commit group holds thousands),
    /// and a stripe's lock is held across consecutive samples in it.
    fn append_each(&self, samples: impl Iterator<Item = (SeriesId, Sample)>) {
        let (mut bytes, mut chunks, mut count) = (0i64, 0i64, 0i64);
        let mut held: Option<(usize, std::sync::MutexGuard<'_, Vec<SeriesHead>>)> = None;
        for (id, sample) in samples {
            count += 1;
            let (s, i) = slot(id);
            if held.as_ref().is_none_or(|(h, _)| *h != s) {
                drop(held.take()); // unlocked before the next stripe is locked
                held = Some((s, self.stripe(s)));
            }
            let Some((_, stripe)) = held.as_mut() else {
                unreachable!("the stripe was locked above")
            };
            let series = self.series_for_chunks(stripe, i);
            let block = sample.t_ms.div_euclid(BLOCK_MS);
            match &mut series.newest {
                Some(c) if c.has_room(block) => {
                    let before = c.bytes();
                    c.push(sample);
                    bytes += c.bytes() as i64 - before as i64;
                }
                newest => {
                    let mut capacity = Chunk::FIRST_CAPACITY;
                    if let Some(c) = newest {
                        let before = c.bytes();
                        c.seal_capacity();
                        bytes += c.bytes() as i64 - before as i64;
                        capacity = c.next_capacity();
                    }
                    let c = Chunk::new(block, sample, capacity);
                    bytes += c.bytes() as i64;
                    series.push(c);
                    chunks += 1;
                    *self.blocks.lock().expect("poisoned").entry(block).or_default() += 1;
                }
            }
        }
        drop(held);
        self.chunks.fetch_add(chunks, Ordering::Relaxed);
        self.samples.fetch_add(count, Ordering::Relaxed);
        self.chunk_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Adopts a chunk read back from a checkpoint as series `id`'s newest.
    pub fn adopt(&self, id: SeriesId, chunk: Chunk) {
        let (s, i) = slot(id);
        let mut stripe = self.stripe(s);
        let series = self.series_for_chunks(&mut stripe, i);
        self.chunks.fetch_add(1, Ordering::Relaxed);
        self.samples.fetch_add(i64::from(chunk.count), Ordering::Relaxed);
        self.chunk_bytes.fetch_add(chunk.bytes() as i64, Ordering::Relaxed);
        *self.blocks.lock().expect("poisoned").entry(chunk.block).or_default() += 1;
        series.push(chunk);
    }

    /// Appends series `id`'s samples in `[start, end]` to `out`, in time order.
    pub fn read(&self, id: SeriesId, start: i64, end: i64, out: &mut Vec<sextant_model::Sample>) {
        let (s, i) = slot(id);
        let stripe = self.stripe(s);
        let Some(series) = stripe.get(i) else {
            return;
        };
        let overlapping = || series.chunks().filter(|c| c.last_t >= start && c.first_t <= end);
        // Room for every sample of the chunks read, instead of growing on the way.
        out.reserve(overlapping().map(|c| usize::from(c.count)).sum());
        for c in overlapping() {
            out.extend(c.iter().filter(|x| x.t_ms >= start && x.t_ms <= end));
        }
    }

    /// Blocks with chunks in the head, oldest first.
    pub fn blocks(&self) -> Vec<i64> {
        self.blocks.lock().expect("poisoned").keys().copied().collect()
    }

    /// Seals series `id`'s chunks of `block` and appends their samples to `out`, for
    /// a flush: later samples of the block start new chunks, which the flush leaves.
    pub fn seal_block(&self, id: SeriesId, block: i64, out: &mut Vec<Sample>) {
        let (s, i) = slot(id);
        let mut stripe = self.stripe(s);
        let Some(series) = stripe.get_mut(i) else {
            return;
        };
        let mut bytes = 0i64;
        for c in series.chunks_mut().filter(|c| c.block == block) {
            let before = c.bytes();
            c.seal_capacity();
            c.sealed = true;
            bytes += c.bytes() as i64 - before as i64;
            out.extend(c.iter());
        }
        self.chunk_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Drops series `id`'s chunks that `keep` rejects.
    fn drop_where(&self, id: SeriesId, keep: impl Fn(&Chunk) -> bool) {
        let (s, i) = slot(id);
        let mut stripe = self.stripe(s);
        let Some(series) = stripe.get_mut(i) else {
            return;
        };
        if series.chunks().all(&keep) {
            return;
        }
        let mut blocks = self.blocks.lock().expect("poisoned");
        series.retain(|c| {
            if keep(c) {
                return true;
            }
            self.chunks.fetch_sub(1, Ordering::Relaxed);
            self.samples.fetch_sub(i64::from(c.count), Ordering::Relaxed);
            self.chunk_bytes.fetch_sub(c.bytes() as i64, Ordering::Relaxed);
            if let Some(n) = blocks.get_mut(&c.block) {
                *n -= 1;
                if *n == 0 {
                    blocks.remove(&c.block);
                }
            }
            false
        });
        if series.is_empty() {
            self.active_series.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Drops the sealed chunks of `block` (flushed to DuckDB) of series `0..series`.
    pub fn drop_sealed(&self, block: i64, series: u64) {
        for id in 0..series {
            self.drop_where(id, |c| !(c.block == block && c.sealed));
        }
    }

    /// Drops chunks of blocks before `block` (retention) of series `0..series`.
    pub fn drop_blocks_before(&self, block: i64, series: u64) {
        if self.blocks().first().is_none_or(|b| *b >= block) {
            return;
        }
        for id in 0..series {
            self.drop_where(id, |c| c.block >= block);
        }
    }

    /// Serialises the chunks of series `0..series` for a checkpoint: per series with
    /// chunks, its id, the chunk count and the chunks.
    pub fn snapshot(&self, series: u64, out: &mut Vec<u8>) {
        for id in 0..series {
            let (s, i) = slot(id);
            let stripe = self.stripe(s);
            let Some(h) = stripe.get(i).filter(|h| !h.is_empty()) else {
                continue;
            };
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&(h.len() as u32).to_le_bytes());
            for c in h.chunks() {
                c.encode(out);
            }
        }
    }
}
