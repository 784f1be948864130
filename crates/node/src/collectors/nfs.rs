//! `nfs`: NFS client RPC statistics from `/proc/net/rpc/nfs`. The file format, shared
//! with the server's `/proc/net/rpc/nfsd`, is parsed here for both.

use std::collections::HashMap;

use crate::Node;
use crate::error::{CollectError, IoContext, Result};
use crate::out::Out;
use crate::read;

const V2: [&str; 18] = [
    "Null", "GetAttr", "SetAttr", "Root", "Lookup", "ReadLink", "Read", "WrCache", "Write", "Create", "Remove",
    "Rename", "Link", "SymLink", "MkDir", "RmDir", "ReadDir", "FsStat",
];

const V3: [&str; 22] = [
    "Null",
    "GetAttr",
    "SetAttr",
    "Lookup",
    "Access",
    "ReadLink",
    "Read",
    "Write",
    "Create",
    "MkDir",
    "SymLink",
    "MkNod",
    "Remove",
    "RmDir",
    "Rename",
    "Link",
    "ReadDir",
    "ReadDirPlus",
    "FsStat",
    "FsInfo",
    "PathConf",
    "Commit",
];

/// The client's NFSv4 operations in the kernel's order (procfs maps the first 59).
const V4: [&str; 59] = [
    "Null",
    "Read",
    "Write",
    "Commit",
    "Open",
    "OpenConfirm",
    "OpenNoattr",
    "OpenDowngrade",
    "Close",
    "Setattr",
    "FsInfo",
    "Renew",
    "SetClientID",
    "SetClientIDConfirm",
    "Lock",
    "Lockt",
    "Locku",
    "Access",
    "Getattr",
    "Lookup",
    "LookupRoot",
    "Remove",
    "Rename",
    "Link",
    "Symlink",
    "Create",
    "Pathconf",
    "StatFs",
    "ReadLink",
    "ReadDir",
    "ServerCaps",
    "DelegReturn",
    "GetACL",
    "SetACL",
    "FsLocations",
    "ReleaseLockowner",
    "Secinfo",
    "FsidPresent",
    "ExchangeID",
    "CreateSession",
    "DestroySession",
    "Sequence",
    "GetLeaseTime",
    "ReclaimComplete",
    "LayoutGet",
    "GetDeviceInfo",
    "LayoutCommit",
    "LayoutReturn",
    "SecinfoNoName",
    "TestStateID",
    "FreeStateID",
    "GetDeviceList",
    "BindConnToSession",
    "DestroyClientID",
    "Seek",
    "Allocate",
    "DeAllocate",
    "LayoutStats",
    "Clone",
];

/// Lines of an rpc statistics file by label, values parsed, after procfs' checks of
/// the labels each side knows and the value counts they need. A line absent from the
/// file reads as zeros.
pub(crate) struct RpcStats(HashMap<String, Vec<u64>>);

impl RpcStats {
    /// Value `i` of line `label`, 0 if absent.
    pub fn get(&self, label: &str, i: usize) -> f64 {
        self.0.get(label).and_then(|v| v.get(i)).copied().unwrap_or(0) as f64
    }
}

/// Which side's file: the labels allowed and the check of each line's values.
pub(crate) type Check = fn(&str, &[u64]) -> std::result::Result<(), String>;

pub(crate) fn parse(text: &str, check: Check) -> std::result::Result<RpcStats, String> {
    let mut lines = HashMap::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() < 2 {
            return Err(format!("invalid NFS metric line {line:?}"));
        }
        let label = parts[0];
        // The thread line ends in a histogram of floats nobody reads.
        let raw = if label == "th" {
            parts
                .get(1..3)
                .ok_or_else(|| format!("invalid NFSd th metric line {line:?}"))?
        } else {
            &parts[1..]
        };
        let values = raw
            .iter()
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|e| format!("error parsing NFS metric line: {e}"))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        check(label, &values)?;
        lines.insert(label.to_owned(), values);
    }
    Ok(RpcStats(lines))
}

/// `proc2`/`proc3`: a count, then at least `min` values, as many as the count says.
pub(crate) fn counted(v: &[u64], min: usize, exact: bool) -> std::result::Result<(), String> {
    let n = v[0] as usize;
    if v.len() - 1 != n || n < min || (exact && n != min) {
        return Err(format!("invalid line {v:?}"));
    }
    Ok(())
}

fn client_check(label: &str, v: &[u64]) -> std::result::Result<(), String> {
    let ok = match label {
        "net" => v.len() == 4,
        "rpc" => v.len() == 3,
        "proc2" => return counted(v, 18, false),
        "proc3" => return counted(v, 22, false),
        "proc4" => v[0] as usize == v.len() - 1,
        _ => return Err(format!("unknown NFS metric line {label:?}")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("invalid NFS {label} line {v:?}"))
    }
}

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let path = node.opts.proc("net/rpc/nfs");
    let text = read::string(&path).no_data_if_missing(&path)?;
    let s =
        parse(&text, client_check).map_err(|e| CollectError::Failed(format!("failed to retrieve nfs stats: {e}")))?;
    for (proto, i) in [("udp", 1), ("tcp", 2)] {
        out.counter(
            "node_nfs_packets_total",
            "Total NFSd network packets (sent+received) by protocol type.",
            &[("protocol", proto)],
            s.get("net", i),
        );
    }
    out.counter(
        "node_nfs_connections_total",
        "Total number of NFSd TCP connections.",
        &[],
        s.get("net", 3),
    );
    out.counter(
        "node_nfs_rpcs_total",
        "Total number of RPCs performed.",
        &[],
        s.get("rpc", 0),
    );
    out.counter(
        "node_nfs_rpc_retransmissions_total",
        "Number of RPC transmissions performed.",
        &[],
        s.get("rpc", 1),
    );
    out.counter(
        "node_nfs_rpc_authentication_refreshes_total",
        "Number of RPC authentication refreshes performed.",
        &[],
        s.get("rpc", 2),
    );
    for (proto, line, methods) in [
        ("2", "proc2", &V2[..]),
        ("3", "proc3", &V3[..]),
        ("4", "proc4", &V4[..]),
    ] {
        for (i, method) in methods.iter().enumerate() {
            out.counter(
                "node_nfs_requests_total",
                "Number of NFS procedures invoked.",
                &[("proto", proto), ("method", method)],
                s.get(line, i + 1),
            );
        }
    }
    Ok(())
}
