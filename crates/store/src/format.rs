//! The data directory's format version, kept in `FORMAT` beside the database so a binary
//! can refuse a directory it does not understand before touching it.

use std::path::Path;

use crate::{Error, Result};

/// The on-disk format this binary writes. Bump it when the layout changes, and teach
/// [`check_or_init`] to open (or migrate) the older versions.
///
/// - 1: raw `samples_<block>` tables only.
/// - 2: adds compacted `chunks_<block>` / `chunk_series_<block>` tables. A version-1
///   directory is valid version 2 as it stands, so it is upgraded by rewriting `FORMAT`.
pub const FORMAT_VERSION: u32 = 2;

const FILE: &str = "FORMAT";

/// Creates `dir` with a `FORMAT` file, or checks the existing one.
pub(crate) fn check_or_init(dir: &Path) -> Result<()> {
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
            if found == 1 {
                tracing::info!(dir = %dir.display(), "upgrading data directory from format 1 to 2");
                return std::fs::write(&path, format!("sextant-data {FORMAT_VERSION}\n"))
                    .map_err(io(format!("writing {}", path.display())));
            }
            if found != FORMAT_VERSION {
                return Err(Error::IncompatibleFormat {
                    path: dir.display().to_string(),
                    found,
                    supported: FORMAT_VERSION,
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&path, format!("sextant-data {FORMAT_VERSION}\n"))
                .map_err(io(format!("writing {}", path.display())))
        }
        Err(e) => Err(Error::Io {
            context: format!("reading {}", path.display()),
            source: e,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_newer_format() {
        let dir = tempfile::tempdir().unwrap();
        check_or_init(dir.path()).unwrap();
        check_or_init(dir.path()).unwrap();
        std::fs::write(dir.path().join(FILE), "sextant-data 99\n").unwrap();
        let err = check_or_init(dir.path()).unwrap_err();
        assert!(err.to_string().contains("format version 99"), "{err}");
        std::fs::write(dir.path().join(FILE), "sextant-data 1\n").unwrap();
        check_or_init(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(FILE)).unwrap(),
            "sextant-data 2\n"
        );
    }
}
