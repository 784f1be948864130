//! Silences with Alertmanager 0.25's rules: validation messages, pending / active /
//! expired states, when an update changes a silence in place and when it expires
//! it and creates a new one, expiry, and which alerts a silence mutes.

use crate::matchers::{MatchType, Matcher, matches_all};

/// A silence. Times are epoch milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    /// UUID.
    pub id: String,
    /// All must match for the silence to mute an alert.
    pub matchers: Vec<Matcher>,
    /// Start.
    pub starts_at: i64,
    /// End.
    pub ends_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// Author.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

/// A silence's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SilenceState {
    /// Starts in the future.
    Pending,
    /// Muting.
    Active,
    /// Over.
    Expired,
}

impl SilenceState {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

impl Silence {
    /// The state used for muting and updates (the end is still active).
    pub fn state(&self, now: i64) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now > self.ends_at {
            SilenceState::Expired
        } else {
            SilenceState::Active
        }
    }

    /// The state the API reports (the end is already expired).
    pub fn api_state(&self, now: i64) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    /// Whether it mutes `labels` (active silences only).
    pub fn mutes(&self, labels: &sextant_model::Labels, now: i64) -> bool {
        self.state(now) == SilenceState::Active && matches_all(&self.matchers, labels)
    }

    /// Alertmanager's `validateSilence`, with its messages.
    pub fn validate(&self) -> Result<(), String> {
        let fail = |m: String| Err(format!("silence invalid: {m}"));
        if self.id.is_empty() {
            return fail("ID missing".into());
        }
        if self.matchers.is_empty() {
            return fail("at least one matcher required".into());
        }
        for (i, m) in self.matchers.iter().enumerate() {
            if !sextant_model::is_valid_label_name(&m.name) {
                return fail(format!("invalid label matcher {i}: invalid label name {:?}", m.name));
            }
            if m.op.is_regex()
                && let Err(e) = regex::Regex::new(&m.value)
            {
                return fail(format!(
                    "invalid label matcher {i}: invalid regular expression {:?}: {e}",
                    m.value
                ));
            }
        }
        if self.matchers.iter().all(matches_empty) {
            return fail("at least one matcher must not match the empty string".into());
        }
        if self.starts_at == 0 {
            return fail("invalid zero start timestamp".into());
        }
        if self.ends_at == 0 {
            return fail("invalid zero end timestamp".into());
        }
        if self.ends_at < self.starts_at {
            return fail("end time must not be before start time".into());
        }
        if self.updated_at == 0 {
            return fail("invalid zero update timestamp".into());
        }
        Ok(())
    }
}

/// Whether a matcher matches the empty string, as Alertmanager decides it: an
/// equality with an empty value, or a regex (unanchored) that matches "".
fn matches_empty(m: &Matcher) -> bool {
    match m.op {
        MatchType::Equal => m.value.is_empty(),
        MatchType::Regexp => regex::Regex::new(&m.value).is_ok_and(|r| r.is_match("")),
        MatchType::NotEqual | MatchType::NotRegexp => false,
    }
}

/// Whether `new` may replace `prev` in place (same id) at `now`.
pub fn can_update(prev: &Silence, new: &Silence, now: i64) -> bool {
    if prev.matchers != new.matchers {
        return false;
    }
    match prev.state(now) {
        SilenceState::Active => new.starts_at.div_euclid(1000) == prev.starts_at.div_euclid(1000) && new.ends_at >= now,
        SilenceState::Pending => new.starts_at >= now,
        SilenceState::Expired => false,
    }
}

/// What setting a silence did.
#[derive(Debug, Clone, PartialEq)]
pub enum SetOutcome {
    /// The silence was created (or an update needed a new one) with this id; the
    /// silence it replaced, if any, was expired first.
    Created {
        /// The new silence.
        silence: Silence,
        /// The replaced silence, now expired.
        expired: Option<Silence>,
    },
    /// Updated in place.
    Updated(Silence),
}

/// The silences, with Alertmanager's `Set` and `Expire`.
#[derive(Debug, Clone, Default)]
pub struct Silences {
    items: Vec<Silence>,
}

impl Silences {
    /// All silences, expired ones included until they are garbage-collected.
    pub fn all(&self) -> &[Silence] {
        &self.items
    }

    /// One silence.
    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.items.iter().find(|s| s.id == id)
    }

    /// Stores a silence as it is (replay of the durable log).
    pub fn put(&mut self, s: Silence) {
        match self.items.iter_mut().find(|x| x.id == s.id) {
            Some(x) => *x = s,
            None => self.items.push(s),
        }
    }

    /// Creates or updates a silence at `now`; `new_id` makes ids for new silences.
    /// Errors: `silence not found` for an unknown id, or a validation message.
    pub fn set(&mut self, mut sil: Silence, now: i64, new_id: impl FnOnce() -> String) -> Result<SetOutcome, String> {
        let mut expired = None;
        if !sil.id.is_empty() {
            let Some(prev) = self.get(&sil.id).cloned() else {
                return Err("silence not found".into());
            };
            if can_update(&prev, &sil, now) {
                sil.updated_at = now;
                sil.validate()?;
                self.put(sil.clone());
                return Ok(SetOutcome::Updated(sil));
            }
            if prev.state(now) != SilenceState::Expired {
                expired = Some(self.expire_at(&prev.id, now)?);
            }
        }
        sil.id = new_id();
        if sil.starts_at < now {
            sil.starts_at = now;
        }
        sil.updated_at = now;
        sil.validate()?;
        self.items.push(sil.clone());
        Ok(SetOutcome::Created { silence: sil, expired })
    }

    /// Expires a silence at `now` (an expired one stays as it is).
    pub fn expire_at(&mut self, id: &str, now: i64) -> Result<Silence, String> {
        let s = self
            .items
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or_else(|| "silence not found".to_owned())?;
        match s.state(now) {
            SilenceState::Expired => {}
            SilenceState::Active => {
                s.ends_at = now;
                s.updated_at = now;
            }
            SilenceState::Pending => {
                s.starts_at = now;
                s.ends_at = now;
                s.updated_at = now;
            }
        }
        Ok(s.clone())
    }

    /// Ids of the active silences that mute `labels`, sorted.
    pub fn muting(&self, labels: &sextant_model::Labels, now: i64) -> Vec<String> {
        let mut ids: Vec<String> = self
            .items
            .iter()
            .filter(|s| s.mutes(labels, now))
            .map(|s| s.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Drops silences that ended more than `retention_ms` ago; returns their ids.
    pub fn gc(&mut self, now: i64, retention_ms: i64) -> Vec<String> {
        let mut gone = Vec::new();
        self.items.retain(|s| {
            let keep = s.ends_at + retention_ms > now;
            if !keep {
                gone.push(s.id.clone());
            }
            keep
        });
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sextant_model::Labels;

    const NOW: i64 = 1_700_000_000_000;
    const H: i64 = 3_600_000;
    const M: i64 = 60_000;

    fn m(op: MatchType, n: &str, v: &str) -> Matcher {
        Matcher::new(op, n, v).unwrap()
    }

    fn sil(start: i64, end: i64) -> Silence {
        Silence {
            id: "id".into(),
            matchers: vec![m(MatchType::Equal, "a", "b")],
            starts_at: start,
            ends_at: end,
            updated_at: NOW,
            created_by: "me".into(),
            comment: "c".into(),
        }
    }

    /// `silence/silence_test.go`, `TestValidateSilence`.
    #[test]
    fn validation() {
        assert_eq!(sil(NOW, NOW).validate(), Ok(()));
        let mut s = sil(NOW, NOW);
        s.id.clear();
        assert_eq!(s.validate().unwrap_err(), "silence invalid: ID missing");
        let mut s = sil(NOW, NOW);
        s.matchers.clear();
        assert_eq!(
            s.validate().unwrap_err(),
            "silence invalid: at least one matcher required"
        );
        let mut s = sil(NOW, NOW);
        s.matchers.push(Matcher::new(MatchType::Equal, "00", "b").unwrap());
        assert!(
            s.validate()
                .unwrap_err()
                .contains("invalid label matcher 1: invalid label name")
        );
        let mut s = sil(NOW, NOW);
        s.matchers = vec![m(MatchType::Equal, "a", ""), m(MatchType::Regexp, "b", ".*")];
        assert_eq!(
            s.validate().unwrap_err(),
            "silence invalid: at least one matcher must not match the empty string"
        );
        assert_eq!(
            sil(NOW, NOW - 1000).validate().unwrap_err(),
            "silence invalid: end time must not be before start time"
        );
        assert_eq!(
            sil(0, NOW).validate().unwrap_err(),
            "silence invalid: invalid zero start timestamp"
        );
        assert_eq!(
            sil(NOW, 0).validate().unwrap_err(),
            "silence invalid: invalid zero end timestamp"
        );
        let mut s = sil(NOW, NOW);
        s.updated_at = 0;
        assert_eq!(
            s.validate().unwrap_err(),
            "silence invalid: invalid zero update timestamp"
        );
    }

    /// `TestSilenceCanUpdate`.
    #[test]
    fn can_update_cases() {
        let expired = sil(NOW - H, NOW - 1000);
        assert!(!can_update(&expired, &sil(NOW - H, NOW + H), NOW));
        let pending = sil(NOW + H, NOW + 2 * H);
        assert!(!can_update(&pending, &sil(NOW - M, NOW + H), NOW));
        assert!(can_update(&pending, &sil(NOW + M, NOW + M), NOW));
        assert!(can_update(&pending, &sil(NOW, NOW + H), NOW));
        let active = sil(NOW - H, NOW + 2 * H);
        assert!(!can_update(&active, &sil(NOW - M, NOW + H), NOW));
        assert!(!can_update(&active, &sil(NOW - H, NOW - 1000), NOW));
        assert!(can_update(&active, &sil(NOW - H, NOW), NOW));
        assert!(can_update(&active, &sil(NOW - H, NOW + 3 * H), NOW));
    }

    #[test]
    fn set_creates_updates_in_place_or_replaces_and_expire_ends_it() {
        let mut ss = Silences::default();
        let mut n = 0;
        let mut id = || {
            n += 1;
            format!("s{n}")
        };
        let mut new = sil(NOW - H, NOW + H);
        new.id.clear();
        let SetOutcome::Created {
            silence: created,
            expired,
        } = ss.set(new, NOW, &mut id).unwrap()
        else {
            panic!("created");
        };
        assert_eq!(expired, None);
        assert_eq!(created.starts_at, NOW, "a start in the past is now");
        // Extending an active silence keeps its id.
        let mut ext = created.clone();
        ext.ends_at = NOW + 3 * H;
        assert!(matches!(ss.set(ext, NOW + M, &mut id).unwrap(), SetOutcome::Updated(s) if s.id == "s1"));
        // Changing its matchers expires it and makes a new one.
        let mut changed = ss.get("s1").unwrap().clone();
        changed.matchers = vec![m(MatchType::Equal, "c", "d")];
        let SetOutcome::Created { silence, expired } = ss.set(changed, NOW + 2 * M, &mut id).unwrap() else {
            panic!("replaced");
        };
        assert_eq!(silence.id, "s2");
        assert_eq!(expired.unwrap().ends_at, NOW + 2 * M);
        assert_eq!(ss.get("s1").unwrap().api_state(NOW + 2 * M), SilenceState::Expired);
        // Unknown ids are refused.
        let mut unknown = sil(NOW, NOW + H);
        unknown.id = "nope".into();
        assert_eq!(ss.set(unknown, NOW, &mut id).unwrap_err(), "silence not found");
        // Expiring a pending silence sets both ends to now.
        let mut p = sil(NOW + H, NOW + 2 * H);
        p.id.clear();
        let SetOutcome::Created { silence: p, .. } = ss.set(p, NOW, &mut id).unwrap() else {
            panic!()
        };
        let e = ss.expire_at(&p.id, NOW + M).unwrap();
        assert_eq!((e.starts_at, e.ends_at), (NOW + M, NOW + M));
        assert!(ss.expire_at("nope", NOW).is_err());
    }

    /// `TestQMatches` and `TestSilencer`.
    #[test]
    fn muting() {
        let labels = Labels::from_pairs([
            ("job", "test"),
            ("instance", "web-1"),
            ("path", "/user/profile"),
            ("method", "GET"),
        ])
        .unwrap();
        let with = |ms: Vec<Matcher>| Silence {
            matchers: ms,
            ..sil(NOW - H, NOW + H)
        };
        use MatchType::*;
        assert!(with(vec![m(Equal, "job", "test")]).mutes(&labels, NOW));
        assert!(!with(vec![m(NotEqual, "job", "test")]).mutes(&labels, NOW));
        assert!(!with(vec![m(Equal, "job", "test"), m(Equal, "method", "POST")]).mutes(&labels, NOW));
        assert!(with(vec![m(Equal, "job", "test"), m(NotEqual, "method", "POST")]).mutes(&labels, NOW));
        assert!(with(vec![m(Regexp, "path", "/user/.+")]).mutes(&labels, NOW));
        assert!(!with(vec![m(NotRegexp, "path", "/user/.+")]).mutes(&labels, NOW));
        assert!(!with(vec![m(Regexp, "path", "/user/.+"), m(Regexp, "path", "/nothing/.+")]).mutes(&labels, NOW));
        // Only while active; the end itself still mutes.
        let s = with(vec![m(Equal, "job", "test")]);
        assert!(!s.mutes(&labels, NOW - 2 * H));
        assert!(s.mutes(&labels, NOW + H));
        assert!(!s.mutes(&labels, NOW + H + 1));
        assert_eq!(s.api_state(NOW + H), SilenceState::Expired);
    }
}
