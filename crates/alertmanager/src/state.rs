//! The router's durable state: alerts, silences, the notification log,
//! acknowledgements and incidents, kept in memory and made durable through a
//! write-ahead log of changes (JSON records) with periodic checkpoints.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use sextant_model::Labels;

use crate::alert::Alert;
use crate::matchers::{MatchType, Matcher};
use crate::nflog::{Entry, NotificationLog};
use crate::silence::{Silence, Silences};

/// Format of the records and snapshots; a newer binary reads older versions or
/// refuses with a clear message.
pub const FORMAT_VERSION: u32 = 1;

/// An acknowledgement of an alert group: who, when, why, and the firing alerts it
/// covers (it lapses when another alert starts firing in the group).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// The group's key.
    pub group_key: String,
    /// Who acknowledged.
    pub by: String,
    /// When (epoch ms).
    pub at: i64,
    /// Why.
    pub comment: String,
    /// Hashes of the firing alerts covered.
    pub firing: Vec<u64>,
}

/// An alert as an incident remembers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentAlert {
    /// Fingerprint (16 hex digits).
    pub fingerprint: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Start (epoch ms).
    pub starts_at: i64,
    /// End, once resolved.
    pub ends_at: Option<i64>,
}

/// An escalation that was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    /// 1 for the first `escalate_to` receiver, ...
    pub level: usize,
    /// The receiver notified.
    pub receiver: String,
    /// When.
    pub at: i64,
}

/// An incident: a firing alert group from its first notification to its
/// resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// `inc-<n>`.
    pub id: String,
    /// The group's key.
    pub group_key: String,
    /// The route's receiver.
    pub receiver: String,
    /// `[FIRING] <group label values>`.
    pub title: String,
    /// The group's labels.
    pub group_labels: BTreeMap<String, String>,
    /// The common `severity` label, if any.
    pub severity: Option<String>,
    /// When it opened (first notification of the group as firing).
    pub started_at: i64,
    /// When it closed (the group's resolution was notified).
    pub ended_at: Option<i64>,
    /// Every alert that fired in it.
    pub alerts: Vec<IncidentAlert>,
    /// The SLO it concerns (`sloth_id`), if its alerts are burn tiers.
    pub slo: Option<String>,
    /// The burn rate the tier reported when it opened.
    pub burn_rate_at_open: Option<f64>,
    /// The acknowledgement, if any.
    pub ack: Option<Ack>,
    /// Escalations sent.
    pub escalations: Vec<Escalation>,
}

/// One change, as written to the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Record {
    /// An alert stored (new or merged).
    Alert(StoredAlert),
    /// Alerts removed by garbage collection.
    AlertsGone {
        /// Fingerprints.
        fps: Vec<u64>,
    },
    /// A silence stored (new, updated or expired).
    Silence(StoredSilence),
    /// Silences removed by garbage collection.
    SilencesGone {
        /// Ids.
        ids: Vec<String>,
    },
    /// A notification log entry.
    Nflog(StoredEntry),
    /// An acknowledgement.
    Ack(Ack),
    /// An acknowledgement withdrawn (by the user, or lapsed).
    Unack {
        /// The group's key.
        group_key: String,
    },
    /// An incident opened or changed.
    Incident(Box<Incident>),
}

/// An alert in the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredAlert {
    labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
    starts_at: i64,
    ends_at: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    generator_url: String,
    updated_at: i64,
    #[serde(default)]
    timeout: bool,
}

impl From<&Alert> for StoredAlert {
    fn from(a: &Alert) -> Self {
        Self {
            labels: a.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect(),
            annotations: a.annotations.clone(),
            starts_at: a.starts_at,
            ends_at: a.ends_at,
            generator_url: a.generator_url.clone(),
            updated_at: a.updated_at,
            timeout: a.timeout,
        }
    }
}

impl StoredAlert {
    fn into_alert(self) -> Alert {
        Alert {
            labels: Labels::from_pairs(self.labels).unwrap_or_default(),
            annotations: self.annotations,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            generator_url: self.generator_url,
            updated_at: self.updated_at,
            timeout: self.timeout,
        }
    }
}

/// A silence in the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSilence {
    id: String,
    matchers: Vec<(String, String, String)>,
    starts_at: i64,
    ends_at: i64,
    updated_at: i64,
    created_by: String,
    comment: String,
}

impl From<&Silence> for StoredSilence {
    fn from(s: &Silence) -> Self {
        Self {
            id: s.id.clone(),
            matchers: s
                .matchers
                .iter()
                .map(|m| (m.name.clone(), m.op.as_str().to_owned(), m.value.clone()))
                .collect(),
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            updated_at: s.updated_at,
            created_by: s.created_by.clone(),
            comment: s.comment.clone(),
        }
    }
}

impl StoredSilence {
    fn into_silence(self) -> Option<Silence> {
        let matchers = self
            .matchers
            .into_iter()
            .map(|(n, op, v)| {
                let op = match op.as_str() {
                    "=" => MatchType::Equal,
                    "!=" => MatchType::NotEqual,
                    "=~" => MatchType::Regexp,
                    _ => MatchType::NotRegexp,
                };
                Matcher::new(op, n, v).ok()
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Silence {
            id: self.id,
            matchers,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            updated_at: self.updated_at,
            created_by: self.created_by,
            comment: self.comment,
        })
    }
}

/// A notification log entry in the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredEntry {
    key: String,
    timestamp: i64,
    firing: Vec<u64>,
    resolved: Vec<u64>,
    expires_at: i64,
}

impl From<&Entry> for StoredEntry {
    fn from(e: &Entry) -> Self {
        Self {
            key: e.key.clone(),
            timestamp: e.timestamp,
            firing: e.firing.clone(),
            resolved: e.resolved.clone(),
            expires_at: e.expires_at,
        }
    }
}

impl From<StoredEntry> for Entry {
    fn from(e: StoredEntry) -> Self {
        Self {
            key: e.key,
            timestamp: e.timestamp,
            firing: e.firing,
            resolved: e.resolved,
            expires_at: e.expires_at,
        }
    }
}

/// Everything, as a checkpoint holds it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    alerts: Vec<StoredAlert>,
    silences: Vec<StoredSilence>,
    nflog: Vec<StoredEntry>,
    acks: Vec<Ack>,
    incidents: Vec<Incident>,
    next_incident: u64,
}

/// The state in memory.
#[derive(Debug, Default)]
pub struct State {
    /// Alerts by fingerprint.
    pub alerts: HashMap<u64, Alert>,
    /// Silences.
    pub silences: Silences,
    /// The notification log.
    pub nflog: NotificationLog,
    /// Acknowledgements by group key.
    pub acks: HashMap<String, Ack>,
    /// Incidents by id.
    pub incidents: BTreeMap<String, Incident>,
    /// Open incident id by group key.
    pub open_incidents: HashMap<String, String>,
    /// Number of the next incident.
    pub next_incident: u64,
    /// Records applied since the last checkpoint.
    pub since_checkpoint: u64,
}

impl State {
    /// Applies one record (when it happens, and on replay).
    pub fn apply(&mut self, r: Record) {
        match r {
            Record::Alert(a) => {
                let a = a.into_alert();
                self.alerts.insert(a.fingerprint(), a);
            }
            Record::AlertsGone { fps } => {
                for fp in fps {
                    self.alerts.remove(&fp);
                }
            }
            Record::Silence(s) => {
                if let Some(s) = s.into_silence() {
                    self.silences.put(s);
                }
            }
            Record::SilencesGone { ids } => {
                let gone: std::collections::HashSet<String> = ids.into_iter().collect();
                let keep: Vec<Silence> = self
                    .silences
                    .all()
                    .iter()
                    .filter(|s| !gone.contains(&s.id))
                    .cloned()
                    .collect();
                self.silences = Silences::default();
                for s in keep {
                    self.silences.put(s);
                }
            }
            Record::Nflog(e) => self.nflog.put(e.into()),
            Record::Ack(a) => {
                self.acks.insert(a.group_key.clone(), a);
            }
            Record::Unack { group_key } => {
                self.acks.remove(&group_key);
            }
            Record::Incident(i) => {
                if i.ended_at.is_some() {
                    self.open_incidents.remove(&i.group_key);
                } else {
                    self.open_incidents.insert(i.group_key.clone(), i.id.clone());
                }
                if let Some(n) = i.id.strip_prefix("inc-").and_then(|n| n.parse::<u64>().ok()) {
                    self.next_incident = self.next_incident.max(n + 1);
                }
                self.incidents.insert(i.id.clone(), *i);
            }
        }
        self.since_checkpoint += 1;
    }

    /// Encodes a record for the log.
    pub fn encode(r: &Record) -> Vec<u8> {
        serde_json::to_vec(r).expect("records serialize")
    }

    /// Decodes a record from the log.
    pub fn decode(b: &[u8]) -> Result<Record, String> {
        serde_json::from_slice(b).map_err(|e| format!("unreadable record: {e}"))
    }

    /// The whole state as a checkpoint.
    pub fn snapshot(&self) -> Vec<u8> {
        let s = Snapshot {
            version: FORMAT_VERSION,
            alerts: self.alerts.values().map(StoredAlert::from).collect(),
            silences: self.silences.all().iter().map(StoredSilence::from).collect(),
            nflog: self.nflog.entries().map(StoredEntry::from).collect(),
            acks: self.acks.values().cloned().collect(),
            incidents: self.incidents.values().cloned().collect(),
            next_incident: self.next_incident,
        };
        serde_json::to_vec(&s).expect("snapshot serializes")
    }

    /// Loads a checkpoint.
    pub fn restore(b: &[u8]) -> Result<Self, String> {
        let s: Snapshot = serde_json::from_slice(b).map_err(|e| format!("unreadable checkpoint: {e}"))?;
        if s.version > FORMAT_VERSION {
            return Err(format!(
                "the alerting state was written by a newer Sextant (format {}; this one reads up to {FORMAT_VERSION})",
                s.version
            ));
        }
        let mut st = State {
            next_incident: s.next_incident,
            ..Default::default()
        };
        for a in s.alerts {
            st.apply(Record::Alert(a));
        }
        for x in s.silences {
            st.apply(Record::Silence(x));
        }
        for e in s.nflog {
            st.apply(Record::Nflog(e));
        }
        for a in s.acks {
            st.apply(Record::Ack(a));
        }
        for i in s.incidents {
            st.apply(Record::Incident(Box::new(i)));
        }
        st.since_checkpoint = 0;
        Ok(st)
    }
}
