//! `entropy`: the kernel's random pool from `/proc/sys/kernel/random`.

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;
use crate::read;

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let value = |file: &str| read::opt_uint(&node.opts.proc(&format!("sys/kernel/random/{file}")));
    let avail = value("entropy_avail").ok_or_else(|| CollectError::Failed("couldn't get entropy_avail".into()))?;
    out.gauge(
        "node_entropy_available_bits",
        "Bits of available entropy.",
        &[],
        avail as f64,
    );
    let pool = value("poolsize").ok_or_else(|| CollectError::Failed("couldn't get entropy poolsize".into()))?;
    out.gauge("node_entropy_pool_size_bits", "Bits of entropy pool.", &[], pool as f64);
    Ok(())
}
