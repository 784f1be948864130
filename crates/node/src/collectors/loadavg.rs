//! `loadavg`: the load averages of `/proc/loadavg`.

use crate::Node;
use crate::error::{CollectError, IoContext, Result};
use crate::out::Out;
use crate::read;

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let path = node.opts.proc("loadavg");
    let text = read::string(&path).at(&path)?;
    let parts: Vec<&str> = text.split_whitespace().take(3).collect();
    if parts.len() < 3 {
        return Err(CollectError::at(&path, "unexpected content"));
    }
    for (part, (name, help)) in parts.iter().zip([
        ("node_load1", "1m load average."),
        ("node_load5", "5m load average."),
        ("node_load15", "15m load average."),
    ]) {
        let v: f64 = part
            .parse()
            .map_err(|e| CollectError::at(&path, format_args!("could not parse load {part:?}: {e}")))?;
        out.gauge(name, help, &[], v);
    }
    Ok(())
}
