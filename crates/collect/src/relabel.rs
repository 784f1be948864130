//! Prometheus relabeling (`relabel_configs`, `metric_relabel_configs`), with every
//! action Prometheus 2.42 has and its validation rules and semantics.

use md5::{Digest, Md5};
use regex::Regex;
use serde::Deserialize;
use sextant_model::{Labels, LabelsBuilder, anchored_regex, is_valid_label_name};

/// A relabeling action (its name is case-insensitive, as in Prometheus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    /// Set `target_label` to `replacement` expanded with the regex's groups.
    #[default]
    Replace,
    /// Keep the target/series only if the regex matches.
    Keep,
    /// Drop the target/series if the regex matches.
    Drop,
    /// Keep only if the joined source labels equal `target_label`'s value.
    KeepEqual,
    /// Drop if the joined source labels equal `target_label`'s value.
    DropEqual,
    /// Set `target_label` to the MD5 of the joined source labels modulo `modulus`.
    HashMod,
    /// Copy labels whose names match the regex to names given by `replacement`.
    LabelMap,
    /// Remove labels whose names match the regex.
    LabelDrop,
    /// Remove labels whose names do not match the regex.
    LabelKeep,
    /// Set `target_label` to the lower-cased joined source labels.
    Lowercase,
    /// Set `target_label` to the upper-cased joined source labels.
    Uppercase,
}

impl Action {
    const ALL: [Action; 11] = [
        Action::Replace,
        Action::Keep,
        Action::Drop,
        Action::KeepEqual,
        Action::DropEqual,
        Action::HashMod,
        Action::LabelMap,
        Action::LabelDrop,
        Action::LabelKeep,
        Action::Lowercase,
        Action::Uppercase,
    ];

    fn name(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let lower = s.to_lowercase();
        Action::ALL
            .into_iter()
            .find(|a| a.name() == lower)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown relabel action {s:?}")))
    }
}

const DEFAULT_REGEX: &str = "(.*)";
const DEFAULT_SEPARATOR: &str = ";";
const DEFAULT_REPLACEMENT: &str = "$1";

/// A regex from a relabel config: anchored at both ends, compiled at load time so an
/// invalid one is reported with its file position.
#[derive(Debug, Clone)]
pub struct RelabelRegex {
    source: String,
    regex: Regex,
}

impl<'de> Deserialize<'de> for RelabelRegex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        RelabelRegex::new(&source).map_err(serde::de::Error::custom)
    }
}

impl RelabelRegex {
    fn new(source: &str) -> Result<Self, String> {
        anchored_regex(source)
            .map(|regex| Self {
                source: source.to_owned(),
                regex,
            })
            .map_err(|e| e.to_string())
    }
}

impl Default for RelabelRegex {
    fn default() -> Self {
        Self::new(DEFAULT_REGEX).expect("default regex compiles")
    }
}

/// One relabeling step, in Prometheus' YAML shape.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawRelabelConfig")]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator` as the regex input.
    pub source_labels: Vec<String>,
    /// Joins `source_labels` values.
    pub separator: String,
    /// The label written by `replace`, `hashmod`, `lowercase`, `uppercase`, or compared
    /// by `keepequal`/`dropequal`.
    pub target_label: String,
    /// Anchored regular expression.
    pub regex: RelabelRegex,
    /// Modulus for `hashmod`.
    pub modulus: u64,
    /// Replacement with `$1`/`${name}` references.
    pub replacement: String,
    /// What to do.
    pub action: Action,
}

/// The YAML as written, before validation. `Option`s tell a field left out from one
/// written out, which some checks need (Prometheus compares some with the defaults by
/// value and `regex` by presence).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelabelConfig {
    /// See [`RelabelConfig::source_labels`].
    #[serde(default, deserialize_with = "present")]
    source_labels: Option<Vec<String>>,
    /// See [`RelabelConfig::separator`].
    separator: Option<String>,
    /// See [`RelabelConfig::target_label`].
    #[serde(default, deserialize_with = "crate::yaml::null_string")]
    target_label: String,
    /// See [`RelabelConfig::regex`]; `regex: ~` is the empty regex, as in Prometheus.
    #[serde(default, deserialize_with = "present_regex")]
    regex: Option<RelabelRegex>,
    /// See [`RelabelConfig::modulus`].
    #[serde(default)]
    modulus: u64,
    /// See [`RelabelConfig::replacement`].
    replacement: Option<String>,
    /// See [`RelabelConfig::action`]; written as `~`, it is empty.
    #[serde(default = "default_action", deserialize_with = "present")]
    action: Option<Action>,
}

fn default_action() -> Option<Action> {
    Some(Action::Replace)
}

/// `Some` for a field that is written, even as `~` (then its default).
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

fn present_regex<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<RelabelRegex>, D::Error> {
    let source = Option::<String>::deserialize(d)?.unwrap_or_default();
    RelabelRegex::new(&source).map(Some).map_err(serde::de::Error::custom)
}

impl TryFrom<RawRelabelConfig> for RelabelConfig {
    type Error = String;

    /// Prometheus 2.42's validation rules, in its order, with its messages.
    fn try_from(raw: RawRelabelConfig) -> Result<Self, String> {
        let action = raw.action.ok_or("relabel action cannot be empty")?;
        let name = action.name();
        let separator = raw.separator.clone().unwrap_or_else(|| DEFAULT_SEPARATOR.into());
        let replacement = raw.replacement.clone().unwrap_or_else(|| DEFAULT_REPLACEMENT.into());
        if action == Action::HashMod && raw.modulus == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        if matches!(
            action,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        ) && raw.target_label.is_empty()
        {
            return Err(format!(
                "relabel configuration for {name} action requires 'target_label' value"
            ));
        }
        if matches!(
            action,
            Action::Replace | Action::Lowercase | Action::Uppercase | Action::KeepEqual | Action::DropEqual
        ) && !valid_target_template(&raw.target_label)
        {
            return Err(format!(
                "{:?} is invalid 'target_label' for {name} action",
                raw.target_label
            ));
        }
        if matches!(
            action,
            Action::Lowercase | Action::Uppercase | Action::KeepEqual | Action::DropEqual
        ) && replacement != DEFAULT_REPLACEMENT
        {
            return Err(format!("'replacement' can not be set for {name} action"));
        }
        if action == Action::LabelMap && !valid_target_template(&replacement) {
            return Err(format!("{replacement:?} is invalid 'replacement' for {name} action"));
        }
        if action == Action::HashMod && !is_valid_label_name(&raw.target_label) {
            return Err(format!(
                "{:?} is invalid 'target_label' for {name} action",
                raw.target_label
            ));
        }
        if matches!(action, Action::KeepEqual | Action::DropEqual)
            && (raw.regex.is_some()
                || raw.modulus != 0
                || separator != DEFAULT_SEPARATOR
                || replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{name} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(action, Action::LabelDrop | Action::LabelKeep)
            && (raw.source_labels.is_some()
                || !raw.target_label.is_empty()
                || raw.modulus != 0
                || separator != DEFAULT_SEPARATOR
                || replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!("{name} action requires only 'regex', and no other fields"));
        }
        let source_labels = raw.source_labels.unwrap_or_default();
        for l in &source_labels {
            if !is_valid_label_name(l) {
                return Err(format!("{l:?} is not a valid label name"));
            }
        }
        Ok(Self {
            source_labels,
            separator,
            target_label: raw.target_label,
            regex: raw.regex.unwrap_or_default(),
            modulus: raw.modulus,
            replacement,
            action,
        })
    }
}

/// `target_label` of `replace` may reference groups: `^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$`.
fn valid_target_template(s: &str) -> bool {
    static_regex().is_match(s)
}

fn static_regex() -> &'static Regex {
    use std::sync::OnceLock;
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$").expect("static regex"))
}

/// Applies `configs` in order. `None` means the target or series is dropped.
pub fn process(labels: &Labels, configs: &[RelabelConfig]) -> Option<Labels> {
    if configs.is_empty() {
        return Some(labels.clone());
    }
    let mut b = labels.to_builder();
    for c in configs {
        if !apply(&mut b, c) {
            return None;
        }
    }
    Some(b.build())
}

/// One step; false when the step drops the labels.
fn apply(b: &mut LabelsBuilder, c: &RelabelConfig) -> bool {
    let val = c
        .source_labels
        .iter()
        .map(|n| b.get(n).unwrap_or(""))
        .collect::<Vec<_>>()
        .join(&c.separator);
    let re = &c.regex.regex;
    match c.action {
        Action::Drop => return !re.is_match(&val),
        Action::Keep => return re.is_match(&val),
        Action::DropEqual => return b.get(&c.target_label).unwrap_or("") != val,
        Action::KeepEqual => return b.get(&c.target_label).unwrap_or("") == val,
        Action::Replace => {
            let Some(caps) = re.captures(&val) else {
                return true;
            };
            let mut target = String::new();
            caps.expand(&c.target_label, &mut target);
            if !is_valid_label_name(&target) {
                b.del(&c.target_label);
                return true;
            }
            let mut res = String::new();
            caps.expand(&c.replacement, &mut res);
            b.set(&target, &res);
        }
        Action::Lowercase => {
            b.set(&c.target_label, &val.to_lowercase());
        }
        Action::Uppercase => {
            b.set(&c.target_label, &val.to_uppercase());
        }
        Action::HashMod => {
            let digest = Md5::digest(val.as_bytes());
            // Prometheus folds the 16-byte sum into a uint64 with shifts that leave only
            // the last eight bytes, big-endian.
            let sum = u64::from_be_bytes(digest[8..16].try_into().expect("8 bytes"));
            b.set(&c.target_label, &(sum % c.modulus).to_string());
        }
        Action::LabelMap => {
            let current: Vec<(String, String)> = b.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
            for (name, value) in current {
                if re.is_match(&name) {
                    let new_name = re.replace_all(&name, c.replacement.as_str()).into_owned();
                    b.set(&new_name, &value);
                }
            }
        }
        Action::LabelDrop => {
            b.retain(|l| !re.is_match(&l.name));
        }
        Action::LabelKeep => {
            b.retain(|l| re.is_match(&l.name));
        }
    }
    true
}

impl RelabelRegex {
    /// The pattern as written in the config.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfgs(yaml: &str) -> Vec<RelabelConfig> {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn replace_with_groups_and_template_target() {
        let c = cfgs(
            r#"
- source_labels: [a, b]
  regex: "(.*);(.*)"
  target_label: "${1}_x"
  replacement: "$2-$1"
"#,
        );
        assert_eq!(
            process(&l(&[("a", "foo"), ("b", "bar")]), &c),
            Some(l(&[("a", "foo"), ("b", "bar"), ("foo_x", "bar-foo")]))
        );
        // No match: unchanged.
        let c = cfgs("- {source_labels: [a], regex: 'x+', target_label: t}");
        assert_eq!(process(&l(&[("a", "y")]), &c), Some(l(&[("a", "y")])));
        // Empty result deletes the target.
        let c = cfgs("- {source_labels: [a], regex: '.*', target_label: b, replacement: ''}");
        assert_eq!(process(&l(&[("a", "y"), ("b", "z")]), &c), Some(l(&[("a", "y")])));
    }

    #[test]
    fn keep_drop_equal() {
        let keep = cfgs("- {source_labels: [a], regex: 'x|y', action: keep}");
        assert!(process(&l(&[("a", "x")]), &keep).is_some());
        assert!(process(&l(&[("a", "xx")]), &keep).is_none(), "anchored");
        let drop = cfgs("- {source_labels: [missing], regex: '', action: drop}");
        assert!(
            process(&l(&[("a", "x")]), &drop).is_none(),
            "absent label is empty string"
        );
        let ke = cfgs("- {source_labels: [a], target_label: b, action: keepequal}");
        assert!(process(&l(&[("a", "1"), ("b", "1")]), &ke).is_some());
        assert!(process(&l(&[("a", "1"), ("b", "2")]), &ke).is_none());
        let de = cfgs("- {source_labels: [a], target_label: b, action: dropequal}");
        assert!(process(&l(&[("a", "1"), ("b", "1")]), &de).is_none());
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // Read off Prometheus 2.42's /api/v1/targets for a target "foo" with this rule
        // (also 183 for "bar:80", 420 for "MiX").
        let c = cfgs("- {source_labels: [a], target_label: h, modulus: 1000, action: hashmod}");
        let out = process(&l(&[("a", "foo")]), &c).unwrap();
        assert_eq!(out.get("h"), Some("696"));
        let out = process(&l(&[("a", "bar:80")]), &c).unwrap();
        assert_eq!(out.get("h"), Some("183"));
    }

    #[test]
    fn labelmap_labeldrop_labelkeep_case() {
        let c = cfgs("- {regex: '__meta_(.+)', action: labelmap}");
        let out = process(&l(&[("__meta_zone", "z1"), ("a", "1")]), &c).unwrap();
        assert_eq!(out.get("zone"), Some("z1"));
        assert_eq!(out.get("__meta_zone"), Some("z1"));
        let c = cfgs("- {regex: '__meta_.*', action: labeldrop}");
        assert_eq!(
            process(&l(&[("__meta_zone", "z1"), ("a", "1")]), &c),
            Some(l(&[("a", "1")]))
        );
        let c = cfgs("- {regex: 'a', action: labelkeep}");
        assert_eq!(process(&l(&[("b", "z1"), ("a", "1")]), &c), Some(l(&[("a", "1")])));
        let c = cfgs(
            "- {source_labels: [a], target_label: up, action: uppercase}\n- {source_labels: [a], target_label: low, action: lowercase}",
        );
        let out = process(&l(&[("a", "MiX")]), &c).unwrap();
        assert_eq!((out.get("up"), out.get("low")), (Some("MIX"), Some("mix")));
    }

    #[test]
    fn validation_messages() {
        let err = |y: &str| serde_yaml::from_str::<Vec<RelabelConfig>>(y).unwrap_err().to_string();
        assert!(err("- {action: hashmod, target_label: x}").contains("requires non-zero modulus"));
        assert!(err("- {action: replace}").contains("requires 'target_label'"));
        assert!(err("- {action: lowercase, target_label: x, replacement: y}").contains("'replacement' can not be set"));
        assert!(err("- {action: labeldrop, source_labels: [a]}").contains("requires only 'regex'"));
        assert!(err("- {regex: '(', target_label: x}").contains("invalid regular expression"));
        assert!(err("- {action: explode}").contains("unknown relabel action \"explode\""));
        assert!(err("- {action: ~}").contains("relabel action cannot be empty"));
        assert!(err("- {action: labelmap, replacement: '1_$1'}").contains("invalid 'replacement'"));
        assert!(err("- {action: labeldrop, regex: x, separator: ','}").contains("requires only 'regex'"));
        // Prometheus accepts these: names in any case, defaults written out, templates in
        // keepequal's target.
        let ok = |y: &str| serde_yaml::from_str::<Vec<RelabelConfig>>(y).unwrap();
        assert_eq!(
            ok("- {action: HashMod, source_labels: [a], target_label: h, modulus: 2}")[0].action,
            Action::HashMod
        );
        ok("- {action: labeldrop, regex: x, separator: ';'}");
        ok("- {action: keepequal, source_labels: [a], target_label: '${1}'}");
        assert!(err("- {target_label: x, bogus: 1}").contains("unknown field"));
    }

    proptest! {
        #[test]
        fn labeldrop_then_keep_of_same_regex_is_empty(names in proptest::collection::btree_set("[a-z_][a-z0-9_]{0,6}", 0..6)) {
            let labels = Labels::from_pairs(names.iter().map(|n| (n.as_str(), "v"))).unwrap();
            let c = cfgs("- {regex: '[a-m].*', action: labeldrop}\n- {regex: '[a-m].*', action: labelkeep}");
            prop_assert_eq!(process(&labels, &c), Some(Labels::empty()));
        }

        #[test]
        fn hashmod_is_in_range(v in "\\PC{0,20}", m in 1u64..1000) {
            let c = cfgs(&format!("- {{source_labels: [a], target_label: h, modulus: {m}, action: hashmod}}"));
            let labels = Labels::from_pairs([("a", v.as_str())]).unwrap();
            let out = process(&labels, &c).unwrap();
            prop_assert!(out.get("h").unwrap().parse::<u64>().unwrap() < m);
        }
    }
}
