//! `mdadm`: Linux software RAID arrays from `/proc/mdstat`.

use std::sync::LazyLock;

use regex::Regex;

use crate::Node;
use crate::error::{CollectError, IoContext, Result};
use crate::out::Out;
use crate::read;

static STATUS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\d+) blocks .*\[(\d+)/(\d+)\] \[([U_]+)\]").expect("static regex"));
static SYNCED: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\((\d+)/\d+\)").expect("static regex"));
static PERCENT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"= (.+)%").expect("static regex"));
static FINISH: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"finish=(.+)min").expect("static regex"));
static SPEED: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"speed=(.+)[A-Z]").expect("static regex"));

#[derive(Debug, PartialEq)]
struct Array<'a> {
    name: &'a str,
    state: &'a str,
    active: i64,
    total: i64,
    failed: i64,
    spare: i64,
    blocks: i64,
    synced: i64,
}

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let path = node.opts.proc("mdstat");
    let text = read::string(&path).no_data_if_missing(&path)?;
    let arrays = parse(&text).map_err(|e| CollectError::at(&path, format_args!("error parsing mdstatus: {e}")))?;
    for a in arrays {
        let device = [("device", a.name)];
        out.gauge(
            "node_md_disks_required",
            "Total number of disks of device.",
            &device,
            a.total as f64,
        );
        for (state, n) in [("active", a.active), ("failed", a.failed), ("spare", a.spare)] {
            out.gauge(
                "node_md_disks",
                "Number of active/failed/spare disks of device.",
                &[("device", a.name), ("state", state)],
                n as f64,
            );
        }
        for (label, state) in [
            ("active", "active"),
            ("inactive", "inactive"),
            ("recovering", "recovering"),
            ("resync", "resyncing"),
            ("check", "checking"),
        ] {
            out.gauge(
                "node_md_state",
                "Indicates the state of md-device.",
                &[("device", a.name), ("state", label)],
                f64::from(u8::from(a.state == state)),
            );
        }
        out.gauge(
            "node_md_blocks",
            "Total number of blocks on device.",
            &device,
            a.blocks as f64,
        );
        out.gauge(
            "node_md_blocks_synced",
            "Number of blocks synced on device.",
            &device,
            a.synced as f64,
        );
    }
    Ok(())
}

fn parse(text: &str) -> std::result::Result<Vec<Array<'_>>, String> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut arrays = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty()
            || line.starts_with(' ')
            || line.starts_with("Personalities")
            || line.starts_with("unused")
        {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 3 {
            return Err(format!("not enough fields in mdline (expected at least 3): {line}"));
        }
        let name = fields[0];
        let mut state = fields[2];
        if lines.len() <= i + 3 {
            return Err(format!("{name:?}: too few lines for md device"));
        }
        let status = lines[i + 1];
        let blocks: i64 = status
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("unexpected statusLine {status:?}"))?;
        let (active, total) = if line.contains("raid0") || line.contains("linear") {
            let n = line.matches('[').count() as i64;
            (n, n)
        } else if line.contains("inactive") {
            (0, 0)
        } else {
            let m = STATUS
                .captures(status)
                .ok_or_else(|| format!("couldn't find all the substring matches: {status}"))?;
            let n = |k: usize| {
                m[k].parse::<i64>()
                    .map_err(|e| format!("unexpected statusLine {status:?}: {e}"))
            };
            (n(3)?, n(2)?)
        };
        let sync_line = if lines[i + 2].contains("bitmap") {
            lines[i + 3]
        } else {
            lines[i + 2]
        };
        let (recovering, resyncing, checking) = (
            sync_line.contains("recovery"),
            sync_line.contains("resync"),
            sync_line.contains("check"),
        );
        let mut synced = blocks;
        if recovering || resyncing || checking {
            state = if recovering {
                "recovering"
            } else if checking {
                "checking"
            } else {
                "resyncing"
            };
            if sync_line.contains("PENDING") || sync_line.contains("DELAYED") {
                synced = 0;
            } else {
                synced = recovery(sync_line).map_err(|e| format!("sync line in md device {name:?}: {e}"))?;
            }
        }
        arrays.push(Array {
            name,
            state,
            active,
            total,
            failed: line.matches("(F)").count() as i64,
            spare: line.matches("(S)").count() as i64,
            blocks,
            synced,
        });
    }
    Ok(arrays)
}

/// The blocks synced so far; the line must also carry percentage, finish and speed.
fn recovery(line: &str) -> std::result::Result<i64, String> {
    let bad = || format!("unexpected recoveryLine: {line}");
    let synced = SYNCED.captures(line).ok_or_else(bad)?[1]
        .parse::<i64>()
        .map_err(|e| e.to_string())?;
    for (re, trim) in [(&*PERCENT, true), (&*FINISH, false), (&*SPEED, false)] {
        let m = re.captures(line).ok_or_else(bad)?;
        let v = if trim { m[1].trim() } else { &m[1] };
        v.parse::<f64>().map_err(|e| format!("{e}: {v:?}"))?;
    }
    Ok(synced)
}
