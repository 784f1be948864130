//! `dmi`: the firmware's description of the machine (`/sys/class/dmi/id`) as one info
//! series. node_exporter reads it once at start-up; so do we, per sysfs path.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;
use crate::read;

/// (file, label) in the label order of the help text.
const FIELDS: [(&str, &str); 20] = [
    ("bios_date", "bios_date"),
    ("bios_release", "bios_release"),
    ("bios_vendor", "bios_vendor"),
    ("bios_version", "bios_version"),
    ("board_asset_tag", "board_asset_tag"),
    ("board_name", "board_name"),
    ("board_serial", "board_serial"),
    ("board_vendor", "board_vendor"),
    ("board_version", "board_version"),
    ("chassis_asset_tag", "chassis_asset_tag"),
    ("chassis_serial", "chassis_serial"),
    ("chassis_vendor", "chassis_vendor"),
    ("chassis_version", "chassis_version"),
    ("product_family", "product_family"),
    ("product_name", "product_name"),
    ("product_serial", "product_serial"),
    ("product_sku", "product_sku"),
    ("product_uuid", "product_uuid"),
    ("product_version", "product_version"),
    ("sys_vendor", "system_vendor"),
];

/// The labels read for a sysfs mount point.
#[derive(Debug, Default)]
pub(crate) struct DmiCache(Mutex<Option<(PathBuf, DmiLabels)>>);

type DmiLabels = Vec<(&'static str, String)>;

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let dir = node.opts.sys("class/dmi/id");
    let mut cache = node.state.dmi.0.lock().expect("poisoned");
    if cache.as_ref().is_none_or(|(p, _)| *p != dir) {
        let mut labels = Vec::new();
        for (file, label) in FIELDS {
            let path = dir.join(file);
            // Serial numbers and the UUID are root-only: without them the rest stays.
            let is_file = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
            if !is_file {
                continue;
            }
            match read::sys_file(&path) {
                Ok(v) => labels.push((label, v)),
                Err(e) if read::absent(&e) => {}
                Err(e) => return Err(CollectError::at(&path, e)),
            }
        }
        *cache = Some((dir, labels));
    }
    let labels = &cache.as_ref().expect("just filled").1;
    if labels.is_empty() {
        return Err(CollectError::NoData);
    }
    let pairs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
    out.gauge(
        "node_dmi_info",
        "A metric with a constant '1' value labeled by bios_date, bios_release, bios_vendor, bios_version, board_asset_tag, board_name, board_serial, board_vendor, board_version, chassis_asset_tag, chassis_serial, chassis_vendor, chassis_version, product_family, product_name, product_serial, product_sku, product_uuid, product_version, system_vendor if provided by DMI.",
        &pairs,
        1.0,
    );
    Ok(())
}
