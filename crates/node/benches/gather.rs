//! One full node scrape (every default collector, rendered as text) on this machine's
//! `/proc` and `/sys`, and on the fixture tree (45 collectors with data).
//!   cargo bench --profile dev -p sextant-node --bench gather

#![allow(missing_docs)] // criterion's macros generate undocumented items

use criterion::{Criterion, criterion_group, criterion_main};
use sextant_node::{NodeCollector, NodeConfig};

fn gather(c: &mut Criterion) {
    let live = NodeCollector::default();
    c.bench_function("gather: this machine, defaults", |b| b.iter(|| live.gather()));

    let f = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("testdata/fixture");
    let yaml = format!(
        "paths: {{procfs: '{p}/proc', sysfs: '{p}/sys', rootfs: '{p}/rootfs', udev_data: '{p}/udev'}}\n\
         textfile: {{directory: '{p}/textfile'}}\nnetdev: {{netlink: false}}\n",
        p = f.display()
    );
    let config: NodeConfig = serde_yaml::from_str(&yaml).expect("fixture config");
    let fixture = NodeCollector::new(&config).expect("valid config");
    c.bench_function("gather: fixture tree, defaults", |b| b.iter(|| fixture.gather()));
}

criterion_group!(benches, gather);
criterion_main!(benches);
