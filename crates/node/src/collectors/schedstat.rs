//! `schedstat`: per-CPU scheduler statistics from `/proc/schedstat`.

use crate::Node;
use crate::error::{IoContext, Result};
use crate::out::Out;
use crate::read;

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let path = node.opts.proc("schedstat");
    let text = read::string(&path).no_data_if_missing(&path)?;
    for line in text.lines() {
        let Some((cpu, fields)) = cpu_line(line) else { continue };
        let (Ok(running), Ok(waiting), Ok(slices)) = (
            fields[6].parse::<u64>(),
            fields[7].parse::<u64>(),
            fields[8].parse::<u64>(),
        ) else {
            continue;
        };
        let labels = [("cpu", cpu)];
        out.counter(
            "node_schedstat_running_seconds_total",
            "Number of seconds CPU spent running a process.",
            &labels,
            running as f64 / 1e9,
        );
        out.counter(
            "node_schedstat_waiting_seconds_total",
            "Number of seconds spent by processing waiting for this CPU.",
            &labels,
            waiting as f64 / 1e9,
        );
        out.counter(
            "node_schedstat_timeslices_total",
            "Number of timeslices executed by CPU.",
            &labels,
            slices as f64,
        );
    }
    Ok(())
}

/// procfs matches `cpu(\d+)` followed by nine single-space-separated numbers, anywhere
/// in the line: the CPU number and the nine fields.
fn cpu_line(line: &str) -> Option<(&str, [&str; 9])> {
    let mut from = 0;
    while let Some(i) = line[from..].find("cpu") {
        let start = from + i + 3;
        if let Some(m) = numbers_after(&line[start..]) {
            return Some(m);
        }
        from = start;
    }
    None
}

fn numbers_after(s: &str) -> Option<(&str, [&str; 9])> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let cpu = &s[..digits];
    let mut rest = &s[digits..];
    let mut fields = [""; 9];
    for f in &mut fields {
        rest = rest.strip_prefix(' ')?;
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        *f = &rest[..n];
        rest = &rest[n..];
    }
    Some((cpu, fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_procfs_matches_them() {
        let (cpu, f) = cpu_line("cpu3 0 0 0 0 0 0 100 200 7").unwrap();
        assert_eq!((cpu, f[6], f[8]), ("3", "100", "7"));
        assert!(cpu_line("cpu3 0 0 0 0 0 0 100 200").is_none());
        assert!(cpu_line("cpu3  0 0 0 0 0 0 100 200 7").is_none());
        assert_eq!(cpu_line("xcpu4 1 2 3 4 5 6 7 8 9 10").unwrap().0, "4");
        assert!(cpu_line("domain0 3 1 2 3 4 5 6 7 8 9").is_none());
    }
}
