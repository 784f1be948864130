//! What the metrics store writes to its write-ahead log (`sextant-wal` frames and
//! checksums the bytes; this module gives them meaning).
//!
//! A record is one commit group: entries tagged by kind, little-endian.
//! - series: id, label count, then each name and value;
//! - samples: the series id as a zigzag varint difference from the record's previous
//!   samples entry's id, a varint count, then per sample its time as a zigzag varint
//!   difference from the record's previous sample time and the value's 64 bits. A
//!   group of one-sample appends costs about 12 bytes a sample, instead of the 29 of
//!   the fixed-width entry earlier versions wrote (still read, as `SAMPLES_FIXED`);
//! - metadata: family name, type, help, unit.
//!
//! A checkpoint is the head after a flush: metadata, the series not yet in DuckDB,
//! and every series' chunks.

use std::sync::Arc;

use sextant_model::{Labels, MetricMetadata, Sample};

use crate::blockcodec::{unzigzag, zigzag};
use crate::chunk::Chunk;
use crate::registry::SeriesId;

const SERIES: u8 = 1;
/// Samples at fixed width (id, count, `(t, v)` pairs), as data formats 3 and 4 wrote
/// them; replay still reads them.
const SAMPLES_FIXED: u8 = 2;
const METADATA: u8 = 3;
const SAMPLES: u8 = 4;
const CHECKPOINT_MAGIC: &[u8; 8] = b"SXHEAD1\0";

/// One decoded entry.
pub(crate) enum Entry {
    Series(SeriesId, Labels),
    Samples(SeriesId, Vec<Sample>),
    Metadata(String, MetricMetadata),
}

/// Builds one record.
#[derive(Default)]
pub(crate) struct RecordBuilder {
    /// The record is `buf[..len]`; the bytes after it are room to write into (what
    /// they hold means nothing). A one-sample entry (most of a group of appends by
    /// reference) is then written in place, without a call to grow the vector and copy.
    buf: Vec<u8>,
    len: usize,
    /// The last samples entry's series and sample time, which the next one's are
    /// written relative to.
    prev_id: SeriesId,
    prev_t: i64,
}

/// Writes `v` as a varint at the start of `out` (at least 10 bytes); returns its length.
#[inline]
fn encode_uvarint(out: &mut [u8], mut v: u64) -> usize {
    let mut n = 0;
    while v >= 0x80 {
        out[n] = v as u8 | 0x80;
        v >>= 7;
        n += 1;
    }
    out[n] = v as u8;
    n + 1
}

impl RecordBuilder {
    /// A builder appending to `buf` (a spare buffer, for its capacity).
    pub fn new(mut buf: Vec<u8>) -> Self {
        buf.clear();
        Self { buf, ..Self::default() }
    }

    /// The record so far.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The record, as a vector.
    pub fn into_bytes(mut self) -> Vec<u8> {
        self.buf.truncate(self.len);
        self.buf
    }

    /// Empties the record (the next samples entry is written relative to zero again).
    pub fn clear(&mut self) {
        *self = Self::new(std::mem::take(&mut self.buf));
    }

    /// Makes `buf[len..len + n]` writable room.
    #[inline]
    fn room(&mut self, n: usize) {
        if self.buf.len() < self.len + n {
            // Doubling, not the whole capacity at once: a spare buffer may have grown
            // to the size of a group that created many series, and zeroing all of it
            // for every group costs more than writing the record.
            let want = (self.len + n).max(2 * self.buf.len()).max(4096);
            self.buf.resize(want, 0);
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        self.room(bytes.len());
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn put_uvarint(&mut self, v: u64) {
        self.room(10);
        self.len += encode_uvarint(&mut self.buf[self.len..], v);
    }

    fn put_str(&mut self, s: &str) {
        self.put(&(s.len() as u32).to_le_bytes());
        self.put(s.as_bytes());
    }

    pub fn series(&mut self, id: SeriesId, labels: &Labels) {
        self.put(&[SERIES]);
        self.put(&id.to_le_bytes());
        self.put(&(labels.len() as u32).to_le_bytes());
        for l in labels.iter() {
            self.put_str(&l.name);
            self.put_str(&l.value);
        }
    }

    /// A samples entry of one sample, written in place (see `buf`).
    #[inline]
    pub fn sample(&mut self, id: SeriesId, s: Sample) {
        // Type, count and value take 10 bytes, each varint at most 10.
        self.room(30);
        let entry = &mut self.buf[self.len..self.len + 30];
        entry[0] = SAMPLES;
        let mut n = 1 + encode_uvarint(&mut entry[1..], zigzag(id.wrapping_sub(self.prev_id) as i64));
        entry[n] = 1;
        n += 1;
        n += encode_uvarint(&mut entry[n..], zigzag(s.t_ms.wrapping_sub(self.prev_t)));
        entry[n..n + 8].copy_from_slice(&s.v.to_bits().to_le_bytes());
        self.len += n + 8;
        self.prev_id = id;
        self.prev_t = s.t_ms;
    }

    pub fn samples(&mut self, id: SeriesId, samples: &[Sample]) {
        if samples.is_empty() {
            return;
        }
        self.room(21 + 18 * samples.len());
        self.put(&[SAMPLES]);
        self.put_uvarint(zigzag(id.wrapping_sub(self.prev_id) as i64));
        self.put_uvarint(samples.len() as u64);
        for s in samples {
            self.put_uvarint(zigzag(s.t_ms.wrapping_sub(self.prev_t)));
            self.put(&s.v.to_bits().to_le_bytes());
            self.prev_t = s.t_ms;
        }
        self.prev_id = id;
    }

    pub fn metadata(&mut self, name: &str, m: &MetricMetadata) {
        self.put(&[METADATA]);
        self.put_str(name);
        self.put_str(m.metric_type.as_str());
        self.put_str(&m.help);
        self.put_str(&m.unit);
    }
}

/// A cursor over bytes that fails (returns `None`) when they run out.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    fn zigzag(&mut self) -> Option<i64> {
        Some(unzigzag(self.uvarint()?))
    }
    fn str(&mut self) -> Option<&'a str> {
        let n = self.u32()? as usize;
        std::str::from_utf8(self.take(n)?).ok()
    }
    fn labels(&mut self) -> Option<Labels> {
        let n = self.u32()? as usize;
        let mut pairs = Vec::with_capacity(n.min(256));
        for _ in 0..n {
            pairs.push((self.str()?, self.str()?));
        }
        Labels::from_pairs(pairs).ok()
    }
    fn metadata(&mut self) -> Option<(String, MetricMetadata)> {
        let name = self.str()?.to_owned();
        let metric_type = self.str()?.parse().unwrap_or_default();
        let help = self.str()?.to_owned();
        let unit = self.str()?.to_owned();
        Some((
            name,
            MetricMetadata {
                metric_type,
                help,
                unit,
            },
        ))
    }
}

/// Decodes a record, handing each entry to `on`; `false` if it is malformed (the
/// entries before the fault were handed over).
pub(crate) fn decode_record(bytes: &[u8], mut on: impl FnMut(Entry)) -> bool {
    let mut r = Reader(bytes);
    let (mut prev_id, mut prev_t) = (0u64, 0i64);
    while !r.0.is_empty() {
        let entry = (|| {
            Some(match r.u8()? {
                SERIES => {
                    let id = r.u64()?;
                    Entry::Series(id, r.labels()?)
                }
                SAMPLES => {
                    let id = prev_id.wrapping_add(r.zigzag()? as u64);
                    let n = usize::try_from(r.uvarint()?).ok()?;
                    // Each sample takes at least nine bytes: a count beyond that is damage.
                    if n > r.0.len() / 9 {
                        return None;
                    }
                    let mut samples = Vec::with_capacity(n);
                    for _ in 0..n {
                        let t = prev_t.wrapping_add(r.zigzag()?);
                        let v = r.u64()?;
                        samples.push(Sample::new(t, f64::from_bits(v)));
                        prev_t = t;
                    }
                    prev_id = id;
                    Entry::Samples(id, samples)
                }
                SAMPLES_FIXED => {
                    let id = r.u64()?;
                    let n = r.u32()? as usize;
                    let raw = r.take(n.checked_mul(16)?)?;
                    let samples = raw
                        .chunks_exact(16)
                        .map(|c| {
                            let t = i64::from_le_bytes(c[..8].try_into().expect("8 bytes"));
                            let v = u64::from_le_bytes(c[8..].try_into().expect("8 bytes"));
                            Sample::new(t, f64::from_bits(v))
                        })
                        .collect();
                    Entry::Samples(id, samples)
                }
                METADATA => {
                    let (name, m) = r.metadata()?;
                    Entry::Metadata(name, m)
                }
                _ => return None,
            })
        })();
        match entry {
            Some(e) => on(e),
            None => return false,
        }
    }
    true
}

/// Writes a checkpoint's header: metadata and the series not yet in DuckDB. The
/// head's chunks follow ([`crate::head::Head::snapshot`]).
pub(crate) fn checkpoint_header<'a>(
    metadata: impl ExactSizeIterator<Item = (&'a String, &'a MetricMetadata)>,
    series: &[(SeriesId, Arc<Labels>)],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(CHECKPOINT_MAGIC);
    out.extend_from_slice(&(metadata.len() as u32).to_le_bytes());
    let mut r = RecordBuilder::default();
    for (name, m) in metadata {
        r.metadata(name, m);
    }
    out.extend_from_slice(r.bytes());
    out.extend_from_slice(&(series.len() as u32).to_le_bytes());
    r.clear();
    for (id, labels) in series {
        r.series(*id, labels);
    }
    out.extend_from_slice(r.bytes());
}

/// What a checkpoint holds.
pub(crate) struct Checkpoint {
    pub metadata: Vec<(String, MetricMetadata)>,
    pub series: Vec<(SeriesId, Labels)>,
    /// Each series' chunks, oldest first.
    pub chunks: Vec<(SeriesId, Vec<Chunk>)>,
}

/// Reads a checkpoint; `None` if it is malformed.
pub(crate) fn decode_checkpoint(bytes: &[u8]) -> Option<Checkpoint> {
    let mut r = Reader(bytes);
    if r.take(8)? != CHECKPOINT_MAGIC {
        return None;
    }
    let n_meta = r.u32()?;
    let mut metadata = Vec::new();
    for _ in 0..n_meta {
        if r.u8()? != METADATA {
            return None;
        }
        metadata.push(r.metadata()?);
    }
    let n_series = r.u32()?;
    let mut series = Vec::new();
    for _ in 0..n_series {
        if r.u8()? != SERIES {
            return None;
        }
        let id = r.u64()?;
        series.push((id, r.labels()?));
    }
    let mut chunks = Vec::new();
    while !r.0.is_empty() {
        let id = r.u64()?;
        let n = r.u32()?;
        let mut cs = Vec::with_capacity(n.min(1024) as usize);
        for _ in 0..n {
            cs.push(Chunk::decode(&mut r.0)?);
        }
        chunks.push((id, cs));
    }
    Some(Checkpoint {
        metadata,
        series,
        chunks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_entries_are_written_relative_to_the_previous_one() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let entries: Vec<(SeriesId, Vec<Sample>)> = vec![
            (1_000_000, vec![Sample::new(1_700_000_000_000, 1.5)]),
            (1_000_001, vec![Sample::new(1_700_000_000_000, -0.0)]),
            (
                3,
                vec![Sample::new(i64::MIN, stale), Sample::new(i64::MAX, f64::INFINITY)],
            ),
            (u64::MAX, vec![Sample::new(-5, f64::NAN), Sample::new(-4, 1e308)]),
            (0, vec![Sample::new(0, 0.0)]),
        ];
        let mut r = RecordBuilder::new(Vec::new());
        let mut ends = Vec::new();
        for (id, samples) in &entries {
            r.samples(*id, samples);
            ends.push(r.bytes().len());
        }
        let mut got = Vec::new();
        assert!(decode_record(r.bytes(), |e| match e {
            Entry::Samples(id, s) => got.push((id, s)),
            _ => panic!("samples expected"),
        }));
        assert_eq!(got.len(), entries.len());
        for ((id, a), (want_id, b)) in got.iter().zip(&entries) {
            assert_eq!(id, want_id);
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(b) {
                assert_eq!((x.t_ms, x.v.to_bits()), (y.t_ms, y.v.to_bits()));
            }
        }
        // A one-sample entry next to the previous series at the same time: tag, id,
        // count, time and value in 12 bytes.
        let mut one = RecordBuilder::new(Vec::new());
        one.samples(7, &[Sample::new(30_000, 1.0)]);
        let before = one.bytes().len();
        one.samples(8, &[Sample::new(30_000, 2.0)]);
        assert_eq!(one.bytes().len() - before, 12);
        // A cut inside an entry is detected; the whole entries before it are handed over.
        for cut in 1..r.bytes().len() {
            let mut n = 0;
            let whole = decode_record(&r.bytes()[..cut], |_| n += 1);
            assert_eq!(whole, ends.contains(&cut), "cut at {cut}");
            assert_eq!(n, ends.iter().filter(|e| **e <= cut).count(), "cut at {cut}");
        }
    }

    #[test]
    fn a_one_sample_entry_is_written_as_a_samples_entry_of_one() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let singles = [
            (1_000_000, Sample::new(1_700_000_000_000, 1.5)),
            (0, Sample::new(i64::MIN, stale)),
            (u64::MAX, Sample::new(i64::MAX, f64::NEG_INFINITY)),
            (u64::MAX, Sample::new(-1, -0.0)),
            (5, Sample::new(0, f64::NAN)),
        ];
        let (mut by_one, mut by_slice) = (RecordBuilder::new(Vec::new()), RecordBuilder::new(Vec::new()));
        for (id, s) in singles {
            by_one.sample(id, s);
            by_slice.samples(id, &[s]);
        }
        assert_eq!(by_one.bytes(), by_slice.bytes());
    }

    #[test]
    fn fixed_width_samples_of_earlier_logs_are_read() {
        let mut buf = vec![SAMPLES_FIXED];
        buf.extend_from_slice(&9u64.to_le_bytes());
        buf.extend_from_slice(&2u32.to_le_bytes());
        for (t, v) in [(10i64, 1.0f64), (20, 2.0)] {
            buf.extend_from_slice(&t.to_le_bytes());
            buf.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        let mut got = Vec::new();
        assert!(decode_record(&buf, |e| match e {
            Entry::Samples(id, s) => got.push((id, s)),
            _ => panic!("samples expected"),
        }));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 9);
        assert_eq!(
            got[0].1.iter().map(|s| (s.t_ms, s.v)).collect::<Vec<_>>(),
            vec![(10, 1.0), (20, 2.0)]
        );
    }

    #[test]
    fn records_round_trip_and_truncation_is_detected() {
        let labels = Labels::from_pairs([("__name__", "up"), ("job", "a")]).unwrap();
        let meta = MetricMetadata {
            metric_type: sextant_model::MetricType::Gauge,
            help: "h".into(),
            unit: String::new(),
        };
        let mut r = RecordBuilder::default();
        r.series(7, &labels);
        r.metadata("up", &meta);
        r.samples(
            7,
            &[
                Sample::new(1, 1.0),
                Sample::new(2, f64::from_bits(0x7ff0_0000_0000_0002)),
            ],
        );
        let mut got = Vec::new();
        assert!(decode_record(r.bytes(), |e| got.push(e)));
        assert_eq!(got.len(), 3);
        match &got[2] {
            Entry::Samples(7, s) => assert_eq!(s[1].v.to_bits(), 0x7ff0_0000_0000_0002),
            _ => panic!("samples expected"),
        }
        let mut n = 0;
        assert!(!decode_record(&r.bytes()[..r.bytes().len() - 3], |_| n += 1));
        assert_eq!(n, 2);

        let mut cp = Vec::new();
        let metadata = std::collections::HashMap::from([("up".to_owned(), meta)]);
        checkpoint_header(metadata.iter(), &[(3, Arc::new(labels))], &mut cp);
        let mut chunk = Chunk::new(0, Sample::new(5, 1.0), Chunk::FIRST_CAPACITY);
        chunk.push(Sample::new(6, 2.0));
        cp.extend_from_slice(&3u64.to_le_bytes());
        cp.extend_from_slice(&1u32.to_le_bytes());
        chunk.encode(&mut cp);
        let back = decode_checkpoint(&cp).unwrap();
        assert_eq!((back.metadata.len(), back.series.len(), back.chunks.len()), (1, 1, 1));
        assert_eq!(back.series[0].0, 3);
        assert_eq!(back.chunks[0].1[0].iter().count(), 2);
        assert!(decode_checkpoint(&cp[..cp.len() - 1]).is_none());
    }
}
