//! `bonding`: configured and active slaves of each bonding interface.

use crate::Node;
use crate::error::{IoContext, Result};
use crate::out::Out;
use crate::read;

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let net = node.opts.sys("class/net");
    let masters_file = net.join("bonding_masters");
    let masters = read::string(&masters_file).no_data_if_missing(&masters_file)?;
    // Everything is read before anything is written.
    let mut rows = Vec::new();
    for master in masters.split_whitespace() {
        let slaves_file = net.join(master).join("bonding/slaves");
        let slaves = read::string(&slaves_file).no_data_if_missing(&slaves_file)?;
        let (mut total, mut active) = (0.0, 0.0);
        for slave in slaves.split_whitespace() {
            total += 1.0;
            let lower = net.join(master).join(format!("lower_{slave}/bonding_slave/mii_status"));
            let status = match read::string(&lower) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Kernels before 4.13 name the link `slave_<name>`.
                    let old = net.join(master).join(format!("slave_{slave}/bonding_slave/mii_status"));
                    read::string(&old).no_data_if_missing(&old)?
                }
                other => other.no_data_if_missing(&lower)?,
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
