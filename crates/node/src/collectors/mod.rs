//! One module per node_exporter collector, each a function that reads its kernel
//! sources and writes families into [`Out`]. The table below is the set node_exporter
//! 1.5 enables by default on Linux (less systemd, see `config.rs`), in name order.

use crate::Node;
use crate::error::Result;
use crate::out::Out;

mod arp;
mod bcache;
mod bonding;
mod btrfs;
mod conntrack;
mod cpu;
mod cpufreq;
mod diskstats;
mod dmi;
mod edac;
mod entropy;
mod fibrechannel;
mod filefd;
mod filesystem;
mod hwmon;
mod infiniband;
mod ipvs;
mod loadavg;
mod mdadm;
mod meminfo;
mod netclass;
mod netdev;
mod netstat;
mod nfs;
mod nfsd;
mod nvme;
mod os;
mod powersupplyclass;
mod pressure;
mod rapl;
mod schedstat;
mod selinux;
mod sockstat;
mod softnet;
mod stat;
mod tapestats;
mod textfile;
mod thermal_zone;
mod time;
mod timex;
mod udp_queues;
mod uname;
mod vmstat;
mod xfs;
mod zfs;

/// A collector: its node_exporter name and what it runs at each scrape.
pub(crate) struct Collector {
    pub name: &'static str,
    pub collect: fn(&Node, &mut Out) -> Result,
}

/// What collectors keep between scrapes.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// The cpu collector's last exposed times (counters never go back).
    pub cpu: cpu::CpuState,
    /// DMI labels, read once per sysfs path.
    pub dmi: dmi::DmiCache,
    /// statfs calls in flight (a stuck mount is skipped until it returns).
    pub statfs: filesystem::InFlight,
}

macro_rules! collectors {
    ($($name:ident),* $(,)?) => {
        /// Every collector, in name order.
        pub(crate) static COLLECTORS: &[Collector] = &[
            $(Collector { name: stringify!($name), collect: $name::collect },)*
        ];
    };
}

collectors![
    arp,
    bcache,
    bonding,
    btrfs,
    conntrack,
    cpu,
    cpufreq,
    diskstats,
    dmi,
    edac,
    entropy,
    fibrechannel,
    filefd,
    filesystem,
    hwmon,
    infiniband,
    ipvs,
    loadavg,
    mdadm,
    meminfo,
    netclass,
    netdev,
    netstat,
    nfs,
    nfsd,
    nvme,
    os,
    powersupplyclass,
    pressure,
    rapl,
    schedstat,
    selinux,
    sockstat,
    softnet,
    stat,
    tapestats,
    textfile,
    thermal_zone,
    time,
    timex,
    udp_queues,
    uname,
    vmstat,
    xfs,
    zfs
];
