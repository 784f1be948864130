//! `zfs`: OpenZFS kstats of `/proc/spl/kstat/zfs`: module-wide statistics, and per pool
//! its I/O counters, datasets and state.

use std::path::{Path, PathBuf};

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;
use crate::read;

/// (subsystem, kstat file) of the module-wide statistics.
const SUBSYSTEMS: [(&str, &str); 11] = [
    ("zfs_abd", "abdstats"),
    ("zfs_arc", "arcstats"),
    ("zfs_dbuf", "dbuf_stats"),
    ("zfs_dmu_tx", "dmu_tx"),
    ("zfs_dnode", "dnodestats"),
    ("zfs_fm", "fm"),
    ("zfs_vdev_cache", "vdev_cache_stats"),
    ("zfs_vdev_mirror", "vdev_mirror_stats"),
    ("zfs_xuio", "xuio_stats"),
    ("zfs_zfetch", "zfetchstats"),
    ("zfs_zil", "zil"),
];

const POOL_STATES: [&str; 6] = ["online", "degraded", "faulted", "offline", "removed", "unavail"];

/// kstat type of unsigned 64-bit values, the only ones exposed.
const KSTAT_DATA_UINT64: &str = "4";

/// The `name type data` rows of a named kstat file, after its header line.
fn named_rows(text: &str) -> Option<Vec<Vec<&str>>> {
    let mut rows = Vec::new();
    let mut header = false;
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if !header {
            header = parts == ["name", "type", "data"];
            continue;
        }
        if parts.len() >= 3 {
            rows.push(parts);
        }
    }
    header.then_some(rows)
}

fn uint(v: &str, key: &str) -> Result<f64> {
    v.parse::<u64>()
        .map(|n| n as f64)
        .map_err(|_| CollectError::Failed(format!("could not parse expected integer value for {key:?}")))
}

/// Paths `<base>/<pool>/<file>` where `file` matches `prefix*`, sorted, with the pool.
fn pool_files(base: &Path, matches: impl Fn(&str) -> bool) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    for pool in read::dir_names(base).unwrap_or_default() {
        let dir = base.join(&pool);
        for f in read::dir_names(&dir).unwrap_or_default() {
            if matches(&f) {
                found.push((pool.clone(), dir.join(f)));
            }
        }
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    found
}

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let base = node.opts.proc("spl/kstat/zfs");
    if std::fs::read_dir(&base).is_err() {
        return Err(CollectError::NoData);
    }
    let unavailable = |p: &Path| CollectError::at(p, "zfs kstats are not available");
    for (subsystem, file) in SUBSYSTEMS {
        let Ok(text) = read::string(&base.join(file)) else {
            continue;
        };
        let rows =
            named_rows(&text).ok_or_else(|| CollectError::Failed(format!("did not parse a single {file:?} metric")))?;
        for row in rows.iter().filter(|r| r[1] == KSTAT_DATA_UINT64) {
            let key = format!("kstat.zfs.misc.{file}.{}", row[0]);
            let v = uint(row[2], &key)?;
            out.untyped(&format!("node_{subsystem}_{}", metric_name(&key)), &key, &[], v);
        }
    }
    for (pool, path) in pool_files(&base, |f| f == "io") {
        let text = read::string(&path).map_err(|_| unavailable(&path))?;
        let mut header: Option<Vec<&str>> = None;
        for line in text.lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let Some(fields) = &header else {
                if parts.len() >= 12 && parts[0] == "nread" {
                    header = Some(parts);
                }
                continue;
            };
            if parts.len() < fields.len() {
                return Err(CollectError::at(&path, "short data line"));
            }
            for (field, v) in fields.iter().zip(&parts) {
                let key = format!("kstat.zfs.misc.io.{field}");
                let v = uint(v, &key)?;
                out.untyped(
                    &format!("node_zfs_zpool_{}", metric_name(&key)),
                    &key,
                    &[("zpool", &pool)],
                    v,
                );
            }
        }
    }
    for (pool, path) in pool_files(&base, |f| f.starts_with("objset-")) {
        let text = read::string(&path).map_err(|_| unavailable(&path))?;
        let Some(rows) = named_rows(&text) else {
            return Err(CollectError::Failed(format!("did not parse a single {pool} metric")));
        };
        // Rows before `dataset_name` belong to no pool or dataset, as in node_exporter.
        let (mut zpool, mut dataset) = (String::new(), String::new());
        for row in rows {
            if row[0] == "dataset_name" {
                zpool = pool.clone();
                dataset = row[2].to_owned();
                continue;
            }
            if row[1] == KSTAT_DATA_UINT64 {
                let key = format!("kstat.zfs.misc.objset.{}", row[0]);
                let v = uint(row[2], &key)?;
                out.untyped(
                    &format!("node_zfs_zpool_dataset_{}", metric_name(&key)),
                    &key,
                    &[("zpool", &zpool), ("dataset", &dataset)],
                    v,
                );
            }
        }
    }
    for (pool, path) in pool_files(&base, |f| f == "state") {
        let text = read::string(&path).map_err(|_| unavailable(&path))?;
        let state = text.lines().next().unwrap_or("").to_lowercase();
        for s in POOL_STATES {
            out.gauge(
                "node_zfs_zpool_state",
                "kstat.zfs.misc.state",
                &[("zpool", &pool), ("state", s)],
                f64::from(u8::from(state == s)),
            );
        }
    }
    Ok(())
}

/// The part of a kstat key after its last dot, `-` made `_`.
fn metric_name(key: &str) -> String {
    key.rsplit('.').next().unwrap_or(key).replace('-', "_")
}
