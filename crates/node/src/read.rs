//! Reading the small text files of `/proc` and `/sys`.

use std::path::{Path, PathBuf};

/// The whole file as text (invalid UTF-8 replaced).
pub(crate) fn string(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// The file's text without surrounding whitespace, as sysfs attributes are read.
pub(crate) fn trimmed(path: &Path) -> std::io::Result<String> {
    string(path).map(|s| s.trim().to_owned())
}

/// An optional attribute: `None` if the file is missing or does not parse.
pub(crate) fn opt_uint(path: &Path) -> Option<u64> {
    trimmed(path).ok()?.parse().ok()
}

/// Names in a directory, sorted (`read_dir` order is the file system's).
pub(crate) fn dir_names(path: &Path) -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(path)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// One `read(2)` of at most 128 bytes, whitespace trimmed: procfs's `SysReadFile`, for
/// sysfs attributes whose drivers misbehave on a second read.
pub(crate) fn sys_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = [0u8; 128];
    let n = std::fs::File::open(path)?.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).trim().to_owned())
}

/// Entries of `dir` named `prefix` followed by a digit and anything (a `prefix[0-9]*`
/// glob), sorted by name, with the part after the prefix.
pub(crate) fn numbered(dir: &Path, prefix: &str) -> Vec<(String, PathBuf)> {
    dir_names(dir)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| {
            let rest = n.strip_prefix(prefix)?;
            rest.starts_with(|c: char| c.is_ascii_digit())
                .then(|| (rest.to_owned(), dir.join(&n)))
        })
        .collect()
}

/// Whether an error means the file is absent or not readable by us: what procfs treats
/// as "this optional attribute is not there".
pub(crate) fn absent(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
    )
}

/// Go's `strconv.ParseInt(s, 0, 64)`: an optional sign, then `0x`, `0o`, `0b` or a
/// leading `0` (octal) choose the base; underscores may separate digits after a prefix.
pub(crate) fn parse_int_base0(s: &str) -> Option<i64> {
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body, prefixed) = if let Some(r) = lower.strip_prefix("0x") {
        (16, r.to_owned(), true)
    } else if let Some(r) = lower.strip_prefix("0o") {
        (8, r.to_owned(), true)
    } else if let Some(r) = lower.strip_prefix("0b") {
        (2, r.to_owned(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_owned(), true)
    } else {
        (10, lower, false)
    };
    let body = if prefixed {
        // Underscores only between digits (or right after the prefix).
        if body.ends_with('_') || body.contains("__") {
            return None;
        }
        body.replace('_', "")
    } else {
        body
    };
    if body.is_empty() || body.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = u64::from_str_radix(&body, radix).ok()?;
    if neg {
        if magnitude > i64::MAX as u64 + 1 {
            return None;
        }
        Some((magnitude as i64).wrapping_neg())
    } else {
        i64::try_from(magnitude).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_base0_integers() {
        assert_eq!(parse_int_base0("010"), Some(8));
        assert_eq!(parse_int_base0("0x1c20"), Some(0x1c20));
        assert_eq!(parse_int_base0("-512000"), Some(-512_000));
        assert_eq!(parse_int_base0("0b11"), Some(3));
        assert_eq!(parse_int_base0("0"), Some(0));
        assert_eq!(parse_int_base0("1_000"), None);
        assert_eq!(parse_int_base0("0x_1_0"), Some(16));
        assert_eq!(parse_int_base0("N/A"), None);
        assert_eq!(parse_int_base0(""), None);
    }
}
