//! [`ReportSettings`]: how report imports behave. Defaults follow REPORTS.md; tests and
//! benchmarks shrink the times.

use std::time::Duration;

/// How report imports behave; one value for every tenant of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSettings {
    /// The longest window of one report. Amazon refuses order reports over 30 days (flat
    /// variant; longer ranges gave empty reports).
    pub window: chrono::Duration,
    /// How far behind now a report window ends: "order reports can have up to a 30-minute
    /// delay", so an hour, and the Orders API delta covers the recent edge.
    pub end_lag: chrono::Duration,
    /// How far back an import may start: Amazon serves orders less than two years old, and a
    /// window is requested some time after it is planned, so a day less.
    pub max_history: chrono::Duration,
    /// A report neither done nor failed this long after it was requested is requested again
    /// (incidents of reports stuck for hours or days are reported).
    pub stuck_after: chrono::Duration,
    /// Failures of one window (FATAL, stuck, an import that broke off) before it is given up.
    pub max_failures: u32,
    /// Reports of a tenant requested and not done at once: Amazon processes a seller's reports
    /// one after another, so queuing more buys nothing, and it asks not to flood it.
    pub max_outstanding: usize,
    /// Orders written per transaction during an import.
    pub batch_orders: usize,
    /// With `--wait`, the pause between two looks at Amazon.
    pub poll_interval: Duration,
    /// Largest document downloaded (compressed) and once decompressed.
    pub max_download_bytes: u64,
    pub max_document_bytes: u64,
    /// Longest silence of a download before it counts as broken.
    pub download_idle_timeout: Duration,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings {
            window: chrono::Duration::days(30),
            end_lag: chrono::Duration::hours(1),
            max_history: chrono::Duration::days(729),
            stuck_after: chrono::Duration::hours(3),
            max_failures: 3,
            max_outstanding: 10,
            batch_orders: 2_000,
            poll_interval: Duration::from_secs(30),
            max_download_bytes: 2 << 30,
            max_document_bytes: 32 << 30,
            download_idle_timeout: Duration::from_secs(60),
        }
    }
}
