//! `xfs`: per-file-system XFS statistics of `/sys/fs/xfs/<device>/stats/stats`.

use std::collections::HashMap;

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;
use crate::read;

/// Value counts procfs requires of the lines it knows (`None` = either of two).
const COUNTS: [(&str, usize, Option<usize>); 20] = [
    ("extent_alloc", 4, None),
    ("abt", 4, None),
    ("blk_map", 7, None),
    ("bmbt", 4, None),
    ("dir", 4, None),
    ("trans", 3, None),
    ("ig", 7, None),
    ("log", 5, None),
    ("push_ail", 10, None),
    ("xstrat", 2, None),
    ("rw", 2, None),
    ("attr", 4, None),
    ("icluster", 3, None),
    ("vnodes", 7, Some(8)),
    ("buf", 9, None),
    ("abtb2", 15, None),
    ("abtc2", 15, None),
    ("bmbt2", 15, None),
    ("ibt2", 15, None),
    ("qm", 8, Some(9)),
];

/// (line, index, metric suffix, help).
const METRICS: [(&str, usize, &str, &str); 39] = [
    (
        "extent_alloc",
        0,
        "extent_allocation_extents_allocated_total",
        "Number of extents allocated for a filesystem.",
    ),
    (
        "extent_alloc",
        1,
        "extent_allocation_blocks_allocated_total",
        "Number of blocks allocated for a filesystem.",
    ),
    (
        "extent_alloc",
        2,
        "extent_allocation_extents_freed_total",
        "Number of extents freed for a filesystem.",
    ),
    (
        "extent_alloc",
        3,
        "extent_allocation_blocks_freed_total",
        "Number of blocks freed for a filesystem.",
    ),
    (
        "abt",
        0,
        "allocation_btree_lookups_total",
        "Number of allocation B-tree lookups for a filesystem.",
    ),
    (
        "abt",
        1,
        "allocation_btree_compares_total",
        "Number of allocation B-tree compares for a filesystem.",
    ),
    (
        "abt",
        2,
        "allocation_btree_records_inserted_total",
        "Number of allocation B-tree records inserted for a filesystem.",
    ),
    (
        "abt",
        3,
        "allocation_btree_records_deleted_total",
        "Number of allocation B-tree records deleted for a filesystem.",
    ),
    (
        "blk_map",
        0,
        "block_mapping_reads_total",
        "Number of block map for read operations for a filesystem.",
    ),
    (
        "blk_map",
        1,
        "block_mapping_writes_total",
        "Number of block map for write operations for a filesystem.",
    ),
    (
        "blk_map",
        2,
        "block_mapping_unmaps_total",
        "Number of block unmaps (deletes) for a filesystem.",
    ),
    (
        "blk_map",
        3,
        "block_mapping_extent_list_insertions_total",
        "Number of extent list insertions for a filesystem.",
    ),
    (
        "blk_map",
        4,
        "block_mapping_extent_list_deletions_total",
        "Number of extent list deletions for a filesystem.",
    ),
    (
        "blk_map",
        5,
        "block_mapping_extent_list_lookups_total",
        "Number of extent list lookups for a filesystem.",
    ),
    (
        "blk_map",
        6,
        "block_mapping_extent_list_compares_total",
        "Number of extent list compares for a filesystem.",
    ),
    (
        "bmbt",
        0,
        "block_map_btree_lookups_total",
        "Number of block map B-tree lookups for a filesystem.",
    ),
    (
        "bmbt",
        1,
        "block_map_btree_compares_total",
        "Number of block map B-tree compares for a filesystem.",
    ),
    (
        "bmbt",
        2,
        "block_map_btree_records_inserted_total",
        "Number of block map B-tree records inserted for a filesystem.",
    ),
    (
        "bmbt",
        3,
        "block_map_btree_records_deleted_total",
        "Number of block map B-tree records deleted for a filesystem.",
    ),
    (
        "dir",
        0,
        "directory_operation_lookup_total",
        "Number of file name directory lookups which miss the operating systems directory name lookup cache.",
    ),
    (
        "dir",
        1,
        "directory_operation_create_total",
        "Number of times a new directory entry was created for a filesystem.",
    ),
    (
        "dir",
        2,
        "directory_operation_remove_total",
        "Number of times an existing directory entry was created for a filesystem.",
    ),
    (
        "dir",
        3,
        "directory_operation_getdents_total",
        "Number of times the directory getdents operation was performed for a filesystem.",
    ),
    (
        "ig",
        0,
        "inode_operation_attempts_total",
        "Number of times the OS looked for an XFS inode in the inode cache.",
    ),
    (
        "ig",
        1,
        "inode_operation_found_total",
        "Number of times the OS looked for and found an XFS inode in the inode cache.",
    ),
    (
        "ig",
        2,
        "inode_operation_recycled_total",
        "Number of times the OS found an XFS inode in the cache, but could not use it as it was being recycled.",
    ),
    (
        "ig",
        3,
        "inode_operation_missed_total",
        "Number of times the OS looked for an XFS inode in the cache, but did not find it.",
    ),
    (
        "ig",
        4,
        "inode_operation_duplicates_total",
        "Number of times the OS tried to add a missing XFS inode to the inode cache, but found it had already been added by another process.",
    ),
    (
        "ig",
        5,
        "inode_operation_reclaims_total",
        "Number of times the OS reclaimed an XFS inode from the inode cache to free memory for another purpose.",
    ),
    (
        "ig",
        6,
        "inode_operation_attribute_changes_total",
        "Number of times the OS explicitly changed the attributes of an XFS inode.",
    ),
    (
        "rw",
        1,
        "read_calls_total",
        "Number of read(2) system calls made to files in a filesystem.",
    ),
    (
        "rw",
        0,
        "write_calls_total",
        "Number of write(2) system calls made to files in a filesystem.",
    ),
    (
        "vnodes",
        0,
        "vnode_active_total",
        "Number of vnodes not on free lists for a filesystem.",
    ),
    (
        "vnodes",
        1,
        "vnode_allocate_total",
        "Number of times vn_alloc called for a filesystem.",
    ),
    (
        "vnodes",
        2,
        "vnode_get_total",
        "Number of times vn_get called for a filesystem.",
    ),
    (
        "vnodes",
        3,
        "vnode_hold_total",
        "Number of times vn_hold called for a filesystem.",
    ),
    (
        "vnodes",
        4,
        "vnode_release_total",
        "Number of times vn_rele called for a filesystem.",
    ),
    (
        "vnodes",
        5,
        "vnode_reclaim_total",
        "Number of times vn_reclaim called for a filesystem.",
    ),
    (
        "vnodes",
        6,
        "vnode_remove_total",
        "Number of times vn_remove called for a filesystem.",
    ),
];

fn parse(text: &str) -> std::result::Result<HashMap<&str, Vec<u32>>, String> {
    let mut lines = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 2 {
            continue;
        }
        let (label, values) = (f[0], &f[1..]);
        if label == "xpc" {
            if values.len() != 3 || values.iter().any(|v| v.parse::<u64>().is_err()) {
                return Err(format!("invalid xpc stats: {line:?}"));
            }
            continue;
        }
        let us: Vec<u32> = values
            .iter()
            .map(|v| v.parse::<u32>().map_err(|e| format!("{e}: {line:?}")))
            .collect::<std::result::Result<_, _>>()?;
        if let Some((_, n, alt)) = COUNTS.iter().find(|c| c.0 == label)
            && us.len() != *n
            && Some(us.len()) != *alt
        {
            return Err(format!(
                "incorrect number of values for XFS {label} stats: {}",
                us.len()
            ));
        }
        if label == "debug" && us.len() != 1 {
            return Err(format!("incorrect number of values for XFS debug stats: {}", us.len()));
        }
        lines.insert(label, us);
    }
    Ok(lines)
}

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let base = node.opts.sys("fs/xfs");
    let mut all = Vec::new();
    for device in read::dir_names(&base).unwrap_or_default() {
        let path = base.join(&device).join("stats/stats");
        if !path.is_file() {
            continue;
        }
        let text = read::string(&path)
            .map_err(|e| CollectError::at(&path, format_args!("failed to retrieve XFS stats: {e}")))?;
        let stats: HashMap<String, Vec<u32>> = parse(&text)
            .map_err(|e| CollectError::at(&path, format_args!("failed to retrieve XFS stats: {e}")))?
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        all.push((device, stats));
    }
    for (device, stats) in &all {
        for (line, i, suffix, help) in METRICS {
            let v = stats.get(line).and_then(|v| v.get(i)).copied().unwrap_or(0);
            out.counter(&format!("node_xfs_{suffix}"), help, &[("device", device)], f64::from(v));
        }
    }
    Ok(())
}
