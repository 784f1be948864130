//! `edac`: memory controller error counts of `/sys/devices/system/edac/mc`.

use std::path::Path;

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;
use crate::read;

fn count(path: &Path, what: &str) -> Result<f64> {
    let s = read::trimmed(path).map_err(|e| CollectError::Failed(format!("couldn't get {what}: {e}")))?;
    s.parse::<u64>()
        .map(|v| v as f64)
        .map_err(|e| CollectError::Failed(format!("couldn't get {what}: {e}")))
}

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    for (controller, dir) in read::numbered(&node.opts.sys("devices/system/edac/mc"), "mc") {
        let controller: String = controller.chars().take_while(char::is_ascii_digit).collect();
        let c = controller.as_str();
        let file = |f: &str| count(&dir.join(f), &format!("{f} for controller {c}"));
        out.counter(
            "node_edac_correctable_errors_total",
            "Total correctable memory errors.",
            &[("controller", c)],
            file("ce_count")?,
        );
        out.counter(
            "node_edac_csrow_correctable_errors_total",
            "Total correctable memory errors for this csrow.",
            &[("controller", c), ("csrow", "unknown")],
            file("ce_noinfo_count")?,
        );
        out.counter(
            "node_edac_uncorrectable_errors_total",
            "Total uncorrectable memory errors.",
            &[("controller", c)],
            file("ue_count")?,
        );
        out.counter(
            "node_edac_csrow_uncorrectable_errors_total",
            "Total uncorrectable memory errors for this csrow.",
            &[("controller", c), ("csrow", "unknown")],
            file("ue_noinfo_count")?,
        );
        for (csrow, row) in read::numbered(&dir, "csrow") {
            let csrow: String = csrow.chars().take_while(char::is_ascii_digit).collect();
            let what = |f: &str| format!("{f} for controller/csrow {c}/{csrow}");
            out.counter(
                "node_edac_csrow_correctable_errors_total",
                "Total correctable memory errors for this csrow.",
                &[("controller", c), ("csrow", &csrow)],
                count(&row.join("ce_count"), &what("ce_count"))?,
            );
            out.counter(
                "node_edac_csrow_uncorrectable_errors_total",
                "Total uncorrectable memory errors for this csrow.",
                &[("controller", c), ("csrow", &csrow)],
                count(&row.join("ue_count"), &what("ue_count"))?,
            );
        }
    }
    Ok(())
}
