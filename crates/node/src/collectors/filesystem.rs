//! `filesystem`: size, free space and inodes of mounted file systems (statfs(2) on each
//! mount point of `/proc/1/mounts`), less the excluded mount points and types.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;
use crate::read;

/// A statfs(2) that has not returned after this long marks its mount point stuck: later
/// scrapes report it as a device error instead of waiting on it (a hung NFS server).
const MOUNT_TIMEOUT: Duration = Duration::from_secs(5);

/// statfs calls in flight, by mount point, with when they started.
#[derive(Debug, Default)]
pub(crate) struct InFlight(Mutex<HashMap<String, Instant>>);

/// (metric, help) in the order of the values statfs yields.
const FAMILIES: [(&str, &str); 6] = [
    ("node_filesystem_size_bytes", "Filesystem size in bytes."),
    ("node_filesystem_free_bytes", "Filesystem free space in bytes."),
    (
        "node_filesystem_avail_bytes",
        "Filesystem space available to non-root users in bytes.",
    ),
    ("node_filesystem_files", "Filesystem total file nodes."),
    ("node_filesystem_files_free", "Filesystem total free file nodes."),
    ("node_filesystem_readonly", "Filesystem read-only status."),
];

/// A line of the mount table: device, mount point (with `\040` and `\011` unescaped,
/// as node_exporter unescapes them), type, options.
pub(crate) struct Mount<'a> {
    pub device: &'a str,
    pub mountpoint: String,
    pub fstype: &'a str,
    pub options: &'a str,
}

/// The mount table node_exporter reads: `/proc/1/mounts`, else (hidepid) `/proc/mounts`.
pub(crate) fn mount_table(node: &Node) -> Result<String> {
    let primary = node.opts.proc("1/mounts");
    match read::string(&primary) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let fallback = node.opts.proc("mounts");
            read::string(&fallback).map_err(|e| CollectError::at(&fallback, e))
        }
        Err(e) => Err(CollectError::at(&primary, e)),
    }
}

/// The mounts of a mount table.
pub(crate) fn mounts(text: &str) -> Result<Vec<Mount<'_>>> {
    text.lines()
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 4 {
                return Err(CollectError::Failed(format!(
                    "malformed mount point information: {line:?}"
                )));
            }
            Ok(Mount {
                device: f[0],
                mountpoint: f[1].replace("\\040", " ").replace("\\011", "\t"),
                fstype: f[2],
                options: f[3],
            })
        })
        .collect()
}

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let text = mount_table(node)?;
    let mounts = mounts(&text)?;
    let mut seen = HashSet::new();
    let mut written = HashSet::new();
    for Mount {
        device,
        mountpoint: raw_mountpoint,
        fstype,
        options,
    } in &mounts
    {
        let mountpoint = node.opts.strip_rootfs(raw_mountpoint);
        if node.opts.fs_mount_points_exclude.is_match(mountpoint) || node.opts.fs_types_exclude.is_match(fstype) {
            continue;
        }
        if !seen.insert((*device, mountpoint, *fstype, *options)) {
            continue;
        }
        // The same series from a second mount with other options: the first one stands.
        if !written.insert((*device, mountpoint, *fstype)) {
            continue;
        }
        let labels = [("device", *device), ("mountpoint", mountpoint), ("fstype", *fstype)];
        let stat = statfs(node, mountpoint);
        out.gauge(
            "node_filesystem_device_error",
            "Whether an error occurred while getting statistics for the given device.",
            &labels,
            f64::from(u8::from(stat.is_none())),
        );
        let Some(values) = stat else { continue };
        let ro = options.split(',').any(|o| o == "ro");
        let values = [
            values[0],
            values[1],
            values[2],
            values[3],
            values[4],
            f64::from(u8::from(ro)),
        ];
        for ((name, help), v) in FAMILIES.iter().zip(values) {
            out.gauge(name, help, &labels, v);
        }
    }
    Ok(())
}

/// size, free, available (bytes), files, free files; `None` if statfs fails or is stuck.
fn statfs(node: &Node, mountpoint: &str) -> Option<[f64; 5]> {
    {
        let mut in_flight = node.state.statfs.0.lock().expect("poisoned");
        if let Some(started) = in_flight.get(mountpoint) {
            if started.elapsed() >= MOUNT_TIMEOUT {
                tracing::debug!(mountpoint, "mount point is stuck, skipping statfs");
            }
            return None;
        }
        in_flight.insert(mountpoint.to_owned(), Instant::now());
    }
    let path = node.opts.rootfs_path(mountpoint);
    let result = nix::sys::statfs::statfs(Path::new(&path));
    node.state.statfs.0.lock().expect("poisoned").remove(mountpoint);
    let s = result.ok()?;
    let bsize = s.block_size() as f64;
    Some([
        s.blocks() as f64 * bsize,
        s.blocks_free() as f64 * bsize,
        s.blocks_available() as f64 * bsize,
        s.files() as f64,
        s.files_free() as f64,
    ])
}
