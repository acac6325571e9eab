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

impl SyncWindow {
    /// The next delta window, no longer than `span` when a span is set: a sub-window whose
    /// completion moves the cursor, so that a backlog converges even when page tokens do not
    /// live from one pass to the next.
    pub fn plan_within(
        cursor: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        rules: &WindowRules,
        span: Option<Duration>,
    ) -> Option<SyncWindow> {
        let mut window = SyncWindow::plan(cursor, now, rules)?;
        if let Some(span) = span
            && window.before - window.after > span
        {
            window.before = window.after + span;
        }
        Some(window)
    }

    pub fn length(&self) -> Duration {
        self.before - self.after
    }
}

/// The shortest sub-window: it reaches a minute past the overlap, so that each completed
/// sub-window moves the next one's start forward.
pub fn min_span(rules: &WindowRules) -> Duration {
    rules.overlap + Duration::minutes(1)
}

/// The span to try after `window` could not be completed (its page token died between
/// passes): half of it, but not below [`min_span`].
pub fn narrower_span(window: &SyncWindow, rules: &WindowRules) -> Duration {
    (window.length() / 2).max(min_span(rules))
}

/// The span to try after a sub-window of `span` completed: twice as long; `None` (whole
/// windows) once it exceeds the initial lookback.
pub fn wider_span(span: Duration, rules: &WindowRules) -> Option<Duration> {
    let wider = span * 2;
    (wider <= rules.initial_lookback).then_some(wider)
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
    fn a_span_cuts_the_window_into_a_sub_window_from_the_same_start() {
        let r = WindowRules::default();
        let now = at(12, 0, 0);
        let whole = SyncWindow::plan(None, now, &r).unwrap();
        let sub = SyncWindow::plan_within(None, now, &r, Some(Duration::days(2))).unwrap();
        assert_eq!(sub.after, whole.after);
        assert_eq!(sub.length(), Duration::days(2));
        // A span longer than the window changes nothing.
        let cursor = Some(at(11, 0, 0));
        assert_eq!(
            SyncWindow::plan_within(cursor, now, &r, Some(Duration::days(2))),
            SyncWindow::plan(cursor, now, &r)
        );
    }

    #[test]
    fn spans_halve_down_to_past_the_overlap_and_double_back_to_whole_windows() {
        let r = WindowRules::default();
        let w = SyncWindow {
            after: at(0, 0, 0),
            before: at(8, 0, 0),
        };
        assert_eq!(narrower_span(&w, &r), Duration::hours(4));
        let tiny = SyncWindow {
            after: at(0, 0, 0),
            before: at(0, 12, 0),
        };
        assert_eq!(narrower_span(&tiny, &r), Duration::minutes(11));
        assert!(
            min_span(&r) > r.overlap,
            "a sub-window always moves the cursor"
        );
        assert_eq!(wider_span(Duration::days(4), &r), Some(Duration::days(8)));
        assert_eq!(wider_span(Duration::days(16), &r), None);
    }

    #[test]
    fn amazon_time_is_utc_z_whole_seconds() {
        assert_eq!(
            amazon_time(at(1, 2, 3) + Duration::milliseconds(456)),
            "2026-11-28T01:02:03Z"
        );
    }
}
