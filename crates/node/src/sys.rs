//! The system calls without a safe wrapper in our dependencies: adjtimex(2) for the
//! timex collector and the btrfs ioctls for the btrfs collector.
#![allow(unsafe_code)]

/// The kernel's clock discipline state, read with `adjtimex(2)` and `modes = 0`, which
/// changes nothing. Returns the clock state (`TIME_OK`, ...) and the structure.
pub(crate) fn adjtimex() -> std::io::Result<(i32, libc::timex)> {
    // SAFETY: `timex` is plain old data, so all-zero is a valid value; with `modes` 0
    // the kernel only writes into the structure we own, and nothing outlives the call.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `tx` is a valid, exclusively borrowed `timex` for the duration of the call.
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((state, tx))
}

/// `BTRFS_IOC_FS_INFO`'s argument (1 KiB).
#[repr(C)]
#[allow(dead_code)] // the kernel's layout; only some fields are read
struct FsInfoArgs {
    max_id: u64,
    num_devices: u64,
    fsid: [u8; 16],
    nodesize: u32,
    sectorsize: u32,
    clone_alignment: u32,
    _reserved: [u8; 980],
}

/// `BTRFS_IOC_DEV_INFO`'s argument (4 KiB).
#[repr(C)]
#[allow(dead_code)] // the kernel's layout; only some fields are read
struct DevInfoArgs {
    devid: u64,
    uuid: [u8; 16],
    bytes_used: u64,
    total_bytes: u64,
    _unused: [u64; 379],
    path: [u8; 1024],
}

/// `BTRFS_IOC_GET_DEV_STATS`'s argument.
#[repr(C)]
#[allow(dead_code)] // the kernel's layout; only some fields are read
struct GetDevStatsArgs {
    devid: u64,
    nr_items: u64,
    flags: u64,
    values: [u64; 5],
    _unused: [u64; 121],
}

nix::ioctl_read!(btrfs_ioc_fs_info, 0x94, 31, FsInfoArgs);
nix::ioctl_readwrite!(btrfs_ioc_dev_info, 0x94, 30, DevInfoArgs);
nix::ioctl_readwrite!(btrfs_ioc_get_dev_stats, 0x94, 52, GetDevStatsArgs);

/// One device of a mounted btrfs file system, as the btrfs ioctls report it.
#[derive(Debug)]
pub(crate) struct BtrfsDevice {
    /// The device node's path.
    pub path: String,
    /// The device's UUID.
    pub uuid: [u8; 16],
    pub bytes_used: u64,
    pub total_bytes: u64,
    /// Write, read, flush, corruption and generation errors.
    pub errors: [u64; 5],
}

/// The file system id and devices of the btrfs file system `dir` is open on (devices
/// by id, skipping ids that no longer exist, as btrfs-progs and node_exporter do).
pub(crate) fn btrfs_devices(dir: &std::fs::File) -> std::io::Result<([u8; 16], Vec<BtrfsDevice>)> {
    use std::os::fd::AsRawFd;
    let fd = dir.as_raw_fd();
    // SAFETY: all three argument structures are plain old data of the sizes the kernel
    // expects (the ioctl numbers encode them); all-zero is valid for each.
    let mut info: FsInfoArgs = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open for the duration of the call; `info` is exclusively borrowed.
    unsafe { btrfs_ioc_fs_info(fd, &mut info) }.map_err(std::io::Error::from)?;
    let mut devices = Vec::new();
    for devid in 0..=info.max_id {
        // SAFETY: as above.
        let mut dev: DevInfoArgs = unsafe { std::mem::zeroed() };
        dev.devid = devid;
        // SAFETY: as above.
        match unsafe { btrfs_ioc_dev_info(fd, &mut dev) } {
            Ok(_) => {}
            Err(nix::errno::Errno::ENODEV) => continue,
            Err(e) => return Err(e.into()),
        }
        // SAFETY: as above.
        let mut stats: GetDevStatsArgs = unsafe { std::mem::zeroed() };
        stats.devid = devid;
        stats.nr_items = 5;
        // SAFETY: as above.
        unsafe { btrfs_ioc_get_dev_stats(fd, &mut stats) }.map_err(std::io::Error::from)?;
        let end = dev.path.iter().position(|&b| b == 0).unwrap_or(dev.path.len());
        devices.push(BtrfsDevice {
            path: String::from_utf8_lossy(&dev.path[..end]).into_owned(),
            uuid: dev.uuid,
            bytes_used: dev.bytes_used,
            total_bytes: dev.total_bytes,
            errors: stats.values,
        });
        if devices.len() as u64 == info.num_devices {
            break;
        }
    }
    Ok((info.fsid, devices))
}
