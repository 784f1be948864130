//! The data directory's format version, kept in `FORMAT` beside the database so a binary
//! can refuse a directory it does not understand before touching it.

use std::path::Path;

use crate::{Error, Result};

/// The on-disk format this binary writes. Bump it when the layout changes, and teach
/// [`check`] and the store's open to upgrade the older versions.
///
/// - 1: raw `samples_<block>` tables only.
/// - 2: adds the compacted `chunks` / `chunk_series` tables.
/// - 3: open blocks live in the in-memory head, made durable by the write-ahead log in
///   `wal/`; DuckDB holds only compacted blocks. Versions 1 and 2 are upgraded in
///   place by compacting their raw tables.
/// - 4: each closed block is a table `block_<b>` of encoded samples, one row per
///   series (`compact.rs`); versions 1 to 3 are upgraded in place, block by block.
/// - 5: the write-ahead log's samples entries are varint-coded (`walrec.rs`). Nothing
///   is rewritten: version 4 logs replay as they are. The bump is for older binaries,
///   which would take the new entries for a corrupt tail and cut the log there: they
///   now refuse the directory instead.
pub const FORMAT_VERSION: u32 = 5;

const FILE: &str = "FORMAT";

/// Creates `dir`, and returns the version of its `FORMAT` file: `None` for a new
/// directory, the version for one this binary reads or upgrades, an error for any
/// other.
pub(crate) fn check(dir: &Path) -> Result<Option<u32>> {
    let io = |context: String| move |source| Error::Io { context, source };
    std::fs::create_dir_all(dir).map_err(io(format!("creating data directory {}", dir.display())))?;
    let path = dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let found = s
                .trim()
                .strip_prefix("sextant-data ")
                .and_then(|v| v.parse::<u32>().ok())
                .ok_or_else(|| Error::Io {
                    context: format!("reading {}", path.display()),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, format!("unrecognised content {s:?}")),
                })?;
            if !(1..=FORMAT_VERSION).contains(&found) {
                return Err(Error::IncompatibleFormat {
                    path: dir.display().to_string(),
                    found,
                    supported: FORMAT_VERSION,
                });
            }
            Ok(Some(found))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io {
            context: format!("reading {}", path.display()),
            source: e,
        }),
    }
}

/// Records that `dir` is now of the current format.
pub(crate) fn write_current(dir: &Path) -> Result<()> {
    let path = dir.join(FILE);
    std::fs::write(&path, format!("sextant-data {FORMAT_VERSION}\n")).map_err(|source| Error::Io {
        context: format!("writing {}", path.display()),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_newer_format() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(check(dir.path()).unwrap(), None);
        write_current(dir.path()).unwrap();
        assert_eq!(check(dir.path()).unwrap(), Some(FORMAT_VERSION));
        std::fs::write(dir.path().join(FILE), "sextant-data 99\n").unwrap();
        let err = check(dir.path()).unwrap_err();
        assert!(err.to_string().contains("format version 99"), "{err}");
        std::fs::write(dir.path().join(FILE), "sextant-data 2\n").unwrap();
        assert_eq!(check(dir.path()).unwrap(), Some(2));
    }
}
