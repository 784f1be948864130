//! `bonding`: configured and active slaves of each bonding interface.

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;
use crate::read;

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let net = node.opts.sys("class/net");
    let fail = |e: std::io::Error, path: &std::path::Path| {
        if e.kind() == std::io::ErrorKind::NotFound {
            CollectError::NoData
        } else {
            CollectError::at(path, e)
        }
    };
    let masters_file = net.join("bonding_masters");
    let masters = read::string(&masters_file).map_err(|e| fail(e, &masters_file))?;
    // Everything is read before anything is written.
    let mut rows = Vec::new();
    for master in masters.split_whitespace() {
        let slaves_file = net.join(master).join("bonding/slaves");
        let slaves = read::string(&slaves_file).map_err(|e| fail(e, &slaves_file))?;
        let (mut total, mut active) = (0.0, 0.0);
        for slave in slaves.split_whitespace() {
            total += 1.0;
            let lower = net.join(master).join(format!("lower_{slave}/bonding_slave/mii_status"));
            let status = match read::string(&lower) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Kernels before 4.13 name the link `slave_<name>`.
                    let old = net.join(master).join(format!("slave_{slave}/bonding_slave/mii_status"));
                    read::string(&old).map_err(|e| fail(e, &old))?
                }
                other => other.map_err(|e| fail(e, &lower))?,
            };
            if status.trim() == "up" {
                active += 1.0;
            }
        }
        rows.push((master, total, active));
    }
    for (master, total, active) in rows {
        out.gauge(
            "node_bonding_slaves",
            "Number of configured slaves per bonding interface.",
            &[("master", master)],
            total,
        );
        out.gauge(
            "node_bonding_active",
            "Number of active slaves per bonding interface.",
            &[("master", master)],
            active,
        );
    }
    Ok(())
}
