//! `btrfs`: btrfs file systems from `/sys/fs/btrfs`: allocation by block group type
//! and layout, and device sizes. node_exporter adds per-device error counters read by
//! ioctl from mounted file systems; those are not read here (see ARCHITECTURE.md), so a
//! btrfs host shows the sysfs device sizes node_exporter falls back to.

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
        for (device, size) in &fs.devices {
            out.gauge(
                "node_btrfs_device_size_bytes",
                "Size of a device that is part of the filesystem.",
                &[("uuid", uuid), ("device", device)],
                *size,
            );
        }
    }
    Ok(())
}
