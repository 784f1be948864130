//! `nvme`: NVMe controllers of `/sys/class/nvme` as info series.

use crate::Node;
use crate::error::{IoContext, Result};
use crate::out::Out;
use crate::read;

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let class = node.opts.sys("class/nvme");
    let names = read::dir_names(&class).no_data_if_missing(&class)?;
    let mut devices = Vec::new();
    for name in names {
        let dir = class.join(&name);
        let mut attrs = Vec::new();
        for f in ["firmware_rev", "model", "serial", "state"] {
            let p = dir.join(f);
            attrs.push(read::sys_file(&p).no_data_if_missing(&p)?);
        }
        devices.push((name, attrs));
    }
    for (device, a) in &devices {
        out.gauge(
            "node_nvme_info",
            "Non-numeric data from /sys/class/nvme/<device>, value is always 1.",
            &[
                ("device", device),
                ("firmware_revision", &a[0]),
                ("model", &a[1]),
                ("serial", &a[2]),
                ("state", &a[3]),
            ],
            1.0,
        );
    }
    Ok(())
}
