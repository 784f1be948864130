//! `nfsd`: NFS server RPC statistics from `/proc/net/rpc/nfsd`.

use super::nfs::{counted, parse};
use crate::Node;
use crate::error::{CollectError, IoContext, Result};
use crate::out::Out;
use crate::read;

/// (method, index into the line's values) for NFSv2 and v3; index 0 is the count and
/// index 1 the never-exposed Null.
const V2: [(&str, usize); 17] = [
    ("GetAttr", 2),
    ("SetAttr", 3),
    ("Root", 4),
    ("Lookup", 5),
    ("ReadLink", 6),
    ("Read", 7),
    ("WrCache", 8),
    ("Write", 9),
    ("Create", 10),
    ("Remove", 11),
    ("Rename", 12),
    ("Link", 13),
    ("SymLink", 14),
    ("MkDir", 15),
    ("RmDir", 16),
    ("ReadDir", 17),
    ("FsStat", 18),
];

const V3: [(&str, usize); 21] = [
    ("GetAttr", 2),
    ("SetAttr", 3),
    ("Lookup", 4),
    ("Access", 5),
    ("ReadLink", 6),
    ("Read", 7),
    ("Write", 8),
    ("Create", 9),
    ("MkDir", 10),
    ("SymLink", 11),
    ("MkNod", 12),
    ("Remove", 13),
    ("RmDir", 14),
    ("Rename", 15),
    ("Link", 16),
    ("ReadDir", 17),
    ("ReadDirPlus", 18),
    ("FsStat", 19),
    ("FsInfo", 20),
    ("PathConf", 21),
    ("Commit", 22),
];

/// NFSv4 operations as procfs 0.8 maps `proc4ops`, including its shift after op 34:
/// it lacks SETCLIENTID and SETCLIENTID_CONFIRM, so "Verify", "Write" and
/// "RelLockOwner" are the three ops after SECINFO and the real WRITE is not exposed.
/// Kept as node_exporter 1.5 exposes it, since dashboards compare against that.
const V4: [(&str, usize); 33] = [
    ("Access", 4),
    ("Close", 5),
    ("Commit", 6),
    ("Create", 7),
    ("DelegPurge", 8),
    ("DelegReturn", 9),
    ("GetAttr", 10),
    ("GetFH", 11),
    ("Link", 12),
    ("Lock", 13),
    ("Lockt", 14),
    ("Locku", 15),
    ("Lookup", 16),
    ("LookupRoot", 17),
    ("Nverify", 18),
    ("Open", 19),
    ("OpenAttr", 20),
    ("OpenConfirm", 21),
    ("OpenDgrd", 22),
    ("PutFH", 23),
    ("Read", 26),
    ("ReadDir", 27),
    ("ReadLink", 28),
    ("Remove", 29),
    ("Rename", 30),
    ("Renew", 31),
    ("RestoreFH", 32),
    ("SaveFH", 33),
    ("SecInfo", 34),
    ("SetAttr", 35),
    ("Verify", 36),
    ("Write", 37),
    ("RelLockOwner", 38),
];

fn server_check(label: &str, v: &[u64]) -> std::result::Result<(), String> {
    let ok = match label {
        "rc" => v.len() == 3,
        "fh" => v.len() == 5,
        "io" | "th" => v.len() == 2,
        "ra" => v.len() == 12,
        "net" => v.len() == 4,
        "rpc" => v.len() == 5,
        "proc2" => return counted(v, 18, false),
        "proc3" => return counted(v, 22, false),
        "proc4" => return counted(v, 2, true),
        "proc4ops" => return counted(v, 39, false),
        _ => return Err(format!("unknown NFSd metric line {label:?}")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("invalid NFSd {label} line {v:?}"))
    }
}

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let path = node.opts.proc("net/rpc/nfsd");
    let text = read::string(&path).no_data_if_missing(&path)?;
    let s =
        parse(&text, server_check).map_err(|e| CollectError::Failed(format!("failed to retrieve nfsd stats: {e}")))?;
    let counters: [(&str, &str, &str, usize); 9] = [
        (
            "node_nfsd_reply_cache_hits_total",
            "Total number of NFSd Reply Cache hits (client lost server response).",
            "rc",
            0,
        ),
        (
            "node_nfsd_reply_cache_misses_total",
            "Total number of NFSd Reply Cache an operation that requires caching (idempotent).",
            "rc",
            1,
        ),
        (
            "node_nfsd_reply_cache_nocache_total",
            "Total number of NFSd Reply Cache non-idempotent operations (rename/delete/…).",
            "rc",
            2,
        ),
        (
            "node_nfsd_file_handles_stale_total",
            "Total number of NFSd stale file handles",
            "fh",
            0,
        ),
        ("node_nfsd_disk_bytes_read_total", "Total NFSd bytes read.", "io", 0),
        (
            "node_nfsd_disk_bytes_written_total",
            "Total NFSd bytes written.",
            "io",
            1,
        ),
        (
            "node_nfsd_read_ahead_cache_not_found_total",
            "Total number of NFSd read ahead cache not found.",
            "ra",
            11,
        ),
        (
            "node_nfsd_connections_total",
            "Total number of NFSd TCP connections.",
            "net",
            3,
        ),
        ("node_nfsd_server_rpcs_total", "Total number of NFSd RPCs.", "rpc", 0),
    ];
    for (name, help, line, i) in &counters {
        out.counter(name, help, &[], s.get(line, *i));
    }
    out.gauge(
        "node_nfsd_server_threads",
        "Total number of NFSd kernel threads that are running.",
        &[],
        s.get("th", 0),
    );
    out.gauge(
        "node_nfsd_read_ahead_cache_size_blocks",
        "How large the read ahead cache is in blocks.",
        &[],
        s.get("ra", 0),
    );
    for (proto, i) in [("udp", 1), ("tcp", 2)] {
        out.counter(
            "node_nfsd_packets_total",
            "Total NFSd network packets (sent+received) by protocol type.",
            &[("proto", proto)],
            s.get("net", i),
        );
    }
    for (error, i) in [("fmt", 2), ("auth", 3), ("cInt", 4)] {
        out.counter(
            "node_nfsd_rpc_errors_total",
            "Total number of NFSd RPC errors by error type.",
            &[("error", error)],
            s.get("rpc", i),
        );
    }
    for (proto, line, methods) in [
        ("2", "proc2", &V2[..]),
        ("3", "proc3", &V3[..]),
        ("4", "proc4ops", &V4[..]),
    ] {
        for (method, i) in methods {
            out.counter(
                "node_nfsd_requests_total",
                "Total number NFSd Requests by method and protocol.",
                &[("proto", proto), ("method", method)],
                s.get(line, *i),
            );
        }
    }
    Ok(())
}
