//! Multi-window, multi-burn-rate alert windows: Sloth's `AlertWindows` catalogs, keyed
//! by SLO period. The built-in ones are the SRE Workbook's recommended parameters for a
//! 30-day and a 28-day period (page: 2% of the budget in 1h with a 5m short window, 5%
//! in 6h with 30m; ticket: 10% in 1d with 2h, 10% in 3d with 6h), as Sloth ships them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use sextant_model::time::PromDuration;

/// One alert's pair of windows and the share of the budget it allows to burn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowPair {
    /// Percentage of the period's error budget the long window may consume.
    pub error_budget_percent: f64,
    /// The short window (the alert resets quickly once the burn stops).
    pub short: Duration,
    /// The long window.
    pub long: Duration,
}

impl WindowPair {
    /// The burn-rate factor, computed as Sloth computes it (in this order, in f64):
    /// `errorBudgetPercent * periodHours / 100 / longWindowHours`.
    pub fn factor(&self, period: Duration) -> f64 {
        self.error_budget_percent * hours(period) / 100.0 / hours(self.long)
    }
}

fn hours(d: Duration) -> f64 {
    d.as_secs_f64() / 3600.0
}

/// The four alerts of one period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertWindows {
    /// The SLO period these are for.
    pub period: Duration,
    /// Page, fast burn.
    pub page_quick: WindowPair,
    /// Page, slower burn.
    pub page_slow: WindowPair,
    /// Ticket, fast burn.
    pub ticket_quick: WindowPair,
    /// Ticket, slow burn.
    pub ticket_slow: WindowPair,
}

impl AlertWindows {
    /// The distinct short and long windows of the four alerts, ascending: the windows
    /// Sloth records an error ratio for (before the period).
    pub fn sli_windows(&self) -> Vec<Duration> {
        let mut w: Vec<Duration> = [self.page_quick, self.page_slow, self.ticket_quick, self.ticket_slow]
            .iter()
            .flat_map(|p| [p.short, p.long])
            .collect();
        w.sort();
        w.dedup();
        w
    }
}

const fn pair(pct: f64, short_min: u64, long_min: u64) -> WindowPair {
    WindowPair {
        error_budget_percent: pct,
        short: Duration::from_secs(short_min * 60),
        long: Duration::from_secs(long_min * 60),
    }
}

const DAY: u64 = 24 * 60;

/// The SRE Workbook's windows for a period of `days` days.
const fn google(days: u64) -> AlertWindows {
    AlertWindows {
        period: Duration::from_secs(days * 86400),
        page_quick: pair(2.0, 5, 60),
        page_slow: pair(5.0, 30, 6 * 60),
        ticket_quick: pair(10.0, 2 * 60, DAY),
        ticket_slow: pair(10.0, 6 * 60, 3 * DAY),
    }
}

/// A set of catalogs by period.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowCatalog(BTreeMap<Duration, AlertWindows>);

impl Default for WindowCatalog {
    /// Sloth's built-in catalog: 30 and 28 days.
    fn default() -> Self {
        Self([google(30), google(28)].into_iter().map(|w| (w.period, w)).collect())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CatalogFile {
    api_version: String,
    kind: String,
    spec: CatalogSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CatalogSpec {
    slo_period: PromDuration,
    page: Severity,
    ticket: Severity,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Severity {
    quick: PairDoc,
    slow: PairDoc,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PairDoc {
    error_budget_percent: f64,
    short_window: PromDuration,
    long_window: PromDuration,
}

impl WindowCatalog {
    /// The windows for `period`, or Sloth's error.
    pub fn get(&self, period: Duration) -> Result<&AlertWindows, String> {
        self.0.get(&period).ok_or_else(|| {
            format!(
                "the {} SLO period time window is not supported",
                crate::gofmt::go_duration(period)
            )
        })
    }

    /// Reads every `.yaml`/`.yml` file of `dir` as Sloth's `--slo-period-windows-path`
    /// does: they replace the built-in catalog; two files for one period must agree.
    pub fn load_dir(dir: &Path) -> Result<Self, String> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        names.sort();
        let mut out = BTreeMap::new();
        for p in names {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let w = Self::parse(&text).map_err(|e| format!("{}: {e}", p.display()))?;
            if let Some(old) = out.insert(w.period, w)
                && old != w
            {
                return Err(format!(
                    "{}: a different window catalog for period {} exists already",
                    p.display(),
                    crate::gofmt::prom_duration(w.period)
                ));
            }
        }
        Ok(Self(out))
    }

    fn parse(text: &str) -> Result<AlertWindows, String> {
        let f: CatalogFile = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        if f.api_version != "sloth.slok.dev/v1" || f.kind != "AlertWindows" {
            return Err("not an AlertWindows (apiVersion sloth.slok.dev/v1) document".into());
        }
        let pair = |p: &PairDoc, what: &str| -> Result<WindowPair, String> {
            if p.error_budget_percent <= 0.0 || p.short_window.0.is_zero() || p.long_window.0.is_zero() {
                return Err(format!("{what}: error budget percent and windows must be non-zero"));
            }
            Ok(WindowPair {
                error_budget_percent: p.error_budget_percent,
                short: p.short_window.0,
                long: p.long_window.0,
            })
        };
        let s = &f.spec;
        if s.slo_period.0.is_zero() {
            return Err("sloPeriod must be non-zero".into());
        }
        Ok(AlertWindows {
            period: s.slo_period.0,
            page_quick: pair(&s.page.quick, "page quick")?,
            page_slow: pair(&s.page.slow, "page slow")?,
            ticket_quick: pair(&s.ticket.quick, "ticket quick")?,
            ticket_slow: pair(&s.ticket.slow, "ticket slow")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_as_sloth_computes_them() {
        let c = WindowCatalog::default();
        let w30 = c.get(Duration::from_secs(30 * 86400)).unwrap();
        let p = w30.period;
        assert_eq!(
            [w30.page_quick, w30.page_slow, w30.ticket_quick, w30.ticket_slow].map(|x| x.factor(p)),
            [14.4, 6.0, 3.0, 1.0]
        );
        let w28 = c.get(Duration::from_secs(28 * 86400)).unwrap();
        let p = w28.period;
        assert_eq!(
            [w28.page_quick, w28.page_slow, w28.ticket_quick, w28.ticket_slow]
                .map(|x| crate::gofmt::go_float(x.factor(p))),
            [
                "13.44",
                "5.6000000000000005",
                "2.8000000000000003",
                "0.9333333333333333"
            ]
        );
        assert_eq!(w30.sli_windows().len(), 7);
        let e = c.get(Duration::from_secs(7 * 86400)).unwrap_err();
        assert_eq!(e, "the 168h0m0s SLO period time window is not supported");
    }
}
