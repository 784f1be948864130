//! `filefd`: allocated and maximum file handles from `/proc/sys/fs/file-nr`.

use crate::Node;
use crate::error::{CollectError, IoContext, Result};
use crate::out::Out;
use crate::read;

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let path = node.opts.proc("sys/fs/file-nr");
    let text = read::string(&path).at(&path)?;
    let parts: Vec<&str> = text.trim().split('\t').collect();
    if parts.len() < 3 {
        return Err(CollectError::at(&path, "unexpected number of file stats"));
    }
    for (name, value) in [("allocated", parts[0]), ("maximum", parts[2])] {
        let v: f64 = value
            .parse()
            .map_err(|e| CollectError::at(&path, format_args!("invalid value {value}: {e}")))?;
        out.gauge(
            &format!("node_filefd_{name}"),
            &format!("File descriptor statistics: {name}."),
            &[],
            v,
        );
    }
    Ok(())
}
