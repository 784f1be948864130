use std::fmt;
use std::hash::Hasher;
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::{Error, METRIC_NAME, Result};

/// One label: a name and a value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    /// The label name.
    pub name: String,
    /// The label value; never empty inside a [`Labels`] (empty means absent).
    pub value: String,
}

/// A label set: sorted by name, names unique, no empty values. It identifies a series.
///
/// Immutable and shared: a clone is a reference count, not a copy of every name and
/// value, as Prometheus' `labels.Labels` (one immutable string) is passed around by
/// value. Label sets are handed from parsers to the store, from the registry to query
/// results and from series to rule outputs far more often than they are built.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(Arc<[Label]>);

impl Labels {
    /// The empty label set.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Builds a label set from pairs, sorting them, dropping empty values and
    /// rejecting duplicate names. Names are not validated (see [`Labels::validate`]).
    pub fn from_pairs<N: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (N, V)>) -> Result<Self> {
        let mut v: Vec<Label> = pairs
            .into_iter()
            .map(|(n, v)| Label {
                name: n.into(),
                value: v.into(),
            })
            .filter(|l| !l.value.is_empty())
            .collect();
        v.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = v.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(Error::DuplicateLabel(w[0].name.clone()));
        }
        Ok(Self(v.into()))
    }

    /// Checks every name against Prometheus' label-name rule and `__name__` against the
    /// metric-name rule.
    pub fn validate(&self) -> Result<()> {
        for l in self.0.iter() {
            if !is_valid_label_name(&l.name) {
                return Err(Error::InvalidLabelName(l.name.clone()));
            }
            if l.name == METRIC_NAME && !is_valid_metric_name(&l.value) {
                return Err(Error::InvalidMetricName(l.value.clone()));
            }
        }
        Ok(())
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Iterates labels in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A builder starting from this set, for edits such as relabeling.
    pub fn to_builder(&self) -> LabelsBuilder {
        LabelsBuilder {
            labels: self.0.to_vec(),
        }
    }

    /// The set without `__name__`: what most PromQL operations return.
    pub fn without_metric_name(&self) -> Labels {
        self.filter(|l| l.name != METRIC_NAME)
    }

    /// The labels for which `keep` returns true (the set stays sorted).
    pub fn filter(&self, mut keep: impl FnMut(&Label) -> bool) -> Labels {
        Labels(self.0.iter().filter(|l| keep(l)).cloned().collect())
    }

    /// Stable 64-bit hash of the label set (FNV-1a over names and values with
    /// separators). Stable across processes and versions, so it may be persisted or
    /// used to spread scrape offsets.
    pub fn stable_hash(&self) -> u64 {
        let mut h = Fnv1a::default();
        for l in self.0.iter() {
            h.write(l.name.as_bytes());
            h.write_u8(0xff);
            h.write(l.value.as_bytes());
            h.write_u8(0xff);
        }
        h.finish()
    }

    /// Fast 64-bit hash (xxh3) for in-memory indexes on the ingest path. Not for
    /// persisting: use [`Labels::stable_hash`] for anything that must stay stable.
    pub fn hash64(&self) -> u64 {
        Self::hash_pairs(self.0.iter().map(|l| (l.name.as_bytes(), l.value.as_bytes())))
    }

    /// [`Labels::hash64`] of the label set made of `pairs`, without building it: equal
    /// when `pairs` are sorted by name with no empty value (as a `Labels` holds them).
    /// The pairs are laid out in one buffer and hashed in one call: XXH3's streaming
    /// interface costs several times more on label-sized pieces.
    pub fn hash_pairs<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> u64 {
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BUF.with_borrow_mut(|buf| {
            buf.clear();
            for (name, value) in pairs {
                buf.extend_from_slice(name);
                buf.push(0xff);
                buf.extend_from_slice(value);
                buf.push(0xff);
            }
            xxhash_rust::xxh3::xxh3_64(buf)
        })
    }

    /// Total characters (not bytes) in names and values, as OpenMetrics counts an
    /// exemplar's label set against its 128-character limit.
    pub fn char_len(&self) -> usize {
        self.0
            .iter()
            .map(|l| l.name.chars().count() + l.value.chars().count())
            .sum()
    }
}

impl fmt::Display for Labels {
    /// Formats as `name{a="b", ...}` the way Prometheus prints series.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name().unwrap_or("");
        f.write_str(name)?;
        let rest: Vec<&Label> = self.0.iter().filter(|l| l.name != METRIC_NAME).collect();
        if rest.is_empty() && !name.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, l) in rest.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

impl Serialize for Labels {
    /// Serializes as a JSON object, Prometheus' wire shape for label sets.
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for l in self.0.iter() {
            m.serialize_entry(&l.name, &l.value)?;
        }
        m.end()
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Mutable label set used while relabeling or merging target and scraped labels.
/// Setting an empty value deletes the label, as in Prometheus.
#[derive(Debug, Clone, Default)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
}

impl LabelsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|l| l.name == name).map(|l| l.value.as_str())
    }

    /// Sets `name` to `value`; an empty value deletes it.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        if value.is_empty() {
            return self.del(name);
        }
        match self.labels.iter_mut().find(|l| l.name == name) {
            Some(l) => {
                l.value.clear();
                l.value.push_str(value);
            }
            None => self.labels.push(Label {
                name: name.to_owned(),
                value: value.to_owned(),
            }),
        }
        self
    }

    /// Deletes `name` if present.
    pub fn del(&mut self, name: &str) -> &mut Self {
        self.labels.retain(|l| l.name != name);
        self
    }

    /// Keeps only labels for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Label) -> bool) -> &mut Self {
        self.labels.retain(|l| keep(l));
        self
    }

    /// Iterates the current labels in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.labels.iter()
    }

    /// Finishes into a sorted [`Labels`]. Names are unique by construction.
    pub fn build(&self) -> Labels {
        let mut v = self.labels.clone();
        v.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Labels(v.into())
    }
}

/// True when `s` is a valid Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// True when `s` is a valid Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_' || b[0] == b':')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
}

/// FNV-1a, 64-bit: tiny, stable across Rust versions (unlike `DefaultHasher`).
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_pairs_sorts_drops_empty_and_rejects_duplicates() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("c", "")]).unwrap();
        assert_eq!(l.to_string(), r#"{a="1", b="2"}"#);
        assert_eq!(
            Labels::from_pairs([("a", "1"), ("a", "2")]),
            Err(Error::DuplicateLabel("a".into()))
        );
    }

    #[test]
    fn display_matches_prometheus() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "x")]).unwrap();
        assert_eq!(l.to_string(), r#"up{job="x"}"#);
        let l = Labels::from_pairs([("__name__", "up")]).unwrap();
        assert_eq!(l.to_string(), "up");
    }

    #[test]
    fn names() {
        assert!(is_valid_label_name("_a1"));
        assert!(!is_valid_label_name("1a"));
        assert!(!is_valid_label_name("a:b"));
        assert!(is_valid_metric_name("a:b_c"));
        assert!(!is_valid_metric_name("a-b"));
        assert!(!is_valid_metric_name(""));
    }

    #[test]
    fn stable_hash_is_stable() {
        // Published FNV-1a 64 test vector: scrape offsets depend on the hash never changing.
        let mut h = Fnv1a::default();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
        let a = Labels::from_pairs([("a", "1")]).unwrap();
        assert_ne!(a.stable_hash(), Labels::from_pairs([("a", "2")]).unwrap().stable_hash());
    }

    #[test]
    fn builder_set_empty_deletes() {
        let mut b = Labels::from_pairs([("a", "1"), ("b", "2")]).unwrap().to_builder();
        b.set("a", "").set("c", "3");
        assert_eq!(b.build().to_string(), r#"{b="2", c="3"}"#);
    }
}
