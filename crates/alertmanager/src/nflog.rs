//! The notification log: per group and integration, what was last notified (the
//! firing and resolved alerts, by hash) and when; it decides whether a flush sends
//! anything (Alertmanager's `DedupStage`) and survives restarts through the
//! router's write-ahead log, so nothing is sent twice before its repeat interval.

use std::collections::{HashMap, HashSet};

/// What was last notified for one group through one integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `<group key>:<receiver>/<integration>/<index>`.
    pub key: String,
    /// When it was sent (epoch ms, after the send completed).
    pub timestamp: i64,
    /// Hashes of the firing alerts it carried.
    pub firing: Vec<u64>,
    /// Hashes of the resolved alerts it carried.
    pub resolved: Vec<u64>,
    /// When the entry may be forgotten.
    pub expires_at: i64,
}

/// The log.
#[derive(Debug, Clone, Default)]
pub struct NotificationLog {
    entries: HashMap<String, Entry>,
}

/// The key of a group's entry for one integration.
pub fn key(group_key: &str, receiver: &str, integration: &str, index: usize) -> String {
    format!("{group_key}:{receiver}/{integration}/{index}")
}

impl NotificationLog {
    /// The entry for a key.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Records an entry (an older one never replaces a newer).
    pub fn put(&mut self, e: Entry) {
        match self.entries.get(&e.key) {
            Some(old) if old.timestamp > e.timestamp => {}
            _ => {
                self.entries.insert(e.key.clone(), e);
            }
        }
    }

    /// Forgets expired entries; returns how many.
    pub fn gc(&mut self, now: i64) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, e| e.expires_at > now);
        before - self.entries.len()
    }

    /// Every entry (for checkpoints).
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }
}

/// Alertmanager's `needsUpdate`: whether a flush with these firing and resolved
/// alerts must notify, given the last entry.
pub fn needs_update(
    entry: Option<&Entry>,
    firing: &HashSet<u64>,
    resolved: &HashSet<u64>,
    repeat_ms: i64,
    send_resolved: bool,
    now: i64,
) -> bool {
    let Some(e) = entry else {
        return !firing.is_empty();
    };
    let logged_firing: HashSet<u64> = e.firing.iter().copied().collect();
    if !firing.is_subset(&logged_firing) {
        return true;
    }
    if firing.is_empty() {
        // All resolved: notify once, whether or not resolved alerts are sent.
        return !logged_firing.is_empty();
    }
    let logged_resolved: HashSet<u64> = e.resolved.iter().copied().collect();
    if send_resolved && !resolved.is_subset(&logged_resolved) {
        return true;
    }
    e.timestamp < now - repeat_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `notify/notify_test.go`, `TestDedupStageNeedsUpdate`.
    #[test]
    fn needs_update_as_alertmanager() {
        let now = 1_000_000_000;
        let min = 60_000;
        let set = |v: &[u64]| v.iter().copied().collect::<HashSet<u64>>();
        let e = |f: &[u64], r: &[u64], ts: i64| Entry {
            key: String::new(),
            timestamp: ts,
            firing: f.to_vec(),
            resolved: r.to_vec(),
            expires_at: i64::MAX,
        };
        type Case<'a> = (Option<Entry>, &'a [u64], &'a [u64], i64, bool, bool);
        let cases: Vec<Case<'_>> = vec![
            (None, &[2, 3, 4], &[], 0, false, true),
            (None, &[], &[2, 3, 4], 0, false, false),
            (Some(e(&[1, 2, 3], &[], now)), &[2, 3, 4], &[], 0, false, true),
            (Some(e(&[1, 2, 3], &[], 0)), &[1, 2, 3], &[], 0, false, true),
            (
                Some(e(&[1, 2, 3], &[], now - 9 * min)),
                &[1, 2, 3],
                &[],
                10 * min,
                false,
                false,
            ),
            (
                Some(e(&[1, 2, 3], &[], now - 11 * min)),
                &[1, 2, 3],
                &[],
                10 * min,
                false,
                true,
            ),
            (
                Some(e(&[], &[1, 2, 3], now - 11 * min)),
                &[],
                &[3, 4, 5],
                10 * min,
                true,
                false,
            ),
            (
                Some(e(&[1, 2], &[3], now - 9 * min)),
                &[1],
                &[2, 3],
                10 * min,
                false,
                false,
            ),
            (
                Some(e(&[1, 2], &[3], now - 9 * min)),
                &[1],
                &[2, 3],
                10 * min,
                true,
                true,
            ),
            (
                Some(e(&[1, 2], &[3], now - 9 * min)),
                &[],
                &[1, 2, 3],
                10 * min,
                false,
                true,
            ),
            (
                Some(e(&[1, 2], &[3], now - 9 * min)),
                &[],
                &[1, 2, 3],
                10 * min,
                true,
                true,
            ),
        ];
        for (i, (entry, firing, resolved, repeat, send_resolved, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                needs_update(entry.as_ref(), &set(firing), &set(resolved), repeat, send_resolved, now),
                want,
                "case {i}"
            );
        }
    }

    #[test]
    fn newer_entries_win_and_expired_ones_go() {
        let mut log = NotificationLog::default();
        let e = |ts: i64, exp: i64| Entry {
            key: "k".into(),
            timestamp: ts,
            firing: vec![],
            resolved: vec![],
            expires_at: exp,
        };
        log.put(e(10, 100));
        log.put(e(5, 100));
        assert_eq!(log.get("k").unwrap().timestamp, 10);
        assert_eq!(log.gc(100), 1);
        assert!(log.get("k").is_none());
    }
}
