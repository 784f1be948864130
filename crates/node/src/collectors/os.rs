//! `os`: the distribution from `os-release` (under the root file system's mount point).

use std::collections::HashMap;

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;
use crate::read;

/// Where os-release is looked for, in order.
const FILES: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let mut text = None;
    for f in FILES {
        let path = node.opts.rootfs_path(f);
        match read::string(&path) {
            Ok(t) => {
                text = Some((path, t));
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(CollectError::at(&path, e)),
        }
    }
    let Some((path, text)) = text else {
        return Err(CollectError::NoData);
    };
    let env = parse_env(&text).map_err(|e| CollectError::at(&path, e))?;
    let get = |k: &str| env.get(k).map_or("", String::as_str);
    out.gauge(
        "node_os_info",
        "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.",
        &[
            ("build_id", get("BUILD_ID")),
            ("id", get("ID")),
            ("id_like", get("ID_LIKE")),
            ("image_id", get("IMAGE_ID")),
            ("image_version", get("IMAGE_VERSION")),
            ("name", get("NAME")),
            ("pretty_name", get("PRETTY_NAME")),
            ("variant", get("VARIANT")),
            ("variant_id", get("VARIANT_ID")),
            ("version", get("VERSION")),
            ("version_codename", get("VERSION_CODENAME")),
            ("version_id", get("VERSION_ID")),
        ],
        1.0,
    );
    // The leading `major.minor` of VERSION_ID (`22.04.1` → 22.04).
    let id = get("VERSION_ID");
    let digits = id.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 {
        let rest = &id[digits..];
        let minor = rest
            .strip_prefix('.')
            .map_or(0, |r| 1 + r.bytes().take_while(u8::is_ascii_digit).count());
        if let Ok(v) = id[..digits + minor].parse::<f64>()
            && v > 0.0
        {
            out.gauge(
                "node_os_version",
                "Metric containing the major.minor part of the OS version.",
                &[("id", get("ID")), ("id_like", get("ID_LIKE")), ("name", get("NAME"))],
                v,
            );
        }
    }
    Ok(())
}

/// `KEY=value` lines as os-release(5) writes them: comments, blank lines, and values
/// bare, single-quoted, or double-quoted with backslash escapes.
fn parse_env(text: &str) -> std::result::Result<HashMap<String, String>, String> {
    let mut env = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, raw)) = line.split_once('=') else {
            return Err(format!("line {}: missing =", i + 1));
        };
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("line {}: invalid key {key:?}", i + 1));
        }
        let raw = raw.trim();
        let value = if let Some(body) = raw.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = body.chars();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some('n') => v.push('\n'),
                        Some(c) => v.push(c),
                        None => break,
                    },
                    c => v.push(c),
                }
            }
            if !closed {
                return Err(format!("line {}: unterminated double quote", i + 1));
            }
            v
        } else if let Some(body) = raw.strip_prefix('\'') {
            match body.split_once('\'') {
                Some((v, _)) => v.to_owned(),
                None => return Err(format!("line {}: unterminated single quote", i + 1)),
            }
        } else {
            raw.split(" #").next().unwrap_or("").trim().to_owned()
        };
        env.insert(key.to_owned(), value);
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_values() {
        let env = parse_env("# c\nNAME=\"Debian GNU/Linux\"\nID=debian\nVERSION='12 (bookworm)'\nX=\"a \\\"b\\\"\"\n")
            .unwrap();
        assert_eq!(env["NAME"], "Debian GNU/Linux");
        assert_eq!(env["ID"], "debian");
        assert_eq!(env["VERSION"], "12 (bookworm)");
        assert_eq!(env["X"], "a \"b\"");
        assert!(parse_env("NAME=\"open").is_err());
    }
}
