//! `vmstat`: fields of `/proc/vmstat` matching the field filter (node_exporter's
//! default: page faults, paging, swapping and OOM kills).

use crate::Node;
use crate::error::{CollectError, IoContext, Result};
use crate::out::Out;
use crate::read;

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let path = node.opts.proc("vmstat");
    let text = read::string(&path).at(&path)?;
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(name), Some(value)) = (f.next(), f.next()) else {
            return Err(CollectError::at(&path, format_args!("invalid line {line:?}")));
        };
        // node_exporter parses every value, filtered or not.
        let v: f64 = value
            .parse()
            .map_err(|e| CollectError::at(&path, format_args!("invalid value {value:?}: {e}")))?;
        if node.opts.vmstat_fields.is_match(name) {
            out.untyped(
                &format!("node_vmstat_{name}"),
                &format!("/proc/vmstat information field {name}."),
                &[],
                v,
            );
        }
    }
    Ok(())
}
