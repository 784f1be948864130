//! Target discovery: static lists and `file_sd_configs` (JSON or YAML files, re-read
//! when they change and every `refresh_interval`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use sextant_model::Labels;

use crate::config::{FileSdConfig, StaticConfig};

/// A group of targets sharing labels, as discovery produces it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetGroup {
    /// Where the group came from (`static/0`, `file:/path:2`).
    pub source: String,
    /// One label set per target; each has `__address__`.
    pub targets: Vec<Labels>,
}

/// Groups of `static_configs`.
pub fn static_groups(configs: &[StaticConfig]) -> Vec<TargetGroup> {
    configs
        .iter()
        .enumerate()
        .map(|(i, sc)| TargetGroup {
            source: format!("static/{i}"),
            targets: sc
                .targets
                .iter()
                .filter_map(|addr| {
                    Labels::from_pairs(
                        sc.labels
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .chain(std::iter::once(("__address__".to_owned(), addr.clone()))),
                    )
                    .ok()
                })
                .collect(),
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Reads one file_sd file into groups; each target gets `__meta_filepath`.
pub fn read_file_groups(path: &Path) -> Result<Vec<TargetGroup>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let groups: Vec<FileGroup> = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
    };
    let filepath = path.display().to_string();
    groups
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            let targets = g
                .targets
                .iter()
                .map(|addr| {
                    let pairs = g.labels.iter().map(|(k, v)| (k.clone(), v.clone())).chain([
                        ("__address__".to_owned(), addr.clone()),
                        ("__meta_filepath".to_owned(), filepath.clone()),
                    ]);
                    let labels = Labels::from_pairs(pairs).map_err(|e| format!("{}: {e}", path.display()))?;
                    labels.validate().map_err(|e| format!("{}: {e}", path.display()))?;
                    Ok(labels)
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(TargetGroup {
                source: format!("file:{filepath}:{i}"),
                targets,
            })
        })
        .collect()
}

/// Watches the files of one `file_sd_configs` entry.
pub(crate) struct FileWatcher {
    config: FileSdConfig,
    /// Path → (modified time, size) at last read.
    seen: BTreeMap<PathBuf, (SystemTime, u64)>,
    last_full_read: Option<std::time::Instant>,
}

impl FileWatcher {
    pub fn new(config: FileSdConfig) -> Self {
        Self {
            config,
            seen: BTreeMap::new(),
            last_full_read: None,
        }
    }

    fn refresh_interval(&self) -> Duration {
        self.config
            .refresh_interval
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(300))
    }

    /// New groups when any file appeared, changed or vanished, or the refresh interval
    /// passed; `None` when nothing changed. A file that fails to parse keeps its
    /// previous targets (as Prometheus does) and is logged.
    pub fn poll(&mut self, previous: &mut BTreeMap<PathBuf, Vec<TargetGroup>>) -> Option<Vec<TargetGroup>> {
        let mut current = BTreeMap::new();
        for pattern in &self.config.files {
            let Ok(paths) = glob::glob(pattern) else { continue };
            for p in paths.flatten() {
                if let Ok(meta) = std::fs::metadata(&p) {
                    current.insert(p, (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len()));
                }
            }
        }
        let due = self
            .last_full_read
            .is_none_or(|t| t.elapsed() >= self.refresh_interval());
        if current == self.seen && !due {
            return None;
        }
        self.last_full_read = Some(std::time::Instant::now());
        previous.retain(|p, _| current.contains_key(p));
        for path in current.keys() {
            match read_file_groups(path) {
                Ok(groups) => {
                    previous.insert(path.clone(), groups);
                }
                Err(e) => tracing::warn!(error = %e, "file_sd: keeping previous targets"),
            }
        }
        self.seen = current;
        Some(previous.values().flatten().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_json_and_yaml_and_notices_changes() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("a.json");
        std::fs::write(
            &json,
            r#"[{"targets": ["h1:9100", "h2:9100"], "labels": {"env": "prod"}}]"#,
        )
        .unwrap();
        let yaml = dir.path().join("b.yml");
        std::fs::write(&yaml, "- targets: [h3:9100]\n").unwrap();
        let cfg = FileSdConfig {
            files: vec![format!("{}/*.json", dir.path().display()), yaml.display().to_string()],
            refresh_interval: None,
        };
        let mut w = FileWatcher::new(cfg);
        let mut prev = BTreeMap::new();
        let groups = w.poll(&mut prev).unwrap();
        let all: Vec<&Labels> = groups.iter().flat_map(|g| &g.targets).collect();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].get("env"), Some("prod"));
        assert_eq!(all[0].get("__meta_filepath"), Some(json.display().to_string().as_str()));
        assert!(w.poll(&mut prev).is_none(), "nothing changed");
        std::fs::write(&yaml, "- targets: [h3:9100, h4:9100]\n").unwrap();
        let groups = w.poll(&mut prev).unwrap();
        assert_eq!(groups.iter().map(|g| g.targets.len()).sum::<usize>(), 4);
        // A broken file keeps its previous targets.
        std::fs::write(&yaml, "- targets: [unclosed\n").unwrap();
        let groups = w.poll(&mut prev).unwrap();
        assert_eq!(groups.iter().map(|g| g.targets.len()).sum::<usize>(), 4);
        std::fs::remove_file(&json).unwrap();
        let groups = w.poll(&mut prev).unwrap();
        assert_eq!(groups.iter().map(|g| g.targets.len()).sum::<usize>(), 2);
    }
}
