//! `meminfo`: every field of `/proc/meminfo`, named after it.

use crate::Node;
use crate::error::{CollectError, IoContext, Result};
use crate::out::Out;
use crate::read;

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let path = node.opts.proc("meminfo");
    let text = read::string(&path).at(&path)?;
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let Some(key) = parts.first() else { continue };
        let raw = parts.get(1).copied().unwrap_or("");
        let mut v: f64 = raw
            .parse()
            .map_err(|e| CollectError::at(&path, format_args!("invalid value in meminfo: {e}")))?;
        // `Active(anon):` becomes `Active_anon`.
        let key = key.strip_suffix(':').unwrap_or(key);
        let mut field = match (key.find('('), key.rfind(')')) {
            (Some(open), Some(close)) if open < close => {
                format!("{}_{}{}", &key[..open], &key[open + 1..close], &key[close + 1..])
            }
            _ => key.to_owned(),
        };
        match parts.len() {
            2 => {}
            3 => {
                v *= 1024.0;
                field.push_str("_bytes");
            }
            _ => return Err(CollectError::at(&path, format_args!("invalid line in meminfo: {line}"))),
        }
        let name = format!("node_memory_{field}");
        let help = format!("Memory information field {field}.");
        if field.ends_with("_total") {
            out.counter(&name, &help, &[], v);
        } else {
            out.gauge(&name, &help, &[], v);
        }
    }
    Ok(())
}
