//! Report windows: the range an import covers, and its split into report windows of at most
//! 30 days. Pure; the times are whole seconds, so that the same command run again plans the
//! same windows (and finds the jobs it recorded).

use chrono::{DateTime, SubsecRound, Utc};

use crate::config::ReportSettings;
use crate::error::{Error, Result};
use crate::model::{SyncWindow, amazon_time};

/// `range` cut into windows of at most `max`, from its start: every window but the last is
/// exactly `max` long, so a range that grows at its end keeps its earlier windows.
pub fn windows(range: SyncWindow, max: chrono::Duration) -> Vec<SyncWindow> {
    let max = max.max(chrono::Duration::seconds(1));
    let mut out = Vec::new();
    let mut after = range.after;
    while after < range.before {
        let before = (after + max).min(range.before);
        out.push(SyncWindow { after, before });
        after = before;
    }
    out
}

/// The range of `backfill --via reports`: `until` defaults to, and may not be later than, now
/// minus the reports' lag; `since` may not be older than the history Amazon serves.
pub fn backfill_range(
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    settings: &ReportSettings,
) -> Result<SyncWindow> {
    let latest = (now - settings.end_lag).trunc_subsecs(0);
    let oldest = (now - settings.max_history).trunc_subsecs(0);
    let before = until.map(|u| u.trunc_subsecs(0)).unwrap_or(latest);
    let after = since.trunc_subsecs(0);
    if before > latest {
        return Err(Error::Config(format!(
            "--until {} is too recent for reports (they can be 30 minutes late; the latest is {}, now minus {} minutes): use backfill without --via reports for the last hour",
            amazon_time(before),
            amazon_time(latest),
            settings.end_lag.num_minutes()
        )));
    }
    if after < oldest {
        return Err(Error::Config(format!(
            "--since {} is older than Amazon's order reports reach (two years: {})",
            amazon_time(after),
            amazon_time(oldest)
        )));
    }
    if after >= before {
        return Err(Error::Config(format!(
            "--since {} must be before {}",
            amazon_time(after),
            amazon_time(before)
        )));
    }
    Ok(SyncWindow { after, before })
}

/// The range of a tenant's first sync through reports: the initial lookback, up to now minus
/// the reports' lag (the Orders API covers the rest); `None` when that leaves nothing.
pub fn initial_range(
    now: DateTime<Utc>,
    lookback: chrono::Duration,
    settings: &ReportSettings,
) -> Option<SyncWindow> {
    let before = (now - settings.end_lag).trunc_subsecs(0);
    let after = (now - lookback.min(settings.max_history)).trunc_subsecs(0);
    (after < before).then_some(SyncWindow { after, before })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn at(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, d, 0, 0, 0).unwrap()
    }

    #[test]
    fn a_range_is_cut_into_full_windows_from_its_start() {
        let range = SyncWindow {
            after: at(1),
            before: at(1) + Duration::days(65),
        };
        let w = windows(range, Duration::days(30));
        assert_eq!(w.len(), 3);
        assert_eq!(w[0].after, range.after);
        assert_eq!(w[0].before, at(31));
        assert_eq!(w[1].after, at(31));
        assert_eq!(w[2].before, range.before);
        assert!(w.iter().all(|w| w.before - w.after <= Duration::days(30)));
        // The same start, a later end: the earlier windows are the same.
        let longer = windows(
            SyncWindow {
                before: range.before + Duration::hours(5),
                ..range
            },
            Duration::days(30),
        );
        assert_eq!(longer[..2], w[..2]);
        // Two years: 25 windows.
        let two_years = SyncWindow {
            after: at(1),
            before: at(1) + Duration::days(730),
        };
        assert_eq!(windows(two_years, Duration::days(30)).len(), 25);
        assert!(
            windows(
                SyncWindow {
                    after: at(2),
                    before: at(2)
                },
                Duration::days(30)
            )
            .is_empty()
        );
    }

    #[test]
    fn backfill_ranges_end_an_hour_ago_at_the_latest_and_reach_back_two_years() {
        let s = ReportSettings::default();
        let now = at(20) + Duration::milliseconds(400);
        let r = backfill_range(at(1), None, now, &s).unwrap();
        assert_eq!(r.before, at(20) - Duration::hours(1));
        assert_eq!(r.after, at(1));
        let e = backfill_range(at(1), Some(at(20) - Duration::minutes(30)), now, &s)
            .unwrap_err()
            .to_string();
        assert!(e.contains("too recent"), "{e}");
        let e = backfill_range(at(20) - Duration::days(800), None, now, &s)
            .unwrap_err()
            .to_string();
        assert!(e.contains("two years"), "{e}");
        let e = backfill_range(at(10), Some(at(5)), now, &s)
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be before"), "{e}");
    }

    #[test]
    fn the_initial_range_is_the_lookback_minus_the_last_hour() {
        let s = ReportSettings::default();
        let r = initial_range(at(20), Duration::days(30), &s).unwrap();
        assert_eq!(r.after, at(20) - Duration::days(30));
        assert_eq!(r.before, at(20) - Duration::hours(1));
        assert_eq!(initial_range(at(20), Duration::minutes(30), &s), None);
    }
}
