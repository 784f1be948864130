//! Alerting rules with Prometheus 2.42's semantics: alerts move inactive → pending →
//! firing → resolved (kept 15 minutes), `for` and `keep_firing_for`, labels and
//! annotations expanded from templates each evaluation, `ALERTS` and
//! `ALERTS_FOR_STATE` series, the resend schedule towards the alert router, and the
//! restore of `for` state after a restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use sextant_model::{Labels, METRIC_NAME, PostableAlert, Sample, is_stale_nan};
use sextant_template::Funcs;

use crate::templates::{AlertTemplate, TemplateData};

/// How long a resolved alert is kept (and re-sent) before it is forgotten.
const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// An alert's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertState {
    /// Resolved (or never active).
    Inactive,
    /// Active for less than `for`.
    Pending,
    /// Active for at least `for`.
    Firing,
}

impl AlertState {
    /// Prometheus' spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of a rule.
#[derive(Debug, Clone)]
pub struct Alert {
    /// Identity: the result's labels, the rule's labels, `alertname`.
    pub labels: Labels,
    /// Expanded annotations.
    pub annotations: BTreeMap<String, String>,
    /// State.
    pub state: AlertState,
    /// The value of the latest evaluation it was present in.
    pub value: f64,
    /// When it became active (pending), epoch ms.
    pub active_at_ms: i64,
    /// When it started firing.
    pub fired_at_ms: Option<i64>,
    /// When it resolved.
    pub resolved_at_ms: Option<i64>,
    /// When it was last handed to the router.
    pub last_sent_ms: Option<i64>,
    /// Until when the last send said it is valid.
    pub valid_until_ms: i64,
    /// Since when a firing alert has been kept firing by `keep_firing_for` while
    /// absent from the result.
    pub keep_firing_since_ms: Option<i64>,
}

/// The settings rules share (Prometheus' `--rules.alert.*` flags and its URL).
#[derive(Debug, Clone)]
pub struct AlertingOptions {
    /// Least time between two sends of an unchanged alert (1m).
    pub resend_delay: Duration,
    /// Longest downtime after which `for` state is still restored (1h).
    pub for_outage_tolerance: Duration,
    /// Least time a restored alert stays pending before it fires (10m).
    pub for_grace_period: Duration,
    /// `global.external_labels`.
    pub external_labels: Arc<Labels>,
    /// The server's external URL (for `generatorURL` and templates).
    pub external_url: Arc<str>,
}

impl Default for AlertingOptions {
    fn default() -> Self {
        Self {
            resend_delay: Duration::from_secs(60),
            for_outage_tolerance: Duration::from_secs(3600),
            for_grace_period: Duration::from_secs(600),
            external_labels: Arc::new(Labels::empty()),
            external_url: "http://localhost:9470".into(),
        }
    }
}

/// An alerting rule with its alerts.
#[derive(Debug, Clone)]
pub struct AlertingRule {
    /// `alert`.
    pub name: String,
    /// The expression as Prometheus prints it.
    pub query: String,
    /// `for`.
    pub for_: Duration,
    /// `keep_firing_for`.
    pub keep_firing_for: Duration,
    /// The rule's labels as written (templates).
    pub raw_labels: Vec<(String, String)>,
    /// The rule's annotations as written.
    pub raw_annotations: Vec<(String, String)>,
    labels: Vec<(String, AlertTemplate)>,
    annotations: Vec<(String, AlertTemplate)>,
    /// Active alerts (pending, firing, and resolved ones still kept) by label set.
    pub active: HashMap<Labels, Alert>,
    /// Whether `for` state has been restored (or needs no restoring).
    pub restored: bool,
}

/// The results of one evaluation.
#[derive(Debug, Default)]
pub struct Evaluated {
    /// `ALERTS` and `ALERTS_FOR_STATE` samples at the evaluation time.
    pub series: Vec<(Labels, f64)>,
}

impl AlertingRule {
    /// Builds the rule; templates are parsed with `funcs` (errors are promtool's).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        query: &str,
        for_: Duration,
        keep_firing_for: Duration,
        labels: &[(String, String)],
        annotations: &[(String, String)],
        funcs: &Funcs,
        restored: bool,
    ) -> Result<Self, String> {
        let parse = |kind: &str, items: &[(String, String)]| -> Result<Vec<(String, AlertTemplate)>, String> {
            let mut sorted = items.to_vec();
            sorted.sort();
            sorted
                .into_iter()
                .map(|(k, v)| {
                    AlertTemplate::parse(name, &v, funcs)
                        .map(|t| (k.clone(), t))
                        .map_err(|e| format!("{kind} {k:?}: {e}"))
                })
                .collect()
        };
        Ok(Self {
            name: name.to_owned(),
            query: query.to_owned(),
            for_,
            keep_firing_for,
            raw_labels: labels.to_vec(),
            raw_annotations: annotations.to_vec(),
            labels: parse("label", labels)?,
            annotations: parse("annotation", annotations)?,
            active: HashMap::new(),
            restored,
        })
    }

    /// The rule's state: the highest state among its alerts.
    pub fn state(&self) -> AlertState {
        self.active
            .values()
            .map(|a| a.state)
            .max()
            .unwrap_or(AlertState::Inactive)
    }

    /// Alerts that are pending or firing (including kept firing).
    pub fn active_alerts(&self) -> Vec<Alert> {
        let mut v: Vec<Alert> = self
            .active
            .values()
            .filter(|a| a.resolved_at_ms.is_none())
            .cloned()
            .collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }

    /// Evaluates the rule at `ts` over the query's result (labels with `__name__`,
    /// values). `limit` is the group's (0: none). On error the alerts are left as
    /// they were, except that exceeding the limit forgets them all, as Prometheus
    /// does.
    pub fn eval(
        &mut self,
        ts: i64,
        result: Vec<(Labels, f64)>,
        limit: usize,
        opts: &AlertingOptions,
    ) -> Result<Evaluated, String> {
        let mut candidates: HashMap<Labels, (BTreeMap<String, String>, f64)> = HashMap::with_capacity(result.len());
        for (sample_labels, value) in result {
            let data = TemplateData {
                labels: sample_labels.clone(),
                external_labels: opts.external_labels.clone(),
                external_url: opts.external_url.clone(),
                value,
            };
            let mut b = sample_labels.to_builder();
            b.del(METRIC_NAME);
            for (name, t) in &self.labels {
                let v = t.expand(&data);
                if v.is_empty() {
                    b.del(name);
                } else {
                    b.set(name, &v);
                }
            }
            b.set("alertname", &self.name);
            let labels = b.build();
            let annotations: BTreeMap<String, String> = self
                .annotations
                .iter()
                .map(|(k, t)| (k.clone(), t.expand(&data)))
                .collect();
            if candidates.insert(labels, (annotations, value)).is_some() {
                return Err("vector contains metrics with the same labelset after applying alert labels".into());
            }
        }
        let present: Vec<Labels> = candidates.keys().cloned().collect();
        for (labels, (annotations, value)) in candidates {
            match self.active.get_mut(&labels) {
                Some(a) if a.state != AlertState::Inactive => {
                    a.value = value;
                    a.annotations = annotations;
                }
                _ => {
                    self.active.insert(
                        labels.clone(),
                        Alert {
                            labels,
                            annotations,
                            state: AlertState::Pending,
                            value,
                            active_at_ms: ts,
                            fired_at_ms: None,
                            resolved_at_ms: None,
                            last_sent_ms: None,
                            valid_until_ms: 0,
                            keep_firing_since_ms: None,
                        },
                    );
                }
            }
        }
        let present: std::collections::HashSet<Labels> = present.into_iter().collect();
        let for_ms = self.for_.as_millis() as i64;
        let keep_ms = self.keep_firing_for.as_millis() as i64;
        let mut out = Evaluated::default();
        let mut active_pending = 0usize;
        let mut forget = Vec::new();
        for (key, a) in self.active.iter_mut() {
            if !present.contains(key) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && keep_ms > 0 {
                    let since = *a.keep_firing_since_ms.get_or_insert(ts);
                    keep_firing = ts - since < keep_ms;
                }
                if a.state == AlertState::Pending || a.resolved_at_ms.is_some_and(|r| ts - r > RESOLVED_RETENTION_MS) {
                    forget.push(key.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at_ms = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since_ms = None;
            }
            active_pending += 1;
            if a.state == AlertState::Pending && ts - a.active_at_ms >= for_ms {
                a.state = AlertState::Firing;
                a.fired_at_ms = Some(ts);
            }
            if self.restored {
                out.series.extend(series_of(&self.raw_labels, a));
            }
        }
        for k in forget {
            self.active.remove(&k);
        }
        if limit > 0 && active_pending > limit {
            self.active.clear();
            return Err(format!("exceeded limit of {limit} with {active_pending} alerts"));
        }
        Ok(out)
    }

    /// The alerts due to be sent after an evaluation at `ts` (pending never;
    /// resolutions at once; others when the resend delay has passed), marked sent.
    pub fn due(&mut self, ts: i64, interval: Duration, opts: &AlertingOptions) -> Vec<PostableAlert> {
        let resend = opts.resend_delay.as_millis() as i64;
        let validity = 4 * resend.max(interval.as_millis() as i64);
        let generator_url = format!(
            "{}/graph?g0.expr={}&g0.tab=1",
            opts.external_url.trim_end_matches('/'),
            sextant_template::query_escape(&self.query)
        );
        let mut out = Vec::new();
        let mut keys: Vec<&Labels> = self.active.keys().collect();
        keys.sort();
        let keys: Vec<Labels> = keys.into_iter().cloned().collect();
        for k in keys {
            let a = self.active.get_mut(&k).expect("listed");
            if a.state == AlertState::Pending {
                continue;
            }
            let resolved_unsent = a.resolved_at_ms.is_some_and(|r| a.last_sent_ms.is_none_or(|s| r > s));
            let resend_due = a.last_sent_ms.is_none_or(|s| s + resend < ts);
            if !(resolved_unsent || resend_due) {
                continue;
            }
            a.last_sent_ms = Some(ts);
            a.valid_until_ms = ts + validity;
            let mut labels = a.labels.to_builder();
            for l in opts.external_labels.iter() {
                if labels.get(&l.name).is_none() {
                    labels.set(&l.name, &l.value);
                }
            }
            out.push(PostableAlert {
                labels: labels.build(),
                annotations: a.annotations.clone(),
                starts_at_ms: a.fired_at_ms,
                ends_at_ms: Some(a.resolved_at_ms.unwrap_or(a.valid_until_ms)),
                generator_url: generator_url.clone(),
            });
        }
        out
    }

    /// Restores `for` state after a restart from the last `ALERTS_FOR_STATE` sample
    /// of each active alert (`last` looks it up within the outage tolerance), at the
    /// wall-clock time `now_ms`, as Prometheus' `RestoreForState` does.
    pub fn restore(&mut self, now_ms: i64, opts: &AlertingOptions, last: impl Fn(&Labels) -> Option<Sample>) {
        if self.for_ < opts.for_grace_period {
            self.restored = true;
            return;
        }
        let for_s = self.for_.as_secs() as i64;
        let grace_ms = opts.for_grace_period.as_millis() as i64;
        for a in self.active.values_mut() {
            let mut b = a.labels.to_builder();
            b.set(METRIC_NAME, "ALERTS_FOR_STATE");
            let Some(s) = last(&b.build()) else { continue };
            if is_stale_nan(s.v) {
                continue;
            }
            let down_at_s = s.t_ms.div_euclid(1000);
            let restored_active_at_s = s.v as i64;
            let remaining_s = for_s - (down_at_s - restored_active_at_s);
            a.active_at_ms = if remaining_s <= 0 {
                restored_active_at_s * 1000
            } else if remaining_s * 1000 < grace_ms {
                now_ms + grace_ms - for_s * 1000
            } else {
                restored_active_at_s * 1000 + (now_ms - down_at_s * 1000)
            };
        }
        self.restored = true;
    }

    /// Takes over the alerts of `old` (the same rule before a reload) whose rule
    /// name and raw labels match, as Prometheus does for changed groups.
    pub fn inherit(&mut self, old: &AlertingRule) {
        if old.name == self.name && old.raw_labels == self.raw_labels {
            self.active = old.active.clone();
            self.restored = old.restored || self.restored;
        }
    }
}

/// `ALERTS` and `ALERTS_FOR_STATE` for one alert: the raw rule labels overlaid
/// with the alert's (so a label whose template expanded to "" shows its template
/// text here, as in Prometheus).
fn series_of(raw_labels: &[(String, String)], a: &Alert) -> [(Labels, f64); 2] {
    let mut b = Labels::from_pairs(raw_labels.iter().cloned())
        .unwrap_or_default()
        .to_builder();
    for l in a.labels.iter() {
        b.set(&l.name, &l.value);
    }
    b.set(METRIC_NAME, "ALERTS_FOR_STATE");
    let for_state = b.build();
    b.set(METRIC_NAME, "ALERTS");
    b.set("alertstate", a.state.as_str());
    let alerts = b.build();
    [(alerts, 1.0), (for_state, (a.active_at_ms.div_euclid(1000)) as f64)]
}

#[cfg(test)]
mod tests;
