//! Reading SLO spec files: Sloth `prometheus/v1`, OpenSLO `v1alpha` (as Sloth reads
//! it) and OpenSLO `v1`, one or more YAML documents per file, each document in its own
//! format. Every problem is reported with file, line and column.

mod openslo;
mod sloth;

use std::collections::HashSet;
use std::path::Path;

use sextant_model::yaml::Positions;

use crate::error::{Result, SpecError};
use crate::model::SloDocument;

/// One YAML document of a spec file: its text and the line it starts on.
struct Document<'a> {
    text: String,
    first_line: usize,
    file: &'a str,
    /// Every document of the file, for references between OpenSLO documents.
    siblings: Vec<String>,
}

impl Document<'_> {
    /// An error at `path` (`slos.0.objective`) within this document.
    fn error(&self, pos: &Positions, path: &str, message: impl Into<String>) -> SpecError {
        let at = pos.get(path);
        let (line, col) = at.split_once(':').unwrap_or(("1", "1"));
        let line = line.parse::<usize>().unwrap_or(1) + self.first_line - 1;
        SpecError {
            location: format!("{}:{line}:{col}", self.file),
            message: message.into(),
        }
    }

    /// A serde error, positioned if serde knows where.
    fn serde_error(&self, e: &serde_yaml::Error) -> SpecError {
        let message = match e.to_string().rfind(" at line ") {
            Some(i) => e.to_string()[..i].to_owned(),
            None => e.to_string(),
        };
        let (line, col) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        SpecError {
            location: format!("{}:{}:{col}", self.file, line + self.first_line - 1),
            message,
        }
    }
}

/// Splits a file into documents as Sloth does (on lines starting with `---`), keeping
/// line numbers: comment lines are blanked rather than removed.
fn documents<'a>(text: &str, file: &'a str) -> Vec<Document<'a>> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut first_line = 1;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("---") {
            docs.push(Document {
                text: std::mem::take(&mut current),
                first_line,
                file,
                siblings: Vec::new(),
            });
            first_line = i + 2;
            continue;
        }
        if !line.starts_with('#') {
            current.push_str(line);
        }
        current.push('\n');
    }
    docs.push(Document {
        text: current,
        first_line,
        file,
        siblings: Vec::new(),
    });
    docs.retain(|d| !d.text.trim().is_empty());
    let texts: Vec<String> = docs.iter().map(|d| d.text.clone()).collect();
    for d in &mut docs {
        d.siblings = texts.clone();
    }
    docs
}

/// Reads one spec file.
pub fn load(path: &Path) -> Result<Vec<SloDocument>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![SpecError {
            location: path.display().to_string(),
            message: e.to_string(),
        }]
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses spec text; `file` names it in errors. SLO ids must be unique in the file.
pub fn parse(text: &str, file: &str) -> Result<Vec<SloDocument>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for doc in documents(text, file) {
        let pos = Positions::of(&doc.text);
        let head: serde_yaml::Value = match serde_yaml::from_str(&doc.text) {
            Ok(v) => v,
            Err(e) => {
                errors.push(doc.serde_error(&e));
                continue;
            }
        };
        let version = head.get("version").and_then(|v| v.as_str());
        let api_version = head.get("apiVersion").and_then(|v| v.as_str());
        let result = match (version, api_version) {
            (Some(_), _) => sloth::parse(&doc, &pos),
            (None, Some("openslo/v1alpha")) => openslo::parse_v1alpha(&doc, &pos),
            (None, Some("openslo/v1")) => openslo::parse_v1(&doc, &pos),
            (None, Some(other)) => Err(vec![doc.error(
                &pos,
                "apiVersion",
                format!("unsupported apiVersion {other:?} (openslo/v1alpha or openslo/v1)"),
            )]),
            (None, None) => Err(vec![doc.error(
                &pos,
                "",
                r#"not an SLO spec: expected `version: "prometheus/v1"` (Sloth) or `apiVersion: openslo/v1alpha|openslo/v1` (OpenSLO)"#,
            )]),
        };
        match result {
            Ok(Some(d)) => out.push(d),
            Ok(None) => {}
            Err(e) => errors.extend(e),
        }
    }
    let mut seen = HashSet::new();
    for d in &out {
        for s in &d.slos {
            if !seen.insert(s.id.clone()) {
                errors.push(SpecError {
                    location: s.location.clone(),
                    message: format!("SLO ID {:?} is repeated", s.id),
                });
            }
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// Sloth's name rule: alphanumerics at both ends, `-_.` inside, two characters at least.
pub(crate) fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Sloth's label checks: a valid name other than `__name__`, a non-empty value.
pub(crate) fn check_labels(labels: &std::collections::BTreeMap<String, String>) -> std::result::Result<(), String> {
    for (k, v) in labels {
        if k == "__name__" {
            return Err("invalid labels: label key \"__name__\" is not allowed".into());
        }
        if !sextant_model::is_valid_label_name(k) {
            return Err(format!("invalid labels: invalid label key {k:?}"));
        }
        if v.is_empty() {
            return Err(format!("invalid labels: label {k:?} has an empty value"));
        }
    }
    Ok(())
}
