//! The recorded side of a pass, as the store hands it back: run outcomes, the sync state and its
//! resume point, what is stored of an order, and the rate buckets saved between processes.

use chrono::{DateTime, Utc};

use super::order::OrderStatus;
use super::pass::PassReport;
use super::tenant::OrdersApi;
use super::window::SyncWindow;

/// How a recorded run ended (`sync_runs.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RunOutcome {
    /// Not finished: in progress, or its process died (the next pass marks it abandoned).
    #[default]
    Running,
    Success,
    /// Cut short by its time budget: what it committed stays, the next pass continues.
    Partial,
    Failed,
    /// Its process died without closing it (found by the next pass, which holds the lock).
    Abandoned,
    /// The tenant could not start in this run (deadline reached, no database connection).
    Skipped,
}

impl RunOutcome {
    pub const ALL: [RunOutcome; 6] = [
        RunOutcome::Running,
        RunOutcome::Success,
        RunOutcome::Partial,
        RunOutcome::Failed,
        RunOutcome::Abandoned,
        RunOutcome::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Running => "running",
            RunOutcome::Success => "success",
            RunOutcome::Partial => "partial",
            RunOutcome::Failed => "failed",
            RunOutcome::Abandoned => "abandoned",
            RunOutcome::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored name that is not one of ours: the database holds something this build cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?} in the database")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
}

impl TryFrom<String> for RunOutcome {
    type Error = UnknownName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str() == value)
            .ok_or(UnknownName {
                what: "run outcome",
                value,
            })
    }
}

impl TryFrom<String> for OrderStatus {
    type Error = UnknownName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        OrderStatus::from_v2026(&value).ok_or(UnknownName {
            what: "order status",
            value,
        })
    }
}

impl TryFrom<String> for OrdersApi {
    type Error = UnknownName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        OrdersApi::from_name(&value).ok_or(UnknownName {
            what: "orders API",
            value,
        })
    }
}

/// What the store knows of an order before a page is applied.
#[derive(Debug, Clone)]
pub struct StoredOrder {
    pub last_update_date: DateTime<Utc>,
    pub status: OrderStatus,
    pub raw: serde_json::Value,
    pub items_stale: bool,
}

/// An interrupted window: where the next delta pass continues.
#[derive(Debug, Clone)]
pub struct ResumePoint {
    pub api: OrdersApi,
    pub window: SyncWindow,
    pub token: String,
    pub saved_at: DateTime<Utc>,
}

/// What the engine reads of a tenant's sync state before a pass.
#[derive(Debug, Clone, Default)]
pub struct SyncState {
    pub cursor: Option<DateTime<Utc>>,
    pub resume: Option<ResumePoint>,
    /// The length of delta sub-window known to complete within a pass; `None`: the whole
    /// window at once.
    pub window_span: Option<chrono::Duration>,
    /// When the tenant's last sweep (a deeper re-read) completed.
    pub last_sweep_at: Option<DateTime<Utc>>,
    /// Orders the last pass estimated were left, when it stopped before catching up.
    pub backlog_orders: Option<i64>,
}

/// A client-side rate bucket as saved between processes, keyed by Amazon's operation name so
/// that the store need not know the client's types.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketState {
    pub operation: String,
    pub rate: f64,
    pub burst: f64,
    pub tokens: f64,
    pub saved_at: DateTime<Utc>,
}

/// Requests of one SP-API operation, and how many were answered 429.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationCount {
    /// Amazon's operation name (`searchOrders`, ...).
    pub operation: &'static str,
    pub calls: u64,
    pub throttled: u64,
}

/// Counts not yet added to a tenant's cumulative counters (`sync_counters`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CounterDeltas {
    pub orders: u64,
    pub items: u64,
    pub calls: Vec<OperationCount>,
}

impl CounterDeltas {
    pub fn is_empty(&self) -> bool {
        self.orders == 0
            && self.items == 0
            && self.calls.iter().all(|c| c.calls == 0 && c.throttled == 0)
    }
}

/// A run's numbers as each commit of the pass records them, in the commit's transaction, so
/// that `status` shows real numbers during a pass and a run stopped at any point keeps the
/// counts of what it committed.
#[derive(Debug, Clone)]
pub struct RunTally {
    pub run_id: i64,
    /// The run's totals so far (absolute: a commit overwrites the previous one's).
    pub report: PassReport,
    /// Order pages committed so far.
    pub pages: u64,
    /// What happened since the last recorded commit, for the cumulative counters.
    pub unrecorded: CounterDeltas,
    /// The client's rate buckets as they stand, saved with the commit.
    pub buckets: Vec<BucketState>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_round_trip_and_unknown_names_are_errors() {
        for o in RunOutcome::ALL {
            assert_eq!(RunOutcome::try_from(o.as_str().to_owned()), Ok(o));
        }
        let err = RunOutcome::try_from("exploded".to_owned()).unwrap_err();
        assert!(err.to_string().contains("exploded"));
    }
}
