//! The time window of a pass.
//!
//! A pass asks Amazon for orders updated in `[after, before]`:
//! - `before` is now minus the upper lag (2 minutes, as Amazon rejects later values and indexes
//!   updates that late anyway, plus 15 s for clock skew);
//! - `after` is the stored cursor minus the overlap, because Amazon indexes some updates later
//!   than their `LastUpdateDate`; on a tenant's first pass it is now minus the initial lookback.
//!
//! When the window is done, the cursor becomes `before` (never earlier than it was).

use chrono::{DateTime, Duration, SubsecRound, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncWindow {
    pub after: DateTime<Utc>,
    pub before: DateTime<Utc>,
}

/// The settings that shape a delta window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowRules {
    /// How far before the cursor a window starts, because Amazon indexes updates late.
    pub overlap: Duration,
    /// Where a tenant's first pass starts, back from now.
    pub initial_lookback: Duration,
    /// How far behind now a window ends. Amazon rejects `LastUpdatedBefore` later than now - 2 min
    /// by its own clock; 15 s more absorb a host clock running a little ahead.
    pub upper_lag: Duration,
}

impl Default for WindowRules {
    fn default() -> Self {
        WindowRules {
            overlap: Duration::minutes(10),
            initial_lookback: Duration::days(30),
            upper_lag: Duration::seconds(135),
        }
    }
}

impl SyncWindow {
    /// The next delta window, or `None` when the cursor is already at (or, after a clock jump,
    /// past) the newest time Amazon will answer for.
    pub fn plan(
        cursor: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        rules: &WindowRules,
    ) -> Option<SyncWindow> {
        let before = (now - rules.upper_lag).trunc_subsecs(0);
        let after = match cursor {
            Some(cursor) => cursor - rules.overlap,
            None => now - rules.initial_lookback,
        }
        .trunc_subsecs(0);
        (after < before).then_some(SyncWindow { after, before })
    }
}

/// Amazon's preferred form: UTC with `Z`, whole seconds (an unencoded `+hh:mm` offset is a known
/// cause of 400s).
pub fn amazon_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, h, m, s).unwrap()
    }

    #[test]
    fn first_pass_starts_at_the_initial_lookback_and_ends_two_minutes_ago() {
        let r = WindowRules::default();
        let now = at(12, 0, 0) + Duration::milliseconds(750);
        let w = SyncWindow::plan(None, now, &r).unwrap();
        assert_eq!(w.before, at(11, 57, 45));
        assert_eq!(w.after, at(12, 0, 0) - Duration::days(30));
    }

    #[test]
    fn later_passes_overlap_the_cursor() {
        let r = WindowRules::default();
        let w = SyncWindow::plan(Some(at(11, 0, 0)), at(12, 0, 0), &r).unwrap();
        assert_eq!(w.after, at(10, 50, 0));
        assert_eq!(w.before, at(11, 57, 45));
    }

    #[test]
    fn no_window_when_the_cursor_is_ahead_of_what_amazon_answers() {
        let r = WindowRules {
            overlap: Duration::zero(),
            ..WindowRules::default()
        };
        assert_eq!(
            SyncWindow::plan(Some(at(11, 59, 0)), at(12, 0, 0), &r),
            None
        );
    }

    #[test]
    fn amazon_time_is_utc_z_whole_seconds() {
        assert_eq!(
            amazon_time(at(1, 2, 3) + Duration::milliseconds(456)),
            "2026-11-28T01:02:03Z"
        );
    }
}
