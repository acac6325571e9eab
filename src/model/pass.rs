//! A pass: what it is asked to do ([`PassKind`]) and what it did ([`PassReport`]).

use super::run::RunOutcome;
use super::window::SyncWindow;

/// Which pass to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassKind {
    /// Orders updated since the cursor, their items, then pending items within the budget.
    Delta,
    /// Only orders whose items are missing or stale, at most `limit` of them.
    Items { limit: u32 },
    /// One explicit window (an operator's backfill), then pending items within the budget.
    /// The cursor only moves if the window ends after it.
    Backfill { window: SyncWindow },
}

impl PassKind {
    /// The subcommand that runs this pass, as recorded in `sync_runs.command`.
    pub fn command(self) -> &'static str {
        match self {
            PassKind::Delta => "delta",
            PassKind::Items { .. } => "items",
            PassKind::Backfill { .. } => "backfill",
        }
    }

    /// Whether a success of this pass is the tenant's `last_success_at`: only a delta pass
    /// brings the tenant up to date.
    pub fn marks_success(self) -> bool {
        matches!(self, PassKind::Delta)
    }

    /// What the next pass does about a pass of this kind that was stopped.
    pub fn after_interruption(self) -> &'static str {
        match self {
            PassKind::Delta => "the next pass resumes from the last committed page",
            PassKind::Items { .. } => "the next pass fetches the remaining items",
            PassKind::Backfill { .. } => "run the backfill again",
        }
    }
}

/// Rows a pass (or one page) wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteCounts {
    pub orders: u64,
    pub items: u64,
    pub quarantined: u64,
}

impl std::ops::AddAssign for WriteCounts {
    fn add_assign(&mut self, other: Self) {
        self.orders += other.orders;
        self.items += other.items;
        self.quarantined += other.quarantined;
    }
}

/// What a pass did: what callers get back and what `sync_runs` records.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    /// `Success`, or `Partial` when the run's time budget ended the pass first.
    pub outcome: RunOutcome,
    /// The last window the pass asked for.
    pub window: Option<SyncWindow>,
    pub counts: WriteCounts,
    /// Orders still waiting for items when the pass ended; -1 when they could not be counted.
    pub items_pending: i64,
    /// SP-API requests sent, every attempt counted.
    pub api_calls: u64,
    /// Of which answered 429.
    pub throttled: u64,
    /// What is left when the pass stopped before catching up (its time budget ran out).
    pub backlog: Option<Backlog>,
}

/// What a tenant has left to fetch, estimated when a pass stops before catching up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Orders still to fetch, estimated from the tenant's recent order rate; `None` when there
    /// is nothing to estimate from.
    pub orders: Option<i64>,
    /// Orders stored whose items are still to fetch.
    pub awaiting_items: i64,
    /// When it should have caught up at Amazon's documented rates, in seconds from now.
    pub catch_up_secs: Option<i64>,
}

/// A running pass's progress, shared with whoever displays it. Updated by the engine after each
/// commit; read by the command's progress display. A std mutex: copied in and out in a few
/// instructions, never held across an await.
#[derive(Debug, Default)]
pub struct PassProgress(std::sync::Mutex<ProgressSnapshot>);

/// What a progress display shows of one pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProgressSnapshot {
    pub started: bool,
    pub pages: u64,
    pub orders: u64,
    pub items: u64,
    /// Orders written in this pass whose items are still to fetch.
    pub items_deferred: u64,
    /// Time spent waiting on Amazon's rate limits and backoffs so far.
    pub waited: std::time::Duration,
    pub backlog: Option<Backlog>,
}

impl PassProgress {
    pub fn update(&self, f: impl FnOnce(&mut ProgressSnapshot)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
