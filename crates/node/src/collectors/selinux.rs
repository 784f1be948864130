//! `selinux`: whether SELinux is enabled and its configured and current modes. Like
//! node_exporter, this reads the running system itself (`/sys/fs/selinux`,
//! `/etc/selinux/config`), whatever the configured mount points.

use std::path::{Path, PathBuf};

use crate::Node;
use crate::error::Result;
use crate::out::Out;
use crate::read;

/// `SELINUX_MAGIC`, the selinuxfs file system type.
const SELINUX_MAGIC: i64 = 0xf97c_ff8c;

pub(crate) fn collect(_node: &Node, out: &mut Out) -> Result {
    let mount = selinuxfs();
    let enabled = mount.is_some() && current_label().is_none_or(|l| l != "kernel");
    out.gauge(
        "node_selinux_enabled",
        "SELinux is enabled, 1 is true, 0 is false",
        &[],
        f64::from(u8::from(enabled)),
    );
    if !enabled {
        return Ok(());
    }
    out.gauge(
        "node_selinux_config_mode",
        "Configured SELinux enforcement mode",
        &[],
        config_mode(),
    );
    let current = mount
        .and_then(|m| read::string(&m.join("enforce")).ok())
        .and_then(|s| s.parse::<i64>().ok())
        .map_or(-1.0, |v| v as f64);
    out.gauge(
        "node_selinux_current_mode",
        "Current SELinux enforcement mode",
        &[],
        current,
    );
    Ok(())
}

/// A writable selinuxfs mount: `/sys/fs/selinux`, else the first one in mountinfo.
fn selinuxfs() -> Option<PathBuf> {
    let usable = |p: &Path| {
        nix::sys::statfs::statfs(p).is_ok_and(|s| {
            s.filesystem_type().0 == SELINUX_MAGIC && !s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY)
        })
    };
    let default = Path::new("/sys/fs/selinux");
    if usable(default) {
        return Some(default.to_owned());
    }
    if !read::string(Path::new("/proc/filesystems")).is_ok_and(|f| f.contains("\tselinuxfs\n")) {
        return None;
    }
    let mountinfo = read::string(Path::new("/proc/self/mountinfo")).ok()?;
    mountinfo
        .lines()
        .filter(|l| l.contains(" - selinuxfs "))
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .find(|p| usable(p))
}

/// This thread's security label.
fn current_label() -> Option<String> {
    let s = read::string(Path::new("/proc/thread-self/attr/current")).ok()?;
    Some(s.trim_end_matches('\0').to_owned())
}

/// `SELINUX=` of `/etc/selinux/config`: enforcing 1, permissive 0, otherwise -1.
fn config_mode() -> f64 {
    let Ok(text) = read::string(Path::new("/etc/selinux/config")) else {
        return -1.0;
    };
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with([';', '#']) {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key == "SELINUX" {
            return match value.trim_matches('"') {
                "enforcing" => 1.0,
                "permissive" => 0.0,
                _ => -1.0,
            };
        }
    }
    -1.0
}
