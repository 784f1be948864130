//! In-memory series registry: identity (labels ↔ id), the inverted index used to
//! resolve matchers, each series' time bounds and newest sample, and metric metadata.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use sextant_model::{Labels, Matcher, MetricMetadata, Sample};

/// Dense series id, assigned in creation order and persisted.
pub type SeriesId = u64;

pub(crate) struct SeriesEntry {
    pub labels: Arc<Labels>,
    /// Oldest and newest sample times, for `start`/`end` filtering of metadata queries.
    pub first_t: i64,
    pub last: Option<Sample>,
}

/// Hasher for `u64` keys (series ids, label-set hashes): one multiplication by the
/// golden-ratio constant, which spreads sequential ids into the high bits hashbrown uses.
/// SipHash costs several times more and protects against nothing here.
#[derive(Default)]
pub struct U64Hasher(u64);

impl Hasher for U64Hasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed")
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A map keyed by a `u64` (series id or label-set hash).
pub type HashIndex<V> = HashMap<u64, V, BuildHasherDefault<U64Hasher>>;

/// Ids under one key, in insertion order. Most keys (a label-set hash, a label value
/// unique to one series) hold a single id: kept inline, that costs no allocation, which
/// at a million series is tens of megabytes.
#[derive(Debug, Clone)]
pub(crate) enum Ids {
    One(SeriesId),
    Many(Vec<SeriesId>),
}

impl Ids {
    fn push(&mut self, id: SeriesId) {
        match self {
            Ids::One(first) => *self = Ids::Many(vec![*first, id]),
            Ids::Many(v) => v.push(id),
        }
    }

    fn as_slice(&self) -> &[SeriesId] {
        match self {
            Ids::One(id) => std::slice::from_ref(id),
            Ids::Many(v) => v,
        }
    }
}

fn add(map_entry: std::collections::hash_map::Entry<'_, impl Sized, Ids>, id: SeriesId) {
    match map_entry {
        std::collections::hash_map::Entry::Occupied(mut o) => o.get_mut().push(id),
        std::collections::hash_map::Entry::Vacant(v) => {
            v.insert(Ids::One(id));
        }
    }
}

#[derive(Default)]
pub(crate) struct Registry {
    /// `Labels::hash64` → ids with that hash (almost always one).
    by_hash: HashIndex<Ids>,
    series: Vec<SeriesEntry>,
    /// label name → label value → ids (ascending, since ids only grow).
    postings: HashMap<String, HashMap<String, Ids>>,
    pub metadata: HashMap<String, MetricMetadata>,
}

impl Registry {
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// The id of `labels`, whose `hash64()` is `hash`.
    pub fn id_of(&self, labels: &Labels, hash: u64) -> Option<SeriesId> {
        self.by_hash
            .get(&hash)?
            .as_slice()
            .iter()
            .copied()
            .find(|id| *self.series[*id as usize].labels == *labels)
    }

    /// The id of the label set made of `pairs` (sorted by name, no empty values),
    /// whose `Labels::hash_pairs` is `hash`, without building it.
    pub fn id_of_pairs(&self, hash: u64, pairs: &[(&[u8], &[u8])]) -> Option<SeriesId> {
        self.by_hash.get(&hash)?.as_slice().iter().copied().find(|id| {
            let l = &self.series[*id as usize].labels;
            l.len() == pairs.len()
                && l.iter()
                    .zip(pairs)
                    .all(|(a, (n, v))| a.name.as_bytes() == *n && a.value.as_bytes() == *v)
        })
    }

    pub fn entry(&self, id: SeriesId) -> &SeriesEntry {
        &self.series[id as usize]
    }

    /// Adds a series with the next id; the caller guarantees it is new and that `id`
    /// equals `len()`.
    pub fn insert(&mut self, id: SeriesId, labels: Arc<Labels>) {
        debug_assert_eq!(id as usize, self.series.len());
        for l in labels.iter() {
            let values = match self.postings.get_mut(&l.name) {
                Some(v) => v,
                None => self.postings.entry(l.name.clone()).or_default(),
            };
            match values.get_mut(&l.value) {
                Some(ids) => ids.push(id),
                None => {
                    values.insert(l.value.clone(), Ids::One(id));
                }
            }
        }
        add(self.by_hash.entry(labels.hash64()), id);
        self.series.push(SeriesEntry {
            labels,
            first_t: i64::MAX,
            last: None,
        });
    }

    /// Records that `id` now has samples from `first_t` up to `last`.
    pub fn observe(&mut self, id: SeriesId, first_t: i64, last: Sample) {
        let e = &mut self.series[id as usize];
        e.first_t = e.first_t.min(first_t);
        if e.last.is_none_or(|l| l.t_ms <= last.t_ms) {
            e.last = Some(last);
        }
    }

    /// Ids of series selected by all `matchers`, ascending.
    pub fn select(&self, matchers: &[Matcher]) -> Vec<SeriesId> {
        let mut candidates: Option<Vec<SeriesId>> = None;
        // Matchers that cannot match an absent label narrow through the index; the
        // others are checked per series afterwards.
        for m in matchers.iter().filter(|m| !m.matches_empty()) {
            let Some(values) = self.postings.get(&m.name) else {
                return Vec::new();
            };
            let mut ids: Vec<SeriesId> = values
                .iter()
                .filter(|(v, _)| m.matches(v))
                .flat_map(|(_, ids)| ids.as_slice().iter().copied())
                .collect();
            ids.sort_unstable();
            candidates = Some(match candidates {
                None => ids,
                Some(prev) => intersect(&prev, &ids),
            });
        }
        let rest: Vec<&Matcher> = matchers.iter().filter(|m| m.matches_empty()).collect();
        let check = |id: &SeriesId| rest.iter().all(|m| m.matches_labels(&self.series[*id as usize].labels));
        match candidates {
            Some(ids) => ids.into_iter().filter(check).collect(),
            None => (0..self.series.len() as SeriesId).filter(check).collect(),
        }
    }

    /// Whether `id` has samples overlapping `[start, end]`.
    pub fn overlaps(&self, id: SeriesId, start: i64, end: i64) -> bool {
        let e = &self.series[id as usize];
        e.last.is_some_and(|l| l.t_ms >= start) && e.first_t <= end
    }
}

fn intersect(a: &[SeriesId], b: &[SeriesId]) -> Vec<SeriesId> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sextant_model::MatchOp;

    fn reg() -> Registry {
        let mut r = Registry::default();
        for (i, (name, job)) in [("up", "a"), ("up", "b"), ("x", "a")].iter().enumerate() {
            let l = Labels::from_pairs([("__name__", *name), ("job", *job)]).unwrap();
            r.insert(i as u64, Arc::new(l));
        }
        let l = Labels::from_pairs([("__name__", "up")]).unwrap();
        r.insert(3, Arc::new(l));
        r
    }

    #[test]
    fn select_uses_prometheus_semantics() {
        let r = reg();
        let m = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap();
        assert_eq!(r.select(&[m(MatchOp::Equal, "__name__", "up")]), vec![0, 1, 3]);
        assert_eq!(
            r.select(&[m(MatchOp::Equal, "__name__", "up"), m(MatchOp::NotEqual, "job", "a")]),
            vec![1, 3]
        );
        assert_eq!(
            r.select(&[m(MatchOp::Equal, "__name__", "up"), m(MatchOp::Equal, "job", "")]),
            vec![3]
        );
        assert_eq!(r.select(&[m(MatchOp::Regex, "job", "a|b")]), vec![0, 1, 2]);
        assert_eq!(r.select(&[m(MatchOp::Regex, "nope", ".+")]), Vec::<u64>::new());
    }
}
