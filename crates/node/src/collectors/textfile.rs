//! `textfile`: metrics other programs write into `*.prom` files of a directory, merged
//! into the node collector's output with each file's modification time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sextant_expfmt::{Exposition, Format};
use sextant_model::MetricType;

use crate::Node;
use crate::error::Result;
use crate::out::Out;
use crate::read;

/// (sample name, labels, value) of one sample line.
type Sample = (String, Vec<(String, String)>, f64);

/// One family read from a file, with the samples that belong to it.
struct Family {
    typ: MetricType,
    help: Option<String>,
    samples: Vec<Sample>,
}

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let dir = &node.opts.textfile_directory;
    let mut errored = false;
    let mut families: Vec<(String, Family)> = Vec::new();
    let mut files_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut mtimes: BTreeMap<String, f64> = BTreeMap::new();
    for dir in directories(dir) {
        let names = match read::dir_names(&dir) {
            Ok(n) => n,
            Err(e) => {
                if !dir.as_os_str().is_empty() {
                    errored = true;
                    tracing::debug!(path = %dir.display(), error = %e, "failed to read textfile collector directory");
                }
                continue;
            }
        };
        for name in names.into_iter().filter(|n| n.ends_with(".prom")) {
            let path = dir.join(&name);
            match file(&path) {
                Ok((mtime, parsed)) => {
                    let shown = path.display().to_string();
                    for (family, f) in parsed {
                        files_of.entry(family.clone()).or_default().push(shown.clone());
                        families.push((family, f));
                    }
                    mtimes.insert(shown, mtime);
                }
                Err(e) => {
                    errored = true;
                    tracing::debug!(file = %path.display(), error = %e, "failed to collect textfile data");
                }
            }
        }
    }
    for (name, f) in &families {
        let help = f
            .help
            .clone()
            .unwrap_or_else(|| format!("Metric read from {}", files_of[name].join(", ")));
        for (sample, labels, v) in &f.samples {
            let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            out.sample_of(name, f.typ, &help, sample, &labels, *v, None);
        }
    }
    for (file, mtime) in &mtimes {
        out.gauge(
            "node_textfile_mtime_seconds",
            "Unixtime mtime of textfiles successfully read.",
            &[("file", file)],
            *mtime,
        );
    }
    out.gauge(
        "node_textfile_scrape_error",
        "1 if there was an error opening or reading a file, 0 otherwise",
        &[],
        f64::from(u8::from(errored)),
    );
    Ok(())
}

/// The directory, or every directory a glob pattern in it matches.
fn directories(dir: &Path) -> Vec<PathBuf> {
    let pattern = dir.to_string_lossy();
    if pattern.contains(['*', '?', '[']) {
        let matched: Vec<PathBuf> = glob_paths(&pattern);
        if !matched.is_empty() {
            return matched;
        }
    }
    vec![dir.to_owned()]
}

/// Paths matching a glob whose wildcards are in the last component.
fn glob_paths(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let (Some(parent), Some(last)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let Ok(re) = glob_regex(&last.to_string_lossy()) else {
        return Vec::new();
    };
    read::dir_names(parent)
        .unwrap_or_default()
        .into_iter()
        .filter(|n| re.is_match(n))
        .map(|n| parent.join(n))
        .collect()
}

fn glob_regex(glob: &str) -> std::result::Result<regex::Regex, regex::Error> {
    let mut re = String::from("^");
    for c in glob.chars() {
        match c {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => re.push('['),
            ']' => re.push(']'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re)
}

/// A file's modification time (whole seconds) and its families.
fn file(path: &Path) -> std::result::Result<(f64, Vec<(String, Family)>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("failed to open textfile data file: {e}"))?;
    let exposition = sextant_expfmt::parse(&bytes, Format::PrometheusText)
        .map_err(|e| format!("failed to parse textfile data: {e}"))?;
    if exposition.samples.iter().any(|s| s.timestamp_ms.is_some()) {
        return Err("textfile contains unsupported client-side timestamps, skipping entire file".into());
    }
    let mtime = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| format!("failed to stat: {e}"))?
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs() as f64);
    Ok((mtime, families(exposition)))
}

/// Groups samples into families by their `# TYPE`d name (histogram and summary parts
/// by their suffixes). Within a family, a label some series lack is added to them
/// empty, as node_exporter does.
fn families(e: Exposition) -> Vec<(String, Family)> {
    let meta: BTreeMap<&str, &sextant_model::MetricMetadata> =
        e.metadata.iter().map(|(n, m)| (n.as_str(), m)).collect();
    let mut order: Vec<String> = Vec::new();
    let mut by_name: BTreeMap<String, Family> = BTreeMap::new();
    for s in &e.samples {
        let name = s.labels.metric_name().unwrap_or("");
        let family = family_of(name, &meta);
        let m = meta.get(family.as_str());
        let f = by_name.entry(family.clone()).or_insert_with(|| {
            order.push(family.clone());
            Family {
                typ: m.map_or(MetricType::Unknown, |m| m.metric_type),
                help: m.map(|m| m.help.clone()).filter(|h| !h.is_empty()),
                samples: Vec::new(),
            }
        });
        let labels = s
            .labels
            .iter()
            .filter(|l| l.name != "__name__")
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        f.samples.push((name.to_owned(), labels, s.value));
    }
    for f in by_name.values_mut() {
        let own =
            |k: &str| !(k == "le" && f.typ == MetricType::Histogram || k == "quantile" && f.typ == MetricType::Summary);
        let all: BTreeSet<String> = f
            .samples
            .iter()
            .flat_map(|(_, l, _)| l.iter().map(|(k, _)| k.clone()))
            .filter(|k| own(k))
            .collect();
        for (_, labels, _) in &mut f.samples {
            for k in &all {
                if !labels.iter().any(|(n, _)| n == k) {
                    labels.push((k.clone(), String::new()));
                }
            }
        }
    }
    order
        .into_iter()
        .map(|n| {
            let f = by_name.remove(&n).expect("inserted above");
            (n, f)
        })
        .collect()
}

fn family_of(name: &str, meta: &BTreeMap<&str, &sextant_model::MetricMetadata>) -> String {
    for (suffix, types) in [
        ("_bucket", &[MetricType::Histogram][..]),
        ("_sum", &[MetricType::Histogram, MetricType::Summary][..]),
        ("_count", &[MetricType::Histogram, MetricType::Summary][..]),
    ] {
        if let Some(base) = name.strip_suffix(suffix)
            && meta.get(base).is_some_and(|m| types.contains(&m.metric_type))
        {
            return base.to_owned();
        }
    }
    name.to_owned()
}
