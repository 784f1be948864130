//! The audit log: every decision, taken or not, with its trigger, evidence,
//! reason, action, result and approver. Records live in memory and are made
//! durable through a write-ahead log (JSON records, periodic checkpoints): a
//! decision is on disk before its action starts, so a `kill -9` never loses the
//! record of something Sextant did.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sextant_model::time::format_rfc3339;
use sextant_wal::{Replayed, Wal, WalOptions};
use utoipa::ToSchema;

/// Format of records and snapshots; a newer binary reads older ones, an older
/// binary refuses newer ones with a clear message.
pub const FORMAT_VERSION: u32 = 1;

/// Checkpoint after this many records.
const CHECKPOINT_EVERY: u64 = 1000;

/// What the decision was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The action was started.
    Act,
    /// The action would have been started; dry run.
    DryRun,
    /// The action waits for an operator.
    AwaitingApproval,
    /// A trigger held but a guardrail (missing data, cooldown, rate limit, limits,
    /// an action in progress) kept the action from starting.
    Skip,
    /// Something Sextant saw and respects rather than acts on (a manual change of
    /// replicas, a replica in a crash loop).
    Observe,
}

/// How the action went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for approval.
    Pending,
    /// Under way.
    Running,
    /// Done.
    Succeeded,
    /// Failed (see `detail`).
    Failed,
    /// An operator rejected it.
    Rejected,
    /// Nobody approved it in time.
    Expired,
    /// Nothing to run (skip, observe, dry run).
    None,
}

/// What an action does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActionSpec {
    /// Change the replica count.
    Scale {
        /// Replicas before.
        from: u32,
        /// Replicas after.
        to: u32,
    },
    /// Rolling restart.
    Restart,
    /// Webhook call.
    Webhook {
        /// Where.
        url: String,
    },
    /// Command.
    Exec {
        /// Program and arguments.
        command: Vec<String>,
    },
    /// A rollout of a new command or environment.
    Rollout {
        /// Generation being rolled out.
        generation: String,
    },
    /// Taking a rollout's new replicas back.
    Rollback {
        /// Generation taken back.
        generation: String,
    },
}

impl ActionSpec {
    /// `scale`, `restart`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            ActionSpec::Scale { .. } => "scale",
            ActionSpec::Restart => "restart",
            ActionSpec::Webhook { .. } => "webhook",
            ActionSpec::Exec { .. } => "exec",
            ActionSpec::Rollout { .. } => "rollout",
            ActionSpec::Rollback { .. } => "rollback",
        }
    }
}

/// Burn rate and coverage of one window when the decision was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WindowEvidence {
    /// `5m`, `1h`, ...
    pub window: String,
    /// Burn rate, `null` without data.
    pub burn_rate: Option<f64>,
    /// Fraction of the window's slices with data.
    pub coverage: f64,
}

/// One condition of the tier: burn rates against the threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConditionEvidence {
    /// Long window.
    pub long_window: String,
    /// Short window.
    pub short_window: Option<String>,
    /// Threshold.
    pub threshold: f64,
    /// Long window's burn rate.
    pub long_burn_rate: Option<f64>,
    /// Short window's burn rate.
    pub short_burn_rate: Option<f64>,
    /// Whether it holds.
    pub firing: bool,
}

/// The SLO side of the evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SloEvidence {
    /// SLO id.
    pub slo: String,
    /// Tier the policy watches.
    pub tier: String,
    /// Tier state (`ok`, `pending`, `firing`, `unknown`).
    pub state: String,
    /// The tier's conditions.
    pub conditions: Vec<ConditionEvidence>,
    /// Every alert window (not the period).
    pub windows: Vec<WindowEvidence>,
    /// Error budget left in the period.
    pub budget_remaining: Option<f64>,
    /// The label groups most of the errors come from.
    pub attribution: Vec<ErrorShare>,
    /// The SLO evaluation the decision used (RFC 3339).
    pub evaluated_at: Option<String>,
}

/// A label group's share of the bad events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorShare {
    /// The group's labels.
    pub labels: BTreeMap<String, String>,
    /// Its fraction of the SLO's bad events.
    pub share: f64,
}

/// The alert side of the evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertEvidence {
    /// Labels of the matching alerts (the first few).
    pub alerts: Vec<BTreeMap<String, String>>,
    /// How many alerts matched.
    pub count: usize,
    /// When the earliest started (RFC 3339).
    pub since: Option<String>,
}

/// What the decision was based on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Evidence {
    /// SLO burn.
    pub slo: Option<SloEvidence>,
    /// Alerts.
    pub alert: Option<AlertEvidence>,
    /// Replicas the workload had (observed).
    pub replicas: Option<u32>,
}

impl Evidence {
    /// One line for people: `page tier burn 1h 16.2×, 5m 21.0×`.
    pub fn summary(&self) -> String {
        if let Some(s) = &self.slo {
            let cond = s.conditions.iter().find(|c| c.firing).or_else(|| s.conditions.first());
            let rate = |r: Option<f64>| r.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.1}×"));
            return match cond {
                Some(c) => {
                    let mut out = format!("{} tier burn {} {}", s.tier, c.long_window, rate(c.long_burn_rate));
                    if let Some(short) = &c.short_window {
                        out.push_str(&format!(", {short} {}", rate(c.short_burn_rate)));
                    }
                    out
                }
                None => format!("{} tier {}", s.tier, s.state),
            };
        }
        if let Some(a) = &self.alert {
            let name = a
                .alerts
                .first()
                .and_then(|l| l.get("alertname"))
                .cloned()
                .unwrap_or_default();
            return format!(
                "alert {name} firing ({} alert{})",
                a.count,
                if a.count == 1 { "" } else { "s" }
            );
        }
        String::new()
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    /// Id (UUID).
    pub id: String,
    /// When the decision was taken (epoch ms).
    pub time_ms: i64,
    /// The policy (or `rollout` for the supervisor's own decisions).
    pub policy: String,
    /// The workload.
    pub workload: String,
    /// The trigger as configured: `slo checkout-availability tier page`,
    /// `alert {alertname="HighErrors"}`, `config reload`.
    pub trigger: String,
    /// What the decision was based on.
    pub evidence: Evidence,
    /// The decision.
    pub decision: Decision,
    /// Why.
    pub reason: String,
    /// The action, if there is one.
    pub action: Option<ActionSpec>,
    /// How it went.
    pub status: Status,
    /// The action's outcome or error.
    pub detail: String,
    /// When it finished (epoch ms).
    pub finished_ms: Option<i64>,
    /// Who approved or rejected it.
    pub approved_by: Option<String>,
    /// Their comment.
    pub approval_comment: Option<String>,
    /// Dry run.
    pub dry_run: bool,
}

impl AuditRecord {
    /// The sentence attached to notifications: `scaled checkout from 2 to 4
    /// replicas at 12:03:10 because page tier burn 1h 16.2×, 5m 21.0×`.
    pub fn sentence(&self) -> String {
        let at = format_rfc3339(self.time_ms);
        let clock = at.get(11..19).unwrap_or(&at);
        let what = match (&self.action, self.decision) {
            (Some(a), Decision::Act) => describe(a, &self.workload, true),
            (Some(a), Decision::DryRun) => format!("would have {}", describe(a, &self.workload, true)),
            (Some(a), Decision::AwaitingApproval) => {
                format!("asks approval to {}", describe(a, &self.workload, false))
            }
            (_, Decision::Skip) => format!("did not act on {}: {}", self.workload, self.reason),
            _ => self.reason.clone(),
        };
        let status = match self.status {
            _ if self.decision == Decision::DryRun => " (dry run)".into(),
            Status::Failed => format!(" (failed: {})", self.detail),
            Status::Rejected => " (rejected)".into(),
            Status::Expired => " (approval expired)".into(),
            _ => String::new(),
        };
        let why = self.evidence.summary();
        if why.is_empty() || self.decision == Decision::Skip {
            format!("{what} at {clock}{status}")
        } else {
            format!("{what} at {clock} because {why}{status}")
        }
    }
}

fn describe(a: &ActionSpec, workload: &str, past: bool) -> String {
    match (a, past) {
        (ActionSpec::Scale { from, to }, true) => format!("scaled {workload} from {from} to {to} replicas"),
        (ActionSpec::Scale { from, to }, false) => format!("scale {workload} from {from} to {to} replicas"),
        (ActionSpec::Restart, true) => format!("restarted {workload}"),
        (ActionSpec::Restart, false) => format!("restart {workload}"),
        (ActionSpec::Webhook { url }, true) => format!("called {url} for {workload}"),
        (ActionSpec::Webhook { url }, false) => format!("call {url} for {workload}"),
        (ActionSpec::Exec { command }, true) => format!("ran {} for {workload}", command.join(" ")),
        (ActionSpec::Exec { command }, false) => format!("run {} for {workload}", command.join(" ")),
        (ActionSpec::Rollout { generation }, true) => format!("rolled out {workload} generation {generation}"),
        (ActionSpec::Rollout { generation }, false) => format!("roll out {workload} generation {generation}"),
        (ActionSpec::Rollback { generation }, true) => format!("rolled back {workload} generation {generation}"),
        (ActionSpec::Rollback { generation }, false) => format!("roll back {workload} generation {generation}"),
    }
}

/// A change to the log, as the write-ahead log holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Change {
    /// A new record.
    Record { v: u32, record: Box<AuditRecord> },
    /// A record's outcome or approval changed.
    Update {
        v: u32,
        id: String,
        status: Status,
        detail: String,
        finished_ms: Option<i64>,
        approved_by: Option<String>,
        approval_comment: Option<String>,
        /// Approval turns a parked decision into an action.
        decision: Decision,
    },
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    records: Vec<AuditRecord>,
}

/// Which records a query returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Only this policy.
    pub policy: Option<String>,
    /// Only this workload.
    pub workload: Option<String>,
    /// Only these decisions.
    pub decision: Option<Decision>,
    /// Only this status.
    pub status: Option<Status>,
    /// Only this action kind (`scale`, ...).
    pub kind: Option<String>,
    /// Decided at or after (epoch ms).
    pub since_ms: Option<i64>,
    /// Decided at or before (epoch ms).
    pub until_ms: Option<i64>,
    /// At most this many, newest first.
    pub limit: Option<usize>,
}

impl Filter {
    fn matches(&self, r: &AuditRecord) -> bool {
        self.policy.as_ref().is_none_or(|p| &r.policy == p)
            && self.workload.as_ref().is_none_or(|w| &r.workload == w)
            && self.decision.is_none_or(|d| r.decision == d)
            && self.status.is_none_or(|s| r.status == s)
            && self
                .kind
                .as_ref()
                .is_none_or(|k| r.action.as_ref().is_some_and(|a| a.kind() == k))
            && self.since_ms.is_none_or(|t| r.time_ms >= t)
            && self.until_ms.is_none_or(|t| r.time_ms <= t)
    }
}

/// The log: records in decision order, durable.
pub struct AuditLog {
    wal: Wal,
    records: VecDeque<AuditRecord>,
    since_checkpoint: u64,
}

impl AuditLog {
    /// Opens (or creates) the log in `dir`, replaying what it holds.
    pub fn open(dir: &Path) -> Result<Self, String> {
        let mut records: VecDeque<AuditRecord> = VecDeque::new();
        let mut error = None;
        let (wal, stats) = Wal::open(WalOptions::new(dir.join("wal")), |r| match r {
            Replayed::Checkpoint(b) => match serde_json::from_slice::<Snapshot>(b) {
                Ok(s) if s.version > FORMAT_VERSION => {
                    error = Some(format!(
                        "the audit log was written by a newer Sextant (format {}; this one reads up to {FORMAT_VERSION})",
                        s.version
                    ))
                }
                Ok(s) => records = s.records.into(),
                Err(e) => error = Some(format!("unreadable audit checkpoint: {e}")),
            },
            Replayed::Record(b) => match serde_json::from_slice::<Change>(b) {
                Ok(c) => apply(&mut records, c),
                Err(e) => tracing::warn!(error = %e, "skipping an unreadable audit record"),
            },
        })
        .map_err(|e| format!("{}: {e}", dir.display()))?;
        if let Some(e) = error {
            return Err(format!("{}: {e}", dir.display()));
        }
        tracing::info!(records = records.len(), replayed = stats.records, "audit log loaded");
        Ok(Self {
            wal,
            records,
            since_checkpoint: stats.records,
        })
    }

    /// Appends a record; the returned ticket resolves once it is durable.
    pub fn append(&mut self, record: AuditRecord) -> sextant_wal::Ticket {
        let change = Change::Record {
            v: FORMAT_VERSION,
            record: Box::new(record.clone()),
        };
        self.records.push_back(record);
        self.write(change)
    }

    /// Sets a record's outcome (and approval); `None` when there is no such record.
    pub fn update(&mut self, id: &str, f: impl FnOnce(&mut AuditRecord)) -> Option<(AuditRecord, sextant_wal::Ticket)> {
        let r = self.records.iter_mut().rev().find(|r| r.id == id)?;
        f(r);
        let r = r.clone();
        let change = Change::Update {
            v: FORMAT_VERSION,
            id: r.id.clone(),
            status: r.status,
            detail: r.detail.clone(),
            finished_ms: r.finished_ms,
            approved_by: r.approved_by.clone(),
            approval_comment: r.approval_comment.clone(),
            decision: r.decision,
        };
        Some((r, self.write(change)))
    }

    fn write(&mut self, change: Change) -> sextant_wal::Ticket {
        let bytes = serde_json::to_vec(&change).expect("audit records serialize");
        self.since_checkpoint += 1;
        if self.since_checkpoint >= CHECKPOINT_EVERY {
            // The record goes first, then a checkpoint of everything (it included).
            let ticket = self.wal.append(vec![bytes]);
            self.since_checkpoint = 0;
            let snap = Snapshot {
                version: FORMAT_VERSION,
                records: self.records.iter().cloned().collect(),
            };
            let _ = self.wal.checkpoint(serde_json::to_vec(&snap).expect("serializes"));
            return ticket;
        }
        self.wal.append(vec![bytes])
    }

    /// Drops records decided before `cutoff_ms` (at the next checkpoint on disk).
    pub fn retain_since(&mut self, cutoff_ms: i64) {
        while self.records.front().is_some_and(|r| r.time_ms < cutoff_ms) {
            self.records.pop_front();
        }
    }

    /// Writes a checkpoint now.
    pub fn checkpoint(&mut self) -> sextant_wal::Ticket {
        self.since_checkpoint = 0;
        let snap = Snapshot {
            version: FORMAT_VERSION,
            records: self.records.iter().cloned().collect(),
        };
        self.wal.checkpoint(serde_json::to_vec(&snap).expect("serializes"))
    }

    /// Records matching `filter`, newest first.
    pub fn query(&self, filter: &Filter) -> Vec<AuditRecord> {
        self.records
            .iter()
            .rev()
            .filter(|r| filter.matches(r))
            .take(filter.limit.unwrap_or(usize::MAX))
            .cloned()
            .collect()
    }

    /// One record.
    pub fn get(&self, id: &str) -> Option<&AuditRecord> {
        self.records.iter().rev().find(|r| r.id == id)
    }

    /// Every record, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &AuditRecord> {
        self.records.iter()
    }
}

fn apply(records: &mut VecDeque<AuditRecord>, change: Change) {
    match change {
        Change::Record { record, .. } => records.push_back(*record),
        Change::Update {
            id,
            status,
            detail,
            finished_ms,
            approved_by,
            approval_comment,
            decision,
            ..
        } => {
            if let Some(r) = records.iter_mut().rev().find(|r| r.id == id) {
                r.status = status;
                r.detail = detail;
                r.finished_ms = finished_ms;
                r.approved_by = approved_by;
                r.approval_comment = approval_comment;
                r.decision = decision;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, t: i64) -> AuditRecord {
        AuditRecord {
            id: id.into(),
            time_ms: t,
            policy: "scale".into(),
            workload: "checkout".into(),
            trigger: "slo checkout tier page".into(),
            evidence: Evidence {
                slo: Some(SloEvidence {
                    slo: "checkout".into(),
                    tier: "page".into(),
                    state: "firing".into(),
                    conditions: vec![ConditionEvidence {
                        long_window: "1h".into(),
                        short_window: Some("5m".into()),
                        threshold: 14.4,
                        long_burn_rate: Some(16.23),
                        short_burn_rate: Some(21.0),
                        firing: true,
                    }],
                    windows: vec![],
                    budget_remaining: Some(0.5),
                    attribution: vec![],
                    evaluated_at: None,
                }),
                alert: None,
                replicas: Some(2),
            },
            decision: Decision::Act,
            reason: "page tier firing".into(),
            action: Some(ActionSpec::Scale { from: 2, to: 4 }),
            status: Status::Running,
            detail: String::new(),
            finished_ms: None,
            approved_by: None,
            approval_comment: None,
            dry_run: false,
        }
    }

    #[test]
    fn sentence_names_action_time_and_burn() {
        let r = record("a", 1_764_936_190_000);
        assert_eq!(
            r.sentence(),
            format!(
                "scaled checkout from 2 to 4 replicas at {} because page tier burn 1h 16.2×, 5m 21.0×",
                &format_rfc3339(1_764_936_190_000)[11..19]
            )
        );
    }

    #[test]
    fn survives_reopen_with_updates_and_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = AuditLog::open(dir.path()).unwrap();
            log.append(record("a", 1)).durable_blocking().unwrap();
            log.append(record("b", 2)).durable_blocking().unwrap();
            let (_, t) = log
                .update("a", |r| {
                    r.status = Status::Succeeded;
                    r.finished_ms = Some(5);
                })
                .unwrap();
            t.durable_blocking().unwrap();
        }
        let mut log = AuditLog::open(dir.path()).unwrap();
        let all = log.query(&Filter::default());
        assert_eq!(all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(all[1].status, Status::Succeeded);
        log.checkpoint().durable_blocking().unwrap();
        log.append(record("c", 3)).durable_blocking().unwrap();
        drop(log);
        let log = AuditLog::open(dir.path()).unwrap();
        assert_eq!(log.query(&Filter::default()).len(), 3);
        let f = Filter {
            since_ms: Some(2),
            limit: Some(1),
            ..Default::default()
        };
        assert_eq!(log.query(&f)[0].id, "c");
        let f = Filter {
            status: Some(Status::Succeeded),
            kind: Some("scale".into()),
            ..Default::default()
        };
        assert_eq!(log.query(&f).len(), 1);
    }
}
