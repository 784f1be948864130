//! `sextant slo generate` against the rules Sloth v0.16 generated for its own example
//! specs (`../shared/conformance/sloth`: 30d, 28d and a custom 7d window catalog):
//! the same groups, record and alert names, expressions, labels and annotations. Only
//! `sloth_version` may differ.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml::Value;
use sextant_slo::sloth_rules::{GenerateOptions, generate, to_yaml};
use sextant_slo::windows::WindowCatalog;

fn sloth_dir() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("../../../shared/conformance/sloth")
}

/// The YAML documents of a rule file, as values.
fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

use serde::Deserialize;

/// Differences between two rule documents, with `sloth_version` ignored.
fn compare(want: &Value, got: &Value, what: &str) -> Vec<String> {
    let mut diffs = Vec::new();
    let groups = |v: &Value| v["groups"].as_sequence().cloned().unwrap_or_default();
    let (wg, gg) = (groups(want), groups(got));
    if wg.len() != gg.len() {
        diffs.push(format!("{what}: {} groups, Sloth has {}", gg.len(), wg.len()));
    }
    for (w, g) in wg.iter().zip(&gg) {
        let name = w["name"].as_str().unwrap_or("");
        if w["name"] != g["name"] {
            diffs.push(format!("{what}: group {:?}, Sloth has {name:?}", g["name"]));
        }
        let (wr, gr) = (
            w["rules"].as_sequence().cloned().unwrap_or_default(),
            g["rules"].as_sequence().cloned().unwrap_or_default(),
        );
        if wr.len() != gr.len() {
            diffs.push(format!("{what}/{name}: {} rules, Sloth has {}", gr.len(), wr.len()));
        }
        for (i, (a, b)) in wr.iter().zip(&gr).enumerate() {
            for key in ["record", "alert", "expr", "annotations"] {
                if a[key] != b[key] {
                    diffs.push(format!(
                        "{what}/{name} rule {i} {key}:\n  sloth:   {:?}\n  sextant: {:?}",
                        a[key], b[key]
                    ));
                }
            }
            let labels = |v: &Value| -> BTreeMap<String, String> {
                v["labels"]
                    .as_mapping()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.as_str().unwrap().to_owned(), v.as_str().unwrap().to_owned()))
                            .filter(|(k, _)| k != "sloth_version")
                            .collect()
                    })
                    .unwrap_or_default()
            };
            if labels(a) != labels(b) {
                diffs.push(format!(
                    "{what}/{name} rule {i} labels:\n  sloth:   {:?}\n  sextant: {:?}",
                    labels(a),
                    labels(b)
                ));
            }
        }
    }
    diffs
}

fn check(spec: &str, golden: &str, opts: &GenerateOptions) -> Vec<String> {
    let dir = sloth_dir();
    let docs = sextant_slo::spec::load(&dir.join("specs").join(spec)).unwrap_or_else(|e| panic!("{spec}: {e:?}"));
    let generated: Vec<_> = docs.iter().map(|d| generate(d, opts).unwrap()).collect();
    let ours = documents(&to_yaml(&generated));
    let theirs = documents(&std::fs::read_to_string(dir.join("gen").join(golden)).unwrap());
    let mut diffs = Vec::new();
    let rules: usize = theirs
        .iter()
        .flat_map(|d| d["groups"].as_sequence().cloned().unwrap_or_default())
        .map(|g| g["rules"].as_sequence().map_or(0, Vec::len))
        .sum();
    assert!(rules >= 8, "{golden}: only {rules} rules in Sloth's output");
    if ours.len() != theirs.len() {
        diffs.push(format!(
            "{spec}: {} documents, Sloth wrote {}",
            ours.len(),
            theirs.len()
        ));
    }
    for (w, g) in theirs.iter().zip(&ours) {
        diffs.extend(compare(w, g, spec));
    }
    diffs
}

#[test]
fn same_rules_as_sloth_for_its_examples() {
    let examples = GenerateOptions {
        extra_labels: BTreeMap::from([("cmd".to_owned(), "examplesgen.sh".to_owned())]),
        ..GenerateOptions::default()
    };
    let mut diffs = Vec::new();
    let mut n = 0;
    for spec in [
        "getting-started.yml",
        "home-wifi.yml",
        "kubernetes-apiserver.yml",
        "multifile.yml",
        "no-alerts.yml",
        "raw-home-wifi.yml",
        "openslo-getting-started.yml",
        "openslo-kubernetes-apiserver.yml",
    ] {
        diffs.extend(check(spec, spec, &examples));
        n += 1;
    }
    diffs.extend(check("in-base.yaml", "out-base.yml", &GenerateOptions::default()));
    let days = |d: u64| Duration::from_secs(d * 86400);
    diffs.extend(check(
        "in-base.yaml",
        "out-base-28d.yml",
        &GenerateOptions {
            default_period: days(28),
            ..GenerateOptions::default()
        },
    ));
    diffs.extend(check(
        "in-base.yaml",
        "out-base-custom-windows-7d.yml",
        &GenerateOptions {
            default_period: days(7),
            windows: WindowCatalog::load_dir(&sloth_dir().join("windows/custom-7d")).unwrap(),
            ..GenerateOptions::default()
        },
    ));
    n += 3;
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
    eprintln!("sloth goldens: {n}/{n} outputs identical to Sloth v0.16's (30d, 28d, custom 7d)");
}
