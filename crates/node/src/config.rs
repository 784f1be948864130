//! The `node` section of Sextant's config: node_exporter's command-line flags as YAML.
//! Every option has node_exporter 1.5's default (Debian's, where Debian changed one), so
//! an empty section behaves as `prometheus-node-exporter` with no flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;

/// Collectors node_exporter 1.5 has on Linux that Sextant does not implement, with the
/// reason; naming one is accepted only to disable it.
const NOT_IMPLEMENTED: &[(&str, &str)] = &[
    ("buddyinfo", "off by default in node_exporter"),
    ("cgroups", "off by default in node_exporter"),
    ("drbd", "off by default in node_exporter"),
    ("drm", "off by default in node_exporter"),
    ("ethtool", "off by default in node_exporter"),
    ("interrupts", "off by default in node_exporter"),
    ("ksmd", "off by default in node_exporter"),
    ("lnstat", "off by default in node_exporter"),
    ("logind", "off by default in node_exporter"),
    ("meminfo_numa", "off by default in node_exporter"),
    ("mountstats", "off by default in node_exporter"),
    ("network_route", "off by default in node_exporter"),
    ("ntp", "off by default in node_exporter"),
    ("perf", "off by default in node_exporter"),
    ("processes", "off by default in node_exporter"),
    ("qdisc", "off by default in node_exporter"),
    ("runit", "off by default in node_exporter"),
    ("slabinfo", "off by default in node_exporter"),
    ("supervisord", "off by default in node_exporter"),
    ("sysctl", "off by default in node_exporter"),
    ("systemd", "needs systemd's D-Bus API"),
    ("tcpstat", "off by default in node_exporter"),
    ("wifi", "off by default in node_exporter"),
    ("zoneinfo", "off by default in node_exporter"),
];

/// Node collector settings (node_exporter's flags).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Start from no collector rather than node_exporter's defaults
    /// (`--collector.disable-defaults`).
    #[serde(default)]
    pub disable_defaults: bool,
    /// Collectors switched on or off by name (`--collector.<name>`,
    /// `--no-collector.<name>`).
    #[serde(default)]
    pub collectors: BTreeMap<String, bool>,
    /// Expose the exporter's own series (`process_*`, `promhttp_*`,
    /// `node_exporter_build_info`); `--web.disable-exporter-metrics` sets this false.
    #[serde(default = "yes")]
    pub exporter_metrics: bool,
    /// Where `/proc`, `/sys`, the root file system and udev's data are mounted
    /// (`--path.*`), for running against a host's file systems from a container.
    #[serde(default)]
    pub paths: PathsConfig,
    /// `--collector.arp.*`.
    #[serde(default)]
    pub arp: IncludeExclude,
    /// `--collector.bcache.*`.
    #[serde(default)]
    pub bcache: BcacheConfig,
    /// `--collector.cpu.*`.
    #[serde(default)]
    pub cpu: CpuConfig,
    /// `--collector.diskstats.*`.
    #[serde(default)]
    pub diskstats: IncludeExclude,
    /// `--collector.filesystem.*`.
    #[serde(default)]
    pub filesystem: FilesystemConfig,
    /// `--collector.ipvs.*`.
    #[serde(default)]
    pub ipvs: IpvsConfig,
    /// `--collector.netclass.*`.
    #[serde(default)]
    pub netclass: NetclassConfig,
    /// `--collector.netdev.*`.
    #[serde(default)]
    pub netdev: NetdevConfig,
    /// `--collector.netstat.*`.
    #[serde(default)]
    pub netstat: FieldsConfig,
    /// `--collector.powersupply.*`.
    #[serde(default)]
    pub powersupplyclass: IgnoredConfig,
    /// `--collector.rapl.*`.
    #[serde(default)]
    pub rapl: RaplConfig,
    /// `--collector.stat.*`.
    #[serde(default)]
    pub stat: StatConfig,
    /// `--collector.tapestats.*`.
    #[serde(default)]
    pub tapestats: IgnoredConfig,
    /// `--collector.textfile.*`.
    #[serde(default)]
    pub textfile: TextfileConfig,
    /// `--collector.vmstat.*`.
    #[serde(default)]
    pub vmstat: FieldsConfig,
}

impl Default for NodeConfig {
    /// What an empty `node:` section means: node_exporter's defaults.
    fn default() -> Self {
        Self {
            disable_defaults: false,
            collectors: BTreeMap::new(),
            exporter_metrics: true,
            paths: PathsConfig::default(),
            arp: IncludeExclude::default(),
            bcache: BcacheConfig::default(),
            cpu: CpuConfig::default(),
            diskstats: IncludeExclude::default(),
            filesystem: FilesystemConfig::default(),
            ipvs: IpvsConfig::default(),
            netclass: NetclassConfig::default(),
            netdev: NetdevConfig::default(),
            netstat: FieldsConfig::default(),
            powersupplyclass: IgnoredConfig::default(),
            rapl: RaplConfig::default(),
            stat: StatConfig::default(),
            tapestats: IgnoredConfig::default(),
            textfile: TextfileConfig::default(),
            vmstat: FieldsConfig::default(),
        }
    }
}

fn yes() -> bool {
    true
}

/// `--path.*`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PathsConfig {
    /// `--path.procfs`, default `/proc`.
    pub procfs: PathBuf,
    /// `--path.sysfs`, default `/sys`.
    pub sysfs: PathBuf,
    /// `--path.rootfs`, default `/`.
    pub rootfs: PathBuf,
    /// `--path.udev.data`, default `/run/udev/data`.
    pub udev_data: PathBuf,
}

impl Default for PathsConfig {
    fn default() -> Self {
        Self {
            procfs: "/proc".into(),
            sysfs: "/sys".into(),
            rootfs: "/".into(),
            udev_data: "/run/udev/data".into(),
        }
    }
}

/// A device filter: `device_include` or `device_exclude`, not both.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct IncludeExclude {
    /// Only devices matching this (anchored) regex.
    pub device_include: Option<String>,
    /// Not the devices matching this (anchored) regex.
    pub device_exclude: Option<String>,
}

/// `--collector.bcache.priorityStats`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct BcacheConfig {
    /// Expose the expensive priority statistics.
    #[serde(default)]
    pub priority_stats: bool,
}

/// `--collector.cpu.*`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CpuConfig {
    /// `node_cpu_guest_seconds_total` (default on).
    pub guest: bool,
    /// `node_cpu_info` (default off).
    pub info: bool,
    /// Which `flags` of the first CPU become `node_cpu_flag_info` (turns `info` on).
    pub info_flags_include: Option<String>,
    /// Which `bugs` of the first CPU become `node_cpu_bug_info` (turns `info` on).
    pub info_bugs_include: Option<String>,
}

impl Default for CpuConfig {
    fn default() -> Self {
        Self {
            guest: true,
            info: false,
            info_flags_include: None,
            info_bugs_include: None,
        }
    }
}

/// `--collector.filesystem.*`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct FilesystemConfig {
    /// Mount points not reported.
    pub mount_points_exclude: Option<String>,
    /// File system types not reported.
    pub fs_types_exclude: Option<String>,
}

/// `--collector.ipvs.backend-labels`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct IpvsConfig {
    /// Labels of the backend series, comma separated.
    pub backend_labels: Option<String>,
}

/// `--collector.netclass.*`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct NetclassConfig {
    /// Devices not reported.
    pub ignored_devices: Option<String>,
    /// Skip devices whose speed is invalid.
    #[serde(default)]
    pub ignore_invalid_speed: bool,
}

/// `--collector.netdev.*`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NetdevConfig {
    /// Only devices matching this (anchored) regex.
    pub device_include: Option<String>,
    /// Not the devices matching this (anchored) regex (default `^lo$`).
    pub device_exclude: Option<String>,
    /// Read the kernel's per-device statistics (`--collector.netdev.netlink`, default
    /// on; Sextant reads the same counters from sysfs) rather than `/proc/net/dev`.
    pub netlink: bool,
}

impl Default for NetdevConfig {
    fn default() -> Self {
        Self {
            device_include: None,
            device_exclude: None,
            netlink: true,
        }
    }
}

/// A field filter (`--collector.netstat.fields`, `--collector.vmstat.fields`).
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct FieldsConfig {
    /// Fields reported.
    pub fields: Option<String>,
}

/// A filter of ignored devices (`--collector.powersupply.ignored-supplies`,
/// `--collector.tapestats.ignored-devices`).
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct IgnoredConfig {
    /// Devices not reported.
    pub ignored: Option<String>,
}

/// `--collector.rapl.enable-zone-label`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct RaplConfig {
    /// One metric with a `zone` label instead of one metric per zone.
    #[serde(default)]
    pub enable_zone_label: bool,
}

/// `--collector.stat.softirq`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct StatConfig {
    /// `node_softirqs_total` per vector.
    #[serde(default)]
    pub softirq: bool,
}

/// `--collector.textfile.directory`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TextfileConfig {
    /// Where `*.prom` files are read from; Debian's default
    /// `/var/lib/prometheus/node-exporter`. Empty turns the collector's reading off.
    pub directory: PathBuf,
}

impl Default for TextfileConfig {
    fn default() -> Self {
        Self {
            directory: "/var/lib/prometheus/node-exporter".into(),
        }
    }
}

/// An invalid `node` section, naming the option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{option}: {message}")]
pub struct NodeConfigError {
    /// The option, as written in the config (`node.diskstats.device_exclude`).
    pub option: String,
    /// What is wrong.
    pub message: String,
}

fn err(option: &str, message: impl Into<String>) -> NodeConfigError {
    NodeConfigError {
        option: format!("node.{option}"),
        message: message.into(),
    }
}

/// A device filter after defaults.
#[derive(Debug, Clone)]
pub(crate) enum DeviceFilter {
    /// Nothing filtered.
    All,
    /// Only matching devices.
    Include(Regex),
    /// All but matching devices.
    Exclude(Regex),
}

impl DeviceFilter {
    /// Whether `device` is reported.
    pub fn keeps(&self, device: &str) -> bool {
        match self {
            Self::All => true,
            Self::Include(r) => r.is_match(device),
            Self::Exclude(r) => !r.is_match(device),
        }
    }
}

/// What collectors read: the config with defaults applied and regexes compiled.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
    pub rootfs: PathBuf,
    pub udev_data: PathBuf,
    pub arp_devices: DeviceFilter,
    pub bcache_priority_stats: bool,
    pub cpu_guest: bool,
    pub cpu_info: bool,
    pub cpu_flags_include: Option<Regex>,
    pub cpu_bugs_include: Option<Regex>,
    pub disk_devices: DeviceFilter,
    pub fs_mount_points_exclude: Regex,
    pub fs_types_exclude: Regex,
    pub ipvs_backend_labels: Vec<String>,
    pub netclass_ignored: Regex,
    pub netclass_ignore_invalid_speed: bool,
    pub netdev_devices: DeviceFilter,
    pub netdev_netlink: bool,
    pub netstat_fields: Regex,
    pub powersupply_ignored: Regex,
    pub rapl_zone_label: bool,
    pub stat_softirq: bool,
    pub tapestats_ignored: Regex,
    pub textfile_directory: PathBuf,
    pub vmstat_fields: Regex,
}

/// Go's `regexp.MustCompile` accepts what Rust's `regex` does for the patterns people
/// write; node_exporter does not anchor these, so neither do we.
fn regex(option: &str, value: Option<&str>, default: &str) -> Result<Regex, NodeConfigError> {
    let pattern = value.unwrap_or(default);
    Regex::new(pattern).map_err(|e| err(option, format!("invalid regular expression {pattern:?}: {e}")))
}

fn device_filter(
    option: &str,
    f: &IncludeExclude,
    default_exclude: Option<&str>,
) -> Result<DeviceFilter, NodeConfigError> {
    match (&f.device_include, &f.device_exclude) {
        (Some(_), Some(_)) => Err(err(option, "device_include and device_exclude are mutually exclusive")),
        (Some(i), None) => Ok(DeviceFilter::Include(regex(
            &format!("{option}.device_include"),
            Some(i),
            "",
        )?)),
        (None, Some(e)) => Ok(DeviceFilter::Exclude(regex(
            &format!("{option}.device_exclude"),
            Some(e),
            "",
        )?)),
        (None, None) => match default_exclude {
            Some(d) => Ok(DeviceFilter::Exclude(regex(option, None, d)?)),
            None => Ok(DeviceFilter::All),
        },
    }
}

/// node_exporter 1.5's default patterns.
pub(crate) mod defaults {
    pub const DISKSTATS_DEVICE_EXCLUDE: &str = r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";
    pub const FS_MOUNT_POINTS_EXCLUDE: &str =
        r"^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
    pub const FS_TYPES_EXCLUDE: &str = r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";
    pub const IPVS_BACKEND_LABELS: &str = "local_address,local_port,remote_address,remote_port,proto,local_mark";
    pub const NETDEV_DEVICE_EXCLUDE: &str = "^lo$";
    pub const NETSTAT_FIELDS: &str = r"^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";
    pub const VMSTAT_FIELDS: &str = r"^(oom_kill|pgpg|pswp|pg.*fault).*";
}

impl Options {
    pub fn new(c: &NodeConfig) -> Result<Self, NodeConfigError> {
        use defaults::*;
        let ipvs_labels = c.ipvs.backend_labels.as_deref().unwrap_or(IPVS_BACKEND_LABELS);
        const IPVS_KNOWN: [&str; 6] = [
            "local_address",
            "local_port",
            "remote_address",
            "remote_port",
            "proto",
            "local_mark",
        ];
        let wanted: Vec<&str> = ipvs_labels
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if let Some(bad) = wanted.iter().find(|l| !IPVS_KNOWN.contains(l)) {
            return Err(err(
                "ipvs.backend_labels",
                format!("unknown IPVS backend label {bad:?}"),
            ));
        }
        // Always in node_exporter's order, whatever order they were written in.
        let ipvs_backend_labels: Vec<String> = IPVS_KNOWN
            .iter()
            .filter(|l| wanted.contains(l))
            .map(|l| (*l).to_owned())
            .collect();
        let netdev = IncludeExclude {
            device_include: c.netdev.device_include.clone(),
            device_exclude: c.netdev.device_exclude.clone(),
        };
        let cpu_flags_include = c
            .cpu
            .info_flags_include
            .as_deref()
            .map(|p| regex("cpu.info_flags_include", Some(p), ""))
            .transpose()?;
        let cpu_bugs_include = c
            .cpu
            .info_bugs_include
            .as_deref()
            .map(|p| regex("cpu.info_bugs_include", Some(p), ""))
            .transpose()?;
        Ok(Self {
            procfs: c.paths.procfs.clone(),
            sysfs: c.paths.sysfs.clone(),
            rootfs: c.paths.rootfs.clone(),
            udev_data: c.paths.udev_data.clone(),
            arp_devices: device_filter("arp", &c.arp, None)?,
            bcache_priority_stats: c.bcache.priority_stats,
            cpu_guest: c.cpu.guest,
            // As in node_exporter, asking for flags or bugs turns the info metric on.
            cpu_info: c.cpu.info || cpu_flags_include.is_some() || cpu_bugs_include.is_some(),
            cpu_flags_include,
            cpu_bugs_include,
            disk_devices: device_filter("diskstats", &c.diskstats, Some(DISKSTATS_DEVICE_EXCLUDE))?,
            fs_mount_points_exclude: regex(
                "filesystem.mount_points_exclude",
                c.filesystem.mount_points_exclude.as_deref(),
                FS_MOUNT_POINTS_EXCLUDE,
            )?,
            fs_types_exclude: regex(
                "filesystem.fs_types_exclude",
                c.filesystem.fs_types_exclude.as_deref(),
                FS_TYPES_EXCLUDE,
            )?,
            ipvs_backend_labels,
            netclass_ignored: regex("netclass.ignored_devices", c.netclass.ignored_devices.as_deref(), "^$")?,
            netclass_ignore_invalid_speed: c.netclass.ignore_invalid_speed,
            netdev_devices: device_filter("netdev", &netdev, Some(NETDEV_DEVICE_EXCLUDE))?,
            netdev_netlink: c.netdev.netlink,
            netstat_fields: regex("netstat.fields", c.netstat.fields.as_deref(), NETSTAT_FIELDS)?,
            powersupply_ignored: regex("powersupplyclass.ignored", c.powersupplyclass.ignored.as_deref(), "^$")?,
            rapl_zone_label: c.rapl.enable_zone_label,
            stat_softirq: c.stat.softirq,
            tapestats_ignored: regex("tapestats.ignored", c.tapestats.ignored.as_deref(), "^$")?,
            textfile_directory: c.textfile.directory.clone(),
            vmstat_fields: regex("vmstat.fields", c.vmstat.fields.as_deref(), VMSTAT_FIELDS)?,
        })
    }

    /// A path under the procfs mount point.
    pub fn proc(&self, p: &str) -> PathBuf {
        self.procfs.join(p)
    }

    /// A path under the sysfs mount point.
    pub fn sys(&self, p: &str) -> PathBuf {
        self.sysfs.join(p)
    }

    /// A path under the root file system's mount point.
    pub fn rootfs_path(&self, p: &str) -> PathBuf {
        self.rootfs.join(p.trim_start_matches('/'))
    }

    /// A mount point as seen from the host: the rootfs prefix removed.
    pub fn strip_rootfs<'a>(&self, p: &'a str) -> &'a str {
        if self.rootfs == Path::new("/") {
            return p;
        }
        let prefix = self.rootfs.to_string_lossy();
        match p.strip_prefix(prefix.as_ref()) {
            Some("") => "/",
            Some(rest) => rest,
            None => p,
        }
    }
}

impl NodeConfig {
    /// Checks what building a collector from this config checks (regexes, collector
    /// names, exclusive options).
    pub fn validate(&self) -> Result<(), NodeConfigError> {
        Options::new(self)?;
        self.enabled_collectors().map(drop)
    }

    /// Makes relative paths relative to `base` (the config file's directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        for p in [
            &mut self.paths.procfs,
            &mut self.paths.sysfs,
            &mut self.paths.rootfs,
            &mut self.paths.udev_data,
            &mut self.textfile.directory,
        ] {
            if p.is_relative() && !p.as_os_str().is_empty() {
                *p = base.join(&*p);
            }
        }
    }

    /// The names of the collectors this config enables, after defaults.
    pub fn enabled_collectors(&self) -> Result<Vec<&'static str>, NodeConfigError> {
        for (name, on) in &self.collectors {
            if crate::collectors::COLLECTORS.iter().any(|c| c.name == name) {
                continue;
            }
            match NOT_IMPLEMENTED.iter().find(|(n, _)| n == name) {
                Some(_) if !on => {}
                Some((_, why)) => {
                    return Err(err(
                        &format!("collectors.{name}"),
                        format!("the {name} collector is not implemented by Sextant ({why})"),
                    ));
                }
                None => {
                    return Err(err(
                        &format!("collectors.{name}"),
                        format!("unknown collector {name:?}"),
                    ));
                }
            }
        }
        Ok(crate::collectors::COLLECTORS
            .iter()
            .filter(|c| self.collectors.get(c.name).copied().unwrap_or(!self.disable_defaults))
            .map(|c| c.name)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> NodeConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn collectors_by_name_as_node_exporter_flags() {
        let all = NodeConfig::default().enabled_collectors().unwrap();
        assert_eq!(all.len(), 45);
        let c = parse("collectors: {cpu: false, nfs: false}");
        let names = c.enabled_collectors().unwrap();
        assert!(!names.contains(&"cpu") && !names.contains(&"nfs") && names.contains(&"meminfo"));
        let c = parse("disable_defaults: true\ncollectors: {meminfo: true}");
        assert_eq!(c.enabled_collectors().unwrap(), vec!["meminfo"]);
        // node_exporter collectors Sextant lacks may be switched off, not on.
        assert!(parse("collectors: {systemd: false}").validate().is_ok());
        let e = parse("collectors: {systemd: true}").validate().unwrap_err();
        assert!(e.to_string().contains("not implemented"), "{e}");
        let e = parse("collectors: {bogus: true}").validate().unwrap_err();
        assert_eq!(e.option, "node.collectors.bogus");
    }

    #[test]
    fn filters_are_checked() {
        let e = parse("diskstats: {device_include: sda, device_exclude: sdb}")
            .validate()
            .unwrap_err();
        assert!(e.message.contains("mutually exclusive"), "{e}");
        let e = parse("netstat: {fields: '('}").validate().unwrap_err();
        assert_eq!(e.option, "node.netstat.fields");
        let e = parse("ipvs: {backend_labels: 'proto,nope'}").validate().unwrap_err();
        assert!(e.message.contains("nope"), "{e}");
        let o = Options::new(&parse("ipvs: {backend_labels: 'proto,local_port'}")).unwrap();
        assert_eq!(
            o.ipvs_backend_labels,
            vec!["local_port", "proto"],
            "node_exporter's order"
        );
        assert!(serde_yaml::from_str::<NodeConfig>("bogus: 1").is_err());
    }
}
