//! `btrfs`: btrfs file systems from `/sys/fs/btrfs` (allocation by block group type and
//! layout), and for each mounted one its devices' sizes, use and error counters from
//! the btrfs ioctls; a file system the ioctls cannot reach (not mounted, not
//! permitted) shows its devices' sizes from sysfs instead, as in node_exporter.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;
use crate::read;

/// procfs' btrfs reader: a sticky error that makes later values read as 0, and that
/// each allocation type's own reader overwrites when it finishes.
struct Reader {
    path: PathBuf,
    err: Option<String>,
    devices: usize,
}

impl Reader {
    fn file(&mut self, name: &str) -> String {
        let p = self.path.join(name);
        match read::sys_file(&p) {
            Ok(s) => s,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    self.err = Some(format!("{}: {e}", p.display()));
                }
                String::new()
            }
        }
    }

    fn value(&mut self, name: &str) -> f64 {
        let s = self.file(name);
        if self.err.is_some() {
            return 0.0;
        }
        s.parse::<u64>().map_or(0.0, |v| v as f64)
    }

    fn list(&mut self, name: &str) -> Vec<String> {
        let p = self.path.join(name);
        match read::dir_names(&p) {
            Ok(n) => n,
            Err(e) => {
                self.err = Some(format!("{}: {e}", p.display()));
                Vec::new()
            }
        }
    }
}

struct Allocation {
    reserved: f64,
    /// (mode, used, total, ratio)
    layouts: Vec<(String, f64, f64, f64)>,
}

fn allocation(parent: &mut Reader, dir: &str) -> Allocation {
    let mut r = Reader {
        path: parent.path.join(dir),
        err: None,
        devices: parent.devices,
    };
    let reserved = r.value("bytes_reserved");
    let mut layouts = Vec::new();
    match std::fs::read_dir(&r.path) {
        Ok(entries) => {
            let mut modes: Vec<String> = entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            modes.sort();
            for mode in modes {
                let total = r.value(&format!("{mode}/total_bytes"));
                let used = r.value(&format!("{mode}/used_bytes"));
                let n = r.devices as f64;
                let ratio = match mode.as_str() {
                    "single" | "raid0" => 1.0,
                    "dup" | "raid1" | "raid10" => 2.0,
                    "raid5" => n / (n - 1.0),
                    "raid6" => n / (n - 2.0),
                    _ => 0.0,
                };
                layouts.push((mode, used, total, ratio));
            }
        }
        Err(e) => r.err = Some(format!("{}: {e}", r.path.display())),
    }
    parent.err = r.err;
    Allocation { reserved, layouts }
}

struct Fs {
    uuid: String,
    label: String,
    global_rsv: f64,
    allocations: [(&'static str, Allocation); 3],
    devices: Vec<(String, f64)>,
}

fn filesystem(dir: &Path) -> std::result::Result<Fs, String> {
    let mut r = Reader {
        path: dir.to_owned(),
        err: None,
        devices: 0,
    };
    let mut devices = Vec::new();
    for d in r.list("devices") {
        let size = 512.0 * r.value(&format!("devices/{d}/size"));
        devices.push((d, size));
    }
    r.devices = devices.len();
    let label = r.file("label");
    let uuid = r.file("metadata_uuid");
    r.list("features");
    for f in [
        "clone_alignment",
        "nodesize",
        "quota_override",
        "sectorsize",
        "allocation/global_rsv_reserved",
    ] {
        r.value(f);
    }
    let global_rsv = r.value("allocation/global_rsv_size");
    let allocations = [
        ("data", allocation(&mut r, "allocation/data")),
        ("metadata", allocation(&mut r, "allocation/metadata")),
        ("system", allocation(&mut r, "allocation/system")),
    ];
    if let Some(e) = r.err {
        return Err(e);
    }
    let uuid = if uuid.is_empty() {
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        uuid
    };
    Ok(Fs {
        uuid,
        label,
        global_rsv,
        allocations,
        devices,
    })
}

/// The ioctl view of a mounted file system, by file system id (hex, no dashes).
fn ioctl_stats(node: &Node) -> HashMap<String, Vec<crate::sys::BtrfsDevice>> {
    let mut stats = HashMap::new();
    let Ok(text) = super::filesystem::mount_table(node) else {
        return stats;
    };
    let Ok(mounts) = super::filesystem::mounts(&text) else {
        return stats;
    };
    let mut devices_done = HashSet::new();
    for m in mounts.iter().filter(|m| m.fstype == "btrfs") {
        if devices_done.contains(m.device) {
            continue;
        }
        let path = node.opts.rootfs_path(&m.mountpoint);
        let Some(dir) = open_subvolume(&path) else { continue };
        match crate::sys::btrfs_devices(&dir) {
            Ok((fsid, devices)) => {
                let id: String = fsid.iter().map(|b| format!("{b:02x}")).collect();
                if stats.contains_key(&id) {
                    continue;
                }
                devices_done.insert(m.device);
                stats.insert(id, devices);
            }
            Err(e) => tracing::debug!(path = %path.display(), error = %e, "querying btrfs devices failed"),
        }
    }
    stats
}

/// The mount point opened, if it is a btrfs subvolume root (inode 256, `BTRFS_SUPER_MAGIC`).
fn open_subvolume(path: &Path) -> Option<std::fs::File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    const FIRST_FREE_OBJECTID: u64 = 256;
    const BTRFS_SUPER_MAGIC: i64 = 0x9123_683e;
    let meta = std::fs::metadata(path).ok()?;
    if meta.ino() != FIRST_FREE_OBJECTID || !meta.is_dir() {
        return None;
    }
    let fs = nix::sys::statfs::statfs(path).ok()?;
    if fs.filesystem_type().0 != BTRFS_SUPER_MAGIC {
        return None;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOATIME)
        .open(path)
        .or_else(|_| std::fs::File::open(path))
        .ok()
}

/// A device UUID as dennwc/btrfs prints it (8-4-4-4-12 hex, `<zero>` for none).
fn uuid_string(u: &[u8; 16]) -> String {
    if u.iter().all(|&b| b == 0) {
        return "<zero>".into();
    }
    let hex: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let base = node.opts.sys("fs/btrfs");
    let mut all = Vec::new();
    for name in read::dir_names(&base).unwrap_or_default() {
        if !name.contains('-') {
            continue;
        }
        all.push(
            filesystem(&base.join(&name))
                .map_err(|e| CollectError::Failed(format!("failed to retrieve Btrfs stats from procfs: {e}")))?,
        );
    }
    let ioctl = if all.is_empty() {
        HashMap::new()
    } else {
        ioctl_stats(node)
    };
    for fs in &all {
        let uuid = fs.uuid.as_str();
        out.gauge(
            "node_btrfs_info",
            "Filesystem information",
            &[("uuid", uuid), ("label", &fs.label)],
            1.0,
        );
        out.gauge(
            "node_btrfs_global_rsv_size_bytes",
            "Size of global reserve.",
            &[("uuid", uuid)],
            fs.global_rsv,
        );
        for (typ, a) in &fs.allocations {
            out.gauge(
                "node_btrfs_reserved_bytes",
                "Amount of space reserved for a data type",
                &[("uuid", uuid), ("block_group_type", typ)],
                a.reserved,
            );
            for (mode, used, total, ratio) in &a.layouts {
                let labels = [("uuid", uuid), ("block_group_type", typ), ("mode", mode.as_str())];
                out.gauge(
                    "node_btrfs_used_bytes",
                    "Amount of used space by a layout/data type",
                    &labels,
                    *used,
                );
                out.gauge(
                    "node_btrfs_size_bytes",
                    "Amount of space allocated for a layout/data type",
                    &labels,
                    *total,
                );
                out.gauge(
                    "node_btrfs_allocation_ratio",
                    "Data allocation ratio for a layout/data type",
                    &labels,
                    *ratio,
                );
            }
        }
        let Some(devices) = ioctl.get(&uuid.replace('-', "")) else {
            for (device, size) in &fs.devices {
                out.gauge(
                    "node_btrfs_device_size_bytes",
                    "Size of a device that is part of the filesystem.",
                    &[("uuid", uuid), ("device", device)],
                    *size,
                );
            }
            continue;
        };
        for d in devices {
            let device = d.path.rsplit('/').next().unwrap_or(&d.path);
            let dev_uuid = uuid_string(&d.uuid);
            let labels = [
                ("uuid", uuid),
                ("device", device),
                ("btrfs_dev_uuid", dev_uuid.as_str()),
            ];
            out.gauge(
                "node_btrfs_device_size_bytes",
                "Size of a device that is part of the filesystem.",
                &labels,
                d.total_bytes as f64,
            );
            out.gauge(
                "node_btrfs_device_unused_bytes",
                "Unused bytes unused on a device that is part of the filesystem.",
                &labels,
                d.total_bytes.wrapping_sub(d.bytes_used) as f64,
            );
            for (typ, n) in ["write", "read", "flush", "corruption", "generation"]
                .iter()
                .zip(d.errors)
            {
                out.counter(
                    "node_btrfs_device_errors_total",
                    "Errors reported for the device",
                    &[
                        ("uuid", uuid),
                        ("type", typ),
                        ("device", device),
                        ("btrfs_dev_uuid", &dev_uuid),
                    ],
                    n as f64,
                );
            }
        }
    }
    Ok(())
}
