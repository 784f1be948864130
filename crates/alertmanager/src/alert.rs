//! Alerts as the router keeps them: identity (fingerprint), the validation and
//! defaults of posted alerts, Alertmanager's merge of a re-posted alert into the
//! stored one, resolution, and its notification order.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use sextant_model::{Labels, PostableAlert};

/// An alert held by the router. Times are epoch milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Identity.
    pub labels: Labels,
    /// Descriptions.
    pub annotations: BTreeMap<String, String>,
    /// When it started.
    pub starts_at: i64,
    /// When it ends (or ended); `None` is Go's zero time, never set.
    pub ends_at: Option<i64>,
    /// Link to its source.
    pub generator_url: String,
    /// When the router last received it.
    pub updated_at: i64,
    /// `ends_at` was not given but set from the resolve timeout.
    pub timeout: bool,
}

/// Alertmanager's fingerprint of a label set: FNV-1a 64 over each name and value,
/// each followed by 0xff, in name order.
pub fn fingerprint(labels: &Labels) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: &[u8]| {
        for x in b {
            h ^= u64::from(*x);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for l in labels.iter() {
        eat(l.name.as_bytes());
        eat(&[0xff]);
        eat(l.value.as_bytes());
        eat(&[0xff]);
    }
    h
}

/// A fingerprint as Alertmanager prints it: 16 hex digits.
pub fn fingerprint_string(fp: u64) -> String {
    format!("{fp:016x}")
}

/// The hash the notification log keeps per alert (XXH64 of names and values,
/// each followed by 0xff).
pub fn dedup_hash(labels: &Labels) -> u64 {
    let mut buf = Vec::with_capacity(labels.char_len() + labels.len() * 2);
    for l in labels.iter() {
        buf.extend_from_slice(l.name.as_bytes());
        buf.push(0xff);
        buf.extend_from_slice(l.value.as_bytes());
        buf.push(0xff);
    }
    xxhash_rust::xxh64::xxh64(&buf, 0)
}

impl Alert {
    /// The alert's fingerprint.
    pub fn fingerprint(&self) -> u64 {
        fingerprint(&self.labels)
    }

    /// Resolved at `t`: an end that is not after `t`.
    pub fn resolved_at(&self, t: i64) -> bool {
        self.ends_at.is_some_and(|e| e <= t)
    }

    /// Accepts a posted alert at `now` as Alertmanager does: a missing start is the
    /// end (if given) or now; a missing end is now plus the resolve timeout, marked
    /// as a timeout; labels with empty values were dropped already. Errors are
    /// Alertmanager's.
    pub fn from_posted(p: PostableAlert, now: i64, resolve_timeout_ms: i64) -> Result<Self, String> {
        let starts_at = p.starts_at_ms.or(p.ends_at_ms).unwrap_or(now);
        let (ends_at, timeout) = match p.ends_at_ms {
            Some(e) => (Some(e), false),
            None => (Some(now + resolve_timeout_ms), true),
        };
        if !timeout && ends_at.is_some_and(|e| e < starts_at) {
            return Err("start time must be before end time".into());
        }
        if let Some(bad) = p.labels.iter().find(|l| !sextant_model::is_valid_label_name(&l.name)) {
            return Err(format!("invalid label set: invalid name {:?}", bad.name));
        }
        if p.labels.is_empty() {
            return Err("at least one label pair required".into());
        }
        if let Some(bad) = p.annotations.keys().find(|k| !sextant_model::is_valid_label_name(k)) {
            return Err(format!("invalid annotations: invalid name {bad:?}"));
        }
        Ok(Self {
            labels: p.labels,
            annotations: p.annotations,
            starts_at,
            ends_at,
            generator_url: p.generator_url,
            updated_at: now,
            timeout,
        })
    }

    /// Whether `new` overlaps this alert's activity (then it is merged into it,
    /// otherwise it replaces it).
    pub fn overlaps(&self, new: &Alert) -> bool {
        let end = self.ends_at.unwrap_or(i64::MAX);
        let new_end = new.ends_at.unwrap_or(i64::MAX);
        (new_end > self.starts_at && new_end < end) || (new.starts_at > self.starts_at && new.starts_at < end)
    }

    /// Alertmanager's `Merge`: the newer alert's content, the earlier start, and the
    /// end that the rules choose. `now` decides what counts as resolved.
    pub fn merge(&self, other: &Alert, now: i64) -> Alert {
        let (older, newer) = if other.updated_at < self.updated_at {
            (other, self)
        } else {
            (self, other)
        };
        let mut res = newer.clone();
        res.starts_at = older.starts_at.min(newer.starts_at);
        if newer.resolved_at(now) {
            // Both resolved: the later end. Otherwise the newer's.
            if older.resolved_at(now) && older.ends_at > newer.ends_at {
                res.ends_at = older.ends_at;
            }
        } else if older.ends_at > newer.ends_at && !older.timeout {
            res.ends_at = older.ends_at;
        }
        res
    }
}

/// Alertmanager's `AlertSlice` order: by `job`, then `instance` (an alert with the
/// label before one without), then the label sets.
pub fn compare(a: &Labels, b: &Labels) -> Ordering {
    for key in ["job", "instance"] {
        match (a.get(key), b.get(key)) {
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            (Some(_), None) => return Ordering::Less,
            (None, Some(_)) => return Ordering::Greater,
            _ => {}
        }
    }
    labelset_before(a, b)
}

/// Alertmanager's `LabelSet.Before`: fewer labels first, then the first name that
/// differs (a name only in the left set sorts it first), then the first value.
pub fn labelset_before(a: &Labels, b: &Labels) -> Ordering {
    if a.len() != b.len() {
        return a.len().cmp(&b.len());
    }
    let mut names: Vec<&str> = a.iter().chain(b.iter()).map(|l| l.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for n in names {
        match (a.get(n), b.get(n)) {
            (None, Some(_)) => return Ordering::Greater,
            (Some(_), None) => return Ordering::Less,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn fingerprints_and_hashes_are_alertmanagers() {
        assert_eq!(fingerprint_string(fingerprint(&Labels::empty())), "cbf29ce484222325");
        for (labels, want) in [
            (
                l(&[
                    ("alertname", "A"),
                    ("instance", "i2"),
                    ("severity", "critical"),
                    ("team", "a"),
                ]),
                "3f83187df0f5df01",
            ),
            (l(&[("job", "foo"), ("severity", "warning")]), "9266ef3da838ad95"),
            (l(&[("job", "foo"), ("severity", "critical")]), "3b15fd163d36582e"),
            (l(&[("job", "bar"), ("severity", "critical")]), "c7e68cb08e3e67f9"),
        ] {
            assert_eq!(fingerprint_string(fingerprint(&labels)), want, "{labels}");
        }
        assert_eq!(dedup_hash(&Labels::empty()), 17_241_709_254_077_376_921);
        assert_eq!(dedup_hash(&l(&[("alertname", "A")])), 17_848_056_488_971_163_132);
        assert_eq!(
            dedup_hash(&l(&[
                ("another", "value"),
                ("bar", "the_second_value"),
                ("foo", "the_first_value")
            ])),
            9_492_422_502_236_326_991
        );
    }

    /// `types/types_test.go`, `TestAlertMerge`: symmetric, as Alertmanager's.
    #[test]
    fn merge_as_alertmanager() {
        let now = 1_000_000_000;
        let m = 60_000;
        let a = |s: i64, e: i64, u: i64, t: bool| Alert {
            labels: l(&[("a", "b")]),
            annotations: BTreeMap::new(),
            starts_at: now + s * m,
            ends_at: Some(now + e * m),
            generator_url: String::new(),
            updated_at: now + u * m,
            timeout: t,
        };
        for (x, y, want) in [
            (a(-2, 2, 0, true), a(-1, 3, 1, true), a(-2, 3, 1, true)),
            (a(-1, 3, 0, true), a(0, 2, 1, false), a(-1, 2, 1, false)),
            (a(-1, 3, 0, false), a(0, 2, 1, true), a(-1, 3, 1, true)),
            (a(-1, 3, 0, false), a(0, 2, 1, false), a(-1, 3, 1, false)),
            (a(-1, 3, 0, false), a(-1, 4, 1, false), a(-1, 4, 1, false)),
            (a(-3, -1, 0, false), a(-2, 1, 1, false), a(-3, 1, 1, false)),
            (a(-2, 3, 0, false), a(-2, 0, 1, false), a(-2, 0, 1, false)),
            (a(-3, -1, -1, false), a(-4, -2, 1, false), a(-4, -1, 1, false)),
        ] {
            assert_eq!(x.merge(&y, now), want, "{x:?} + {y:?}");
            assert_eq!(y.merge(&x, now), want, "{y:?} + {x:?}");
        }
    }

    /// `TestAlertSliceSort`.
    #[test]
    fn notification_order() {
        let a1 = l(&[("job", "j1"), ("instance", "i1"), ("alertname", "an1")]);
        let a2 = l(&[("job", "j1"), ("instance", "i1"), ("alertname", "an2")]);
        let a3 = l(&[("job", "j2"), ("instance", "i1"), ("alertname", "an1")]);
        let a4 = l(&[("alertname", "an1")]);
        let a5 = l(&[("alertname", "an2")]);
        let sorted = |mut v: Vec<Labels>| {
            v.sort_by(compare);
            v
        };
        assert_eq!(sorted(vec![a2.clone(), a1.clone()]), [a1.clone(), a2.clone()]);
        assert_eq!(sorted(vec![a3.clone(), a2.clone(), a1.clone()]), [a1, a2.clone(), a3]);
        assert_eq!(
            sorted(vec![a4.clone(), a2.clone(), a4.clone()]),
            [a2, a4.clone(), a4.clone()]
        );
        assert_eq!(sorted(vec![a5.clone(), a4.clone()]), [a4, a5]);
    }

    #[test]
    fn posted_alerts_get_alertmanagers_defaults_and_errors() {
        let now = 1_000_000;
        let p = |s: Option<i64>, e: Option<i64>, labels: &[(&str, &str)]| PostableAlert {
            labels: l(labels),
            annotations: BTreeMap::new(),
            starts_at_ms: s,
            ends_at_ms: e,
            generator_url: String::new(),
        };
        let a = Alert::from_posted(p(None, None, &[("a", "b")]), now, 300_000).unwrap();
        assert_eq!((a.starts_at, a.ends_at, a.timeout), (now, Some(now + 300_000), true));
        let a = Alert::from_posted(p(None, Some(5), &[("a", "b")]), now, 300_000).unwrap();
        assert_eq!((a.starts_at, a.ends_at, a.timeout), (5, Some(5), false));
        assert_eq!(
            Alert::from_posted(p(Some(10), Some(5), &[("a", "b")]), now, 0).unwrap_err(),
            "start time must be before end time"
        );
        assert_eq!(
            Alert::from_posted(p(None, None, &[]), now, 0).unwrap_err(),
            "at least one label pair required"
        );
        assert_eq!(
            Alert::from_posted(p(None, None, &[("0a", "x")]), now, 0).unwrap_err(),
            "invalid label set: invalid name \"0a\""
        );
    }
}
