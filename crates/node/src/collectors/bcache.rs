//! `bcache`: bcache cache sets, their backing and cache devices (`/sys/fs/bcache`).

use std::path::{Path, PathBuf};

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;
use crate::read;

/// Reads values the way procfs' bcache parser does: the first error sticks and later
/// reads return 0; a missing file reads as 0.
#[derive(Default)]
struct Reader {
    err: Option<String>,
}

impl Reader {
    fn value(&mut self, dir: &Path, file: &str) -> f64 {
        if self.err.is_some() {
            return 0.0;
        }
        let path = dir.join(file);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return 0.0,
            Err(_) => {
                self.err = Some(format!("failed to read: {}", path.display()));
                return 0.0;
            }
        };
        // The last byte is dropped unconditionally (it is the kernel's newline).
        let text = String::from_utf8_lossy(&bytes[..bytes.len().saturating_sub(1)]).into_owned();
        match dehumanize(&text) {
            Ok(v) => v as f64,
            Err(e) => {
                self.err = Some(format!("{}: {e}", path.display()));
                0.0
            }
        }
    }

    fn lines(&mut self, dir: &Path, file: &str) -> Vec<String> {
        if self.err.is_some() {
            return Vec::new();
        }
        let path = dir.join(file);
        match read::string(&path) {
            Ok(t) => t.lines().map(str::to_owned).collect(),
            Err(_) => {
                self.err = Some(format!("failed to read: {}", path.display()));
                Vec::new()
            }
        }
    }
}

/// bcache's human-readable numbers (`3.9M`, `1.6G`, `512`): the fraction after the
/// point is in 1024ths shown as hundredths, as bch_hprint prints them.
fn dehumanize(s: &str) -> std::result::Result<u64, String> {
    let Some(last) = s.bytes().last() else {
        return Err("zero-length reply".into());
    };
    if last > b'9' {
        let mul: f64 = match last {
            b'k' => 2f64.powi(10),
            b'M' => 2f64.powi(20),
            b'G' => 2f64.powi(30),
            b'T' => 2f64.powi(40),
            b'P' => 2f64.powi(50),
            b'E' => 2f64.powi(60),
            b'Z' => 2f64.powi(70),
            b'Y' => 2f64.powi(80),
            _ => 0.0,
        };
        let body = &s[..s.len() - 1];
        let mut parts = body.split('.');
        let int: f64 = parts
            .next()
            .unwrap_or("")
            .parse()
            .map_err(|e| format!("{e}: {body:?}"))?;
        let mant = match parts.next() {
            Some(frac) => int + frac.parse::<f64>().map_err(|e| format!("{e}: {body:?}"))? / 10.24,
            None => int,
        };
        Ok((mant * mul) as u64)
    } else {
        s.parse::<f64>().map(|v| v as u64).map_err(|e| format!("{e}: {s:?}"))
    }
}

fn dehumanize_signed(s: &str) -> std::result::Result<i64, String> {
    let v = dehumanize(s.strip_prefix('-').unwrap_or(s))? as i64;
    Ok(if s.starts_with('-') { -v } else { v })
}

/// The `writeback_rate_debug` values: rate, dirty, target, proportional, integral, change.
fn writeback(lines: &[String]) -> std::result::Result<[f64; 6], String> {
    let mut v = [0.0; 6];
    for line in lines {
        let last = line.split_whitespace().last().unwrap_or("");
        if line.starts_with("rate:") {
            v[0] = dehumanize(last.trim_end_matches("/sec"))? as f64;
        } else if line.starts_with("dirty:") {
            v[1] = dehumanize(last)? as f64;
        } else if line.starts_with("target:") {
            v[2] = dehumanize(last)? as f64;
        } else if line.starts_with("proportional:") {
            v[3] = dehumanize_signed(last)? as f64;
        } else if line.starts_with("integral:") {
            v[4] = dehumanize_signed(last)? as f64;
        } else if line.starts_with("change:") {
            v[5] = dehumanize_signed(last.trim_end_matches("/sec"))? as f64;
        } else if line.starts_with("next io:") {
            last.trim_end_matches("ms")
                .parse::<i64>()
                .map_err(|e| format!("{e}: {line:?}"))?;
        }
    }
    Ok(v)
}

const SET: [(&str, &str, &str); 6] = [
    (
        "average_key_size",
        "average_key_size_sectors",
        "Average data per key in the btree (sectors).",
    ),
    (
        "btree_cache_size",
        "btree_cache_size_bytes",
        "Amount of memory currently used by the btree cache.",
    ),
    (
        "cache_available_percent",
        "cache_available_percent",
        "Percentage of cache device without dirty data, usable for writeback (may contain clean cached data).",
    ),
    ("congested", "congested", "Congestion."),
    (
        "root_usage_percent",
        "root_usage_percent",
        "Percentage of the root btree node in use (tree depth increases if too high).",
    ),
    ("tree_depth", "tree_depth", "Depth of the btree."),
];

const BDEV_TOTALS: [(&str, &str, &str); 7] = [
    (
        "bypassed",
        "bypassed_bytes_total",
        "Amount of IO (both reads and writes) that has bypassed the cache.",
    ),
    (
        "cache_hits",
        "cache_hits_total",
        "Hits counted per individual IO as bcache sees them.",
    ),
    (
        "cache_misses",
        "cache_misses_total",
        "Misses counted per individual IO as bcache sees them.",
    ),
    (
        "cache_bypass_hits",
        "cache_bypass_hits_total",
        "Hits for IO intended to skip the cache.",
    ),
    (
        "cache_bypass_misses",
        "cache_bypass_misses_total",
        "Misses for IO intended to skip the cache.",
    ),
    (
        "cache_miss_collisions",
        "cache_miss_collisions_total",
        "Instances where data insertion from cache miss raced with write (data already present).",
    ),
    (
        "cache_readaheads",
        "cache_readaheads_total",
        "Count of times readahead occurred.",
    ),
];

/// Statistics files read (and validated) but not exposed.
const STATS_FILES: [&str; 7] = [
    "bypassed",
    "cache_hits",
    "cache_misses",
    "cache_bypass_hits",
    "cache_bypass_misses",
    "cache_miss_collisions",
    "cache_readaheads",
];

/// (metric suffix, help, counter?, value) of one series.
type Values = Vec<(&'static str, &'static str, bool, f64)>;

struct Set {
    uuid: String,
    values: Values,
    bdevs: Vec<(String, Values)>,
    caches: Vec<(String, Values)>,
}

/// Entries of `dir` matching `<prefix>[0-9]*`.
fn numbered_dirs(dir: &Path, prefix: &str) -> Vec<(String, PathBuf)> {
    read::numbered(dir, prefix)
        .into_iter()
        .map(|(rest, p)| (format!("{prefix}{rest}"), p))
        .collect()
}

fn set(dir: &Path, uuid: String, priority: bool) -> std::result::Result<Set, String> {
    let mut r = Reader::default();
    let mut values = Vec::new();
    for (file, metric, help) in SET {
        values.push((metric, help, false, r.value(dir, file)));
    }
    let internal = dir.join("internal");
    values.push((
        "active_journal_entries",
        "Number of journal entries that are newer than the index.",
        false,
        r.value(&internal, "active_journal_entries"),
    ));
    values.push((
        "btree_nodes",
        "Total nodes in the btree.",
        false,
        r.value(&internal, "btree_nodes"),
    ));
    // node_exporter treats the microseconds as nanoseconds.
    values.push((
        "btree_read_average_duration_seconds",
        "Average btree read duration.",
        false,
        r.value(&internal, "btree_read_average_duration_us") * 1e-9,
    ));
    values.push((
        "cache_read_races_total",
        "Counts instances where while data was being read from the cache, the bucket was reused and invalidated - i.e. where the pointer was stale after the read completed.",
        true,
        r.value(&internal, "cache_read_races"),
    ));
    for sub in ["stats_five_minute", "stats_total"] {
        for f in STATS_FILES {
            r.value(&dir.join(sub), f);
        }
    }
    if let Some(e) = r.err.take() {
        return Err(e);
    }
    let mut bdevs = Vec::new();
    for (name, bdev) in numbered_dirs(dir, "bdev") {
        let mut v = vec![(
            "dirty_data_bytes",
            "Amount of dirty data for this backing device in the cache.",
            false,
            r.value(&bdev, "dirty_data"),
        )];
        let lines = r.lines(&bdev, "writeback_rate_debug");
        let wrd = if r.err.is_none() {
            writeback(&lines)
                .map_err(|e| format!("failed to parse path {:?}: {e}", bdev.join("writeback_rate_debug")))?
        } else {
            [0.0; 6]
        };
        v.extend([
            (
                "dirty_target_bytes",
                "Current dirty data target threshold for this backing device in bytes.",
                false,
                wrd[2],
            ),
            (
                "writeback_rate",
                "Current writeback rate for this backing device in bytes.",
                false,
                wrd[0],
            ),
            (
                "writeback_rate_proportional_term",
                "Current result of proportional controller, part of writeback rate",
                false,
                wrd[3],
            ),
            (
                "writeback_rate_integral_term",
                "Current result of integral controller, part of writeback rate",
                false,
                wrd[4],
            ),
            (
                "writeback_change",
                "Last writeback rate change step for this backing device.",
                false,
                wrd[5],
            ),
        ]);
        for f in STATS_FILES {
            r.value(&bdev.join("stats_five_minute"), f);
        }
        for (file, metric, help) in BDEV_TOTALS {
            v.push((metric, help, true, r.value(&bdev.join("stats_total"), file)));
        }
        bdevs.push((name, v));
    }
    if let Some(e) = r.err.take() {
        return Err(e);
    }
    let mut caches = Vec::new();
    for (name, cache) in numbered_dirs(dir, "cache") {
        let mut v = vec![
            (
                "io_errors",
                "Number of errors that have occurred, decayed by io_error_halflife.",
                false,
                r.value(&cache, "io_errors"),
            ),
            (
                "metadata_written_bytes_total",
                "Sum of all non data writes (btree writes and all other metadata).",
                true,
                r.value(&cache, "metadata_written"),
            ),
            (
                "written_bytes_total",
                "Sum of all data that has been written to the cache.",
                true,
                r.value(&cache, "written"),
            ),
        ];
        if priority {
            let (mut unused, mut metadata) = (0.0, 0.0);
            for line in r.lines(&cache, "priority_stats") {
                let pct = || -> std::result::Result<f64, String> {
                    let last = line.split_whitespace().last().unwrap_or("");
                    last.trim_end_matches('%')
                        .parse::<u64>()
                        .map(|n| n as f64)
                        .map_err(|e| format!("failed to parse path {:?}: {e}", cache.join("priority_stats")))
                };
                if line.starts_with("Unused:") {
                    unused = pct()?;
                } else if line.starts_with("Metadata:") {
                    metadata = pct()?;
                }
            }
            v.push((
                "priority_stats_unused_percent",
                "The percentage of the cache that doesn't contain any data.",
                false,
                unused,
            ));
            v.push((
                "priority_stats_metadata_percent",
                "Bcache's metadata overhead.",
                false,
                metadata,
            ));
        }
        caches.push((name, v));
    }
    if let Some(e) = r.err.take() {
        return Err(e);
    }
    Ok(Set {
        uuid,
        values,
        bdevs,
        caches,
    })
}

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let base = node.opts.sys("fs/bcache");
    let mut sets = Vec::new();
    for name in read::dir_names(&base).unwrap_or_default() {
        // Cache sets are named by their UUID (a `*-*` glob); the rest are control files.
        if !name.contains('-') {
            continue;
        }
        let dir = base.join(&name);
        sets.push(
            set(&dir, name, node.opts.bcache_priority_stats)
                .map_err(|e| CollectError::Failed(format!("failed to retrieve bcache stats: {e}")))?,
        );
    }
    let emit = |out: &mut Out, metric: &str, help: &str, counter: bool, labels: &[(&str, &str)], v: f64| {
        let name = format!("node_bcache_{metric}");
        if counter {
            out.counter(&name, help, labels, v);
        } else {
            out.gauge(&name, help, labels, v);
        }
    };
    for s in &sets {
        for (metric, help, counter, v) in &s.values {
            emit(out, metric, help, *counter, &[("uuid", &s.uuid)], *v);
        }
        for (bdev, values) in &s.bdevs {
            for (metric, help, counter, v) in values {
                emit(
                    out,
                    metric,
                    help,
                    *counter,
                    &[("uuid", &s.uuid), ("backing_device", bdev)],
                    *v,
                );
            }
        }
        for (cache, values) in &s.caches {
            for (metric, help, counter, v) in values {
                emit(
                    out,
                    metric,
                    help,
                    *counter,
                    &[("uuid", &s.uuid), ("cache_device", cache)],
                    *v,
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bch_hprint_numbers() {
        assert_eq!(dehumanize("3.9M").unwrap(), 4_067_328);
        assert_eq!(dehumanize("1.6G").unwrap(), 1_702_887_424);
        assert_eq!(dehumanize_signed("-6.2k").unwrap(), -6344);
        assert_eq!(dehumanize("118.5M").unwrap(), 124_243_968);
        assert_eq!(dehumanize("512").unwrap(), 512);
        assert!(dehumanize("").is_err());
    }
}
