//! One time partition of the log index: a tantivy index in its own directory
//! holding the entries of one period (an hour by default), with the label sets of
//! its streams beside it. Retention drops whole partitions.
//!
//! The documents: `ts` (ns, indexed and fast), `stream` (the stream's id, indexed
//! and fast), `len` (line length in bytes, fast), `line` (full text, stored) and
//! `meta` (structured metadata, stored). The tantivy commit's payload is the
//! highest write-ahead-log sequence number whose entries are all in the commit,
//! which is how replay after a crash knows what is already indexed.

use std::collections::HashMap;
use std::fs;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use sextant_model::Labels;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::index::SegmentReader;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, TermSetQuery};
use tantivy::schema::{
    BytesOptions, FAST, Field, INDEXED, IndexRecordOption, STORED, Schema, TextFieldIndexing, TextOptions, Value as _,
};
use tantivy::tokenizer::{LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer};
use tantivy::{
    DocAddress, DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentOrdinal, TantivyDocument, Term,
};

use crate::Error;
use crate::record::{Entry, decode_meta, encode_meta};

/// The tokenizer of the `line` field (and of needles searched in it).
pub(crate) const TOKENIZER: &str = "sextant_words";
/// Tokens this long or longer are not indexed (so they are not required in queries).
pub(crate) const MAX_TOKEN: usize = 100;
const STREAMS_FILE: &str = "streams.json";
const FORMAT_FILE: &str = "sextant-logs-format";
const FORMAT: &str = "1";
/// The writer's memory before it flushes a segment (tantivy's minimum is 15 MB).
const WRITER_MEMORY: usize = 32 << 20;

#[derive(Clone, Copy)]
pub(crate) struct Fields {
    pub ts: Field,
    pub stream: Field,
    pub len: Field,
    pub line: Field,
    pub meta: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let ts = b.add_i64_field("ts", INDEXED | FAST);
    let stream = b.add_u64_field("stream", INDEXED | FAST);
    let len = b.add_u64_field("len", FAST);
    let line = b.add_text_field(
        "line",
        TextOptions::default()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(TOKENIZER)
                    .set_index_option(IndexRecordOption::Basic),
            )
            .set_stored(),
    );
    let meta = b.add_bytes_field("meta", BytesOptions::default() | STORED);
    (
        b.build(),
        Fields {
            ts,
            stream,
            len,
            line,
            meta,
        },
    )
}

/// Words of a line as the index sees them: runs of alphanumeric characters,
/// lower-cased; very long runs are left out.
pub(crate) fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN))
        .filter(LowerCaser)
        .build()
}

/// A matching document, before its stored fields are read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit {
    pub ts: i64,
    pub stream: u64,
    pub len: u64,
    pub addr: DocAddress,
}

pub(crate) struct Partition {
    /// Start of the partition's period, ns.
    pub start: i64,
    /// End of the period (exclusive), ns.
    pub end: i64,
    pub dir: PathBuf,
    index: Index,
    fields: Fields,
    reader: IndexReader,
    writer: Mutex<Option<IndexWriter>>,
    streams: RwLock<HashMap<u64, Arc<Labels>>>,
    /// Streams added since the streams file was last written.
    streams_dirty: Mutex<bool>,
    /// Highest log sequence number fully in the last commit.
    pub committed_seq: std::sync::atomic::AtomicU64,
    pub last_write: Mutex<Instant>,
}

impl Partition {
    /// Opens the partition in `dir`, creating it if it does not exist.
    pub fn open(dir: &Path, start: i64, end: i64) -> Result<Self, Error> {
        let (schema, fields) = schema();
        let tantivy_err = |e: tantivy::TantivyError| Error::Index(format!("{}: {e}", dir.display()));
        let index = if dir.join("meta.json").exists() {
            let format = fs::read_to_string(dir.join(FORMAT_FILE)).unwrap_or_default();
            if format.trim() != FORMAT {
                return Err(Error::Index(format!(
                    "{}: log partition format {:?}, this Sextant reads format {FORMAT}",
                    dir.display(),
                    format.trim()
                )));
            }
            Index::open_in_dir(dir).map_err(tantivy_err)?
        } else {
            fs::create_dir_all(dir).map_err(|e| Error::Io(dir.to_path_buf(), e))?;
            fs::write(dir.join(FORMAT_FILE), FORMAT).map_err(|e| Error::Io(dir.to_path_buf(), e))?;
            Index::create_in_dir(dir, schema).map_err(tantivy_err)?
        };
        index.tokenizers().register(TOKENIZER, analyzer());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(tantivy_err)?;
        let committed = index
            .load_metas()
            .map_err(tantivy_err)?
            .payload
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(0);
        let streams: HashMap<u64, Arc<Labels>> = match fs::read(dir.join(STREAMS_FILE)) {
            Ok(bytes) => {
                let list: Vec<Vec<(String, String)>> = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::Index(format!("{}: {e}", dir.join(STREAMS_FILE).display())))?;
                list.into_iter()
                    .filter_map(|pairs| Labels::from_pairs(pairs).ok())
                    .map(|l| (l.stable_hash(), Arc::new(l)))
                    .collect()
            }
            Err(_) => HashMap::new(),
        };
        Ok(Self {
            start,
            end,
            dir: dir.to_path_buf(),
            index,
            fields,
            reader,
            writer: Mutex::new(None),
            streams: RwLock::new(streams),
            streams_dirty: Mutex::new(false),
            committed_seq: std::sync::atomic::AtomicU64::new(committed),
            last_write: Mutex::new(Instant::now()),
        })
    }

    fn with_writer<T>(&self, f: impl FnOnce(&mut IndexWriter) -> tantivy::Result<T>) -> Result<T, Error> {
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(
                self.index
                    .writer_with_num_threads(1, WRITER_MEMORY)
                    .map_err(|e| Error::Index(format!("{}: {e}", self.dir.display())))?,
            );
        }
        let w = guard.as_mut().expect("set above");
        f(w).map_err(|e| Error::Index(format!("{}: {e}", self.dir.display())))
    }

    /// Adds one entry of a stream (not searchable before [`Partition::commit`]).
    pub fn add(&self, stream_id: u64, labels: &Labels, entry: &Entry) -> Result<(), Error> {
        {
            let known = self
                .streams
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&stream_id);
            if !known {
                self.streams
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(stream_id, Arc::new(labels.clone()));
                *self.streams_dirty.lock().unwrap_or_else(|e| e.into_inner()) = true;
            }
        }
        let f = self.fields;
        let mut doc = TantivyDocument::new();
        doc.add_i64(f.ts, entry.ts);
        doc.add_u64(f.stream, stream_id);
        doc.add_u64(f.len, entry.line.len() as u64);
        doc.add_text(f.line, &entry.line);
        if !entry.metadata.is_empty() {
            doc.add_bytes(f.meta, &encode_meta(&entry.metadata));
        }
        self.with_writer(|w| w.add_document(doc).map(|_| ()))?;
        *self.last_write.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        Ok(())
    }

    /// Makes what was added durable in the index, recording that every entry up to
    /// log sequence `seq` is in it, and makes it searchable.
    pub fn commit(&self, seq: u64) -> Result<(), Error> {
        self.write_streams()?;
        self.with_writer(|w| {
            let mut prepared = w.prepare_commit()?;
            prepared.set_payload(&seq.to_string());
            prepared.commit().map(|_| ())
        })?;
        self.committed_seq.store(seq, std::sync::atomic::Ordering::SeqCst);
        self.reader
            .reload()
            .map_err(|e| Error::Index(format!("{}: {e}", self.dir.display())))
    }

    fn write_streams(&self) -> Result<(), Error> {
        let mut dirty = self.streams_dirty.lock().unwrap_or_else(|e| e.into_inner());
        if !*dirty {
            return Ok(());
        }
        let list: Vec<Vec<(String, String)>> = {
            let streams = self.streams.read().unwrap_or_else(|e| e.into_inner());
            streams
                .values()
                .map(|l| l.iter().map(|l| (l.name.clone(), l.value.clone())).collect())
                .collect()
        };
        let tmp = self.dir.join(format!("{STREAMS_FILE}.tmp"));
        let io = |e| Error::Io(tmp.clone(), e);
        let body = serde_json::to_vec(&list).map_err(|e| Error::Index(e.to_string()))?;
        {
            use std::io::Write;
            let mut f = fs::File::create(&tmp).map_err(io)?;
            f.write_all(&body).map_err(io)?;
            f.sync_data().map_err(io)?;
        }
        fs::rename(&tmp, self.dir.join(STREAMS_FILE)).map_err(io)?;
        *dirty = false;
        Ok(())
    }

    /// Whether a writer is open (the partition takes writes).
    pub fn is_open(&self) -> bool {
        self.writer.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// Closes the writer of a partition that no longer takes writes, merging its
    /// segments into one (fewer files, better compression, faster scans).
    pub fn close(&self) -> Result<(), Error> {
        let Some(mut w) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Ok(());
        };
        let err = |e: tantivy::TantivyError| Error::Index(format!("{}: {e}", self.dir.display()));
        let ids = self.index.searchable_segment_ids().map_err(err)?;
        if ids.len() > 1 {
            w.merge(&ids).wait().map_err(err)?;
        }
        w.wait_merging_threads().map_err(err)?;
        self.reader.reload().map_err(err)
    }

    /// The streams of this partition.
    pub fn streams(&self) -> Vec<(u64, Arc<Labels>)> {
        self.streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }

    /// Entries of `stream_ids` with `from <= ts <= to` that `text` (if any)
    /// matches, in no particular order, as `searcher` (from [`Partition::searcher`])
    /// sees them; their addresses are only valid for fetches through the same
    /// searcher.
    pub fn search(
        &self,
        searcher: &tantivy::Searcher,
        stream_ids: &[u64],
        from: i64,
        to: i64,
        text: Option<Box<dyn Query>>,
    ) -> Result<Vec<Hit>, Error> {
        let f = self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
            (
                Occur::Must,
                Box::new(TermSetQuery::new(
                    stream_ids.iter().map(|s| Term::from_field_u64(f.stream, *s)),
                )),
            ),
            (
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_i64(f.ts, from)),
                    Bound::Included(Term::from_field_i64(f.ts, to)),
                )),
            ),
        ];
        if let Some(t) = text {
            clauses.push((Occur::Must, t));
        }
        let query = BooleanQuery::new(clauses);
        searcher
            .search(&query, &HitCollector)
            .map_err(|e| Error::Index(format!("{}: {e}", self.dir.display())))
    }

    /// The line and structured metadata of a hit.
    pub fn fetch(
        &self,
        searcher: &tantivy::Searcher,
        addr: DocAddress,
    ) -> Result<(String, Vec<(String, String)>), Error> {
        let doc: TantivyDocument = searcher
            .doc(addr)
            .map_err(|e| Error::Index(format!("{}: {e}", self.dir.display())))?;
        let line = doc
            .get_first(self.fields.line)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        let meta = doc
            .get_first(self.fields.meta)
            .and_then(|v| v.as_bytes())
            .map(decode_meta)
            .unwrap_or_default();
        Ok((line, meta))
    }

    /// A searcher on the last commit (hits and fetches must use the same one).
    pub fn searcher(&self) -> tantivy::Searcher {
        self.reader.searcher()
    }

    /// Bytes on disk.
    pub fn disk_bytes(&self) -> u64 {
        fs::read_dir(&self.dir)
            .map(|rd| rd.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0)
    }

    /// The text field (for building needle queries).
    pub fn line_field(&self) -> Field {
        self.fields.line
    }
}

/// Collects hits with their fast fields.
struct HitCollector;

struct HitSegmentCollector {
    segment: SegmentOrdinal,
    ts: Column<i64>,
    stream: Column<u64>,
    len: Column<u64>,
    hits: Vec<Hit>,
}

impl Collector for HitCollector {
    type Fruit = Vec<Hit>;
    type Child = HitSegmentCollector;

    fn for_segment(&self, segment: SegmentOrdinal, reader: &SegmentReader) -> tantivy::Result<HitSegmentCollector> {
        let ff = reader.fast_fields();
        Ok(HitSegmentCollector {
            segment,
            ts: ff.i64("ts")?,
            stream: ff.u64("stream")?,
            len: ff.u64("len")?,
            hits: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Hit>>) -> tantivy::Result<Vec<Hit>> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for HitSegmentCollector {
    type Fruit = Vec<Hit>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.hits.push(Hit {
            ts: self.ts.first(doc).unwrap_or(0),
            stream: self.stream.first(doc).unwrap_or(0),
            len: self.len.first(doc).unwrap_or(0),
            addr: DocAddress::new(self.segment, doc),
        });
    }

    fn harvest(self) -> Vec<Hit> {
        self.hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a query took its hits from one searcher and fetched their
    /// lines through another; when a partition's first commit landed between
    /// the two, the fetch indexed a segment list that did not have the hit's
    /// segment and panicked (a 500 from `query_range`, seen in CI).
    #[test]
    fn hits_and_fetches_share_one_searcher_across_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let p = Partition::open(dir.path(), 0, i64::MAX).unwrap();
        let labels = Labels::from_pairs([("app", "a")]).unwrap();
        let before = p.searcher();
        p.add(
            1,
            &labels,
            &Entry {
                ts: 10,
                line: "hello".into(),
                metadata: Vec::new(),
            },
        )
        .unwrap();
        p.commit(1).unwrap();
        // The searcher taken before the commit sees nothing, and says so.
        assert!(p.search(&before, &[1], 0, 100, None).unwrap().is_empty());
        let after = p.searcher();
        let hits = p.search(&after, &[1], 0, 100, None).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(p.fetch(&after, hits[0].addr).unwrap().0, "hello");
    }
}
